//! Each call's audio as the caller heard it, from a packet capture of the caller SIPp's SIP
//! port and what arrives at its media port: the SDPs sent to the caller (the 200 to its
//! INVITE, then the re-INVITEs that move the call to another relay) say which relay port
//! is which call's, so the RTP from each port is counted to its call, in capture order (a
//! port freed by one call and taken by a later one is the later one's from its SDP on).
//! A call's gap is its longest silence between two packets, or — when its audio stopped
//! before the capture it plays had ended, and never came back — from the last packet to
//! that end.

use std::collections::HashMap;

use serde::Serialize;

use crate::capture::{header, udp_packets};

/// How long the caller's capture plays, from its first packet heard to its last.
const PLAYED_SECS: f64 = 7.0;

/// One call's audio at the caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallAudio {
    pub packets: u64,
    first: f64,
    last: f64,
    longest: f64,
}

impl CallAudio {
    /// The longest silence, seconds.
    pub fn gap(&self) -> f64 {
        self.longest.max(self.first + PLAYED_SECS - self.last)
    }
}

/// What the capture says of every call.
#[derive(Debug, Default, Serialize)]
pub struct AudioFigures {
    /// Calls whose relay address the caller was given.
    pub calls: usize,
    /// Of those, calls that heard nothing at all.
    pub silent: usize,
    /// Calls with a gap longer than one second.
    pub gaps_over_1s: usize,
    pub longest_gap_ms: f64,
    pub gap_p99_ms: f64,
    pub gap_p50_ms: f64,
}

/// Each call's audio (by Call-ID) in `pcap`, captured on `sip` (the caller's SIP port) and
/// toward `media` (its RTP port).
pub fn per_call(pcap: &[u8], sip: u16, media: u16) -> Result<HashMap<String, CallAudio>, String> {
    let mut relay_of: HashMap<u16, String> = HashMap::new();
    let mut calls: HashMap<String, CallAudio> = HashMap::new();
    for p in udp_packets(pcap)? {
        if p.dport == sip {
            let offers = p.payload.starts_with(b"INVITE ")
                || (p.payload.starts_with(b"SIP/2.0 200") && header(p.payload, "CSeq").is_some_and(|c| c.ends_with(b"INVITE")));
            if let (true, Some(call), Some(port)) = (offers, header(p.payload, "Call-ID"), audio_port(p.payload)) {
                let call = String::from_utf8_lossy(call).into_owned();
                calls.entry(call.clone()).or_insert(CallAudio { packets: 0, first: 0.0, last: 0.0, longest: 0.0 });
                relay_of.insert(port, call);
            }
        } else if p.dport == media
            && let Some(audio) = relay_of.get(&p.sport).and_then(|call| calls.get_mut(call))
        {
            if audio.packets == 0 {
                audio.first = p.at;
            } else {
                audio.longest = audio.longest.max(p.at - audio.last);
            }
            audio.last = p.at;
            audio.packets += 1;
        }
    }
    Ok(calls)
}

/// The `m=audio` port of a SIP message's SDP.
fn audio_port(message: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(message).ok()?;
    text.lines().find_map(|l| l.strip_prefix("m=audio ")?.split(' ').next()?.parse().ok())
}

/// The figures of `calls`.
pub fn figures(calls: &HashMap<String, CallAudio>) -> AudioFigures {
    let mut gaps: Vec<f64> = calls.values().filter(|a| a.packets > 0).map(|a| a.gap() * 1000.0).collect();
    gaps.sort_by(f64::total_cmp);
    let at = |q: f64| gaps.get(((gaps.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
    AudioFigures {
        calls: calls.len(),
        silent: calls.values().filter(|a| a.packets == 0).count(),
        gaps_over_1s: gaps.iter().filter(|g| **g > 1000.0).count(),
        longest_gap_ms: gaps.last().copied().unwrap_or(0.0),
        gap_p99_ms: at(0.99),
        gap_p50_ms: at(0.5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::test_pcap;

    const SIP: u16 = 5080;
    const MEDIA: u16 = 7000;

    fn answer(call: &str, port: u16) -> String {
        format!("SIP/2.0 200 OK\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\n\r\nv=0\r\nm=audio {port} RTP/AVP 8\r\n")
    }

    fn reinvite(call: &str, port: u16) -> String {
        format!("INVITE sip:a@x SIP/2.0\r\nCall-ID: {call}\r\nCSeq: 3 INVITE\r\n\r\nv=0\r\nm=audio {port} RTP/AVP 8\r\n")
    }

    #[test]
    fn a_moved_call_is_followed_to_its_new_relay_and_its_gap_measured() {
        let (a1, b1, a2) = (answer("a", 20_000), answer("b", 20_002), reinvite("a", 30_000));
        let mut packets: Vec<(f64, u16, u16, &str)> = vec![(0.0, 5060, SIP, &a1), (0.0, 5060, SIP, &b1)];
        // Both calls hear 30 ms packets; call a's relay dies at 2 s, its new one speaks at 4.5 s.
        let mut t = 0.1;
        while t < 7.2 {
            packets.push((t, 20_002, MEDIA, "rtp"));
            if t < 2.0 {
                packets.push((t, 20_000, MEDIA, "rtp"));
            }
            if t >= 4.5 {
                packets.push((t, 30_000, MEDIA, "rtp"));
            }
            t += 0.03;
        }
        packets.insert(packets.iter().position(|p| p.0 >= 4.4).unwrap(), (4.4, 5060, SIP, &a2));
        // RTP from a port no SDP named, and a response to a BYE, are nobody's.
        packets.push((1.0, 40_000, MEDIA, "rtp"));
        packets.push((1.0, 5060, SIP, "SIP/2.0 200 OK\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n\r\n"));
        let calls = per_call(&test_pcap(&packets), SIP, MEDIA).unwrap();
        assert_eq!(calls.len(), 2, "{calls:?}");
        let (a, b) = (calls["a"], calls["b"]);
        assert!((a.gap() - 2.5).abs() < 0.05, "a's gap: {a:?}");
        assert!(b.gap() < 0.05, "b never stopped: {b:?}");
        let f = figures(&calls);
        assert_eq!((f.calls, f.silent, f.gaps_over_1s), (2, 0, 1));
        assert!((f.longest_gap_ms - 2500.0).abs() < 50.0, "{f:?}");
    }

    #[test]
    fn audio_that_never_came_back_counts_to_the_end_of_the_capture() {
        let a1 = answer("a", 20_000);
        let mut packets: Vec<(f64, u16, u16, &str)> = vec![(0.0, 5060, SIP, &a1)];
        let mut t = 0.1;
        while t < 3.0 {
            packets.push((t, 20_000, MEDIA, "rtp"));
            t += 0.03;
        }
        let calls = per_call(&test_pcap(&packets), SIP, MEDIA).unwrap();
        assert!((calls["a"].gap() - 4.1).abs() < 0.05, "{:?}", calls["a"]);
        let silent = per_call(&test_pcap(&packets[..1]), SIP, MEDIA).unwrap();
        assert_eq!(figures(&silent).silent, 1);
    }
}
