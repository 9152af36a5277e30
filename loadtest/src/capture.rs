//! Precise call setup time from a packet capture (tcpdump's pcap file) of the caller's SIP
//! port: first INVITE (or REGISTER) sent → first 200 OK to that method received, per
//! Call-ID, with the capture's microsecond timestamps. SIPp's own timings have one-jiffy
//! resolution.

use std::collections::HashMap;

use crate::sippstat::Percentiles;

/// One UDP packet of a capture: when (seconds), source and destination ports, payload.
pub struct Packet<'a> {
    pub at: f64,
    pub sport: u16,
    pub dport: u16,
    pub payload: &'a [u8],
}

/// The IPv4 UDP packets of a pcap file (little-endian, micro- or nanosecond timestamps),
/// in capture order; a truncated last packet is cut short.
pub fn udp_packets(pcap: &[u8]) -> Result<Vec<Packet<'_>>, String> {
    if pcap.len() < 24 {
        return Err("pcap file shorter than its header".into());
    }
    let magic = u32::from_le_bytes(pcap[0..4].try_into().expect("4 bytes"));
    let nanos = match magic {
        0xA1B2_C3D4 => false,
        0xA1B2_3C4D => true,
        _ => return Err(format!("not a little-endian pcap file (magic {magic:#x})")),
    };
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    let link_header = match le32(pcap, 20) {
        0 => 4,    // BSD loopback
        1 => 14,   // Ethernet (Linux lo)
        113 => 16, // Linux cooked
        276 => 20, // Linux cooked v2
        other => return Err(format!("unsupported link type {other}")),
    };
    let mut packets = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let secs = f64::from(le32(pcap, at));
        let frac = f64::from(le32(pcap, at + 4)) / if nanos { 1e9 } else { 1e6 };
        let len = le32(pcap, at + 8) as usize;
        let packet = &pcap[at + 16..(at + 16 + len).min(pcap.len())];
        at += 16 + len;
        if let Some((sport, dport, payload)) = udp(packet.get(link_header..).unwrap_or(&[])) {
            packets.push(Packet { at: secs + frac, sport, dport, payload });
        }
    }
    Ok(packets)
}

/// INVITE → 200 (or REGISTER → 200, across its challenge) times (ms) of the calls seen
/// whole in `pcap`, sent from `uac_port`.
pub fn setup_times(pcap: &[u8], uac_port: u16) -> Result<Vec<f64>, String> {
    let (mut invites, mut oks) = (HashMap::new(), HashMap::new());
    for Packet { at: t, sport, dport, payload } in udp_packets(pcap)? {
        let Some(call_id) = header(payload, "Call-ID") else { continue };
        let timed = |m: &[u8]| m.ends_with(b"INVITE") || m.ends_with(b"REGISTER");
        if sport == uac_port && payload.split(|b| *b == b' ').next().is_some_and(timed) {
            invites.entry(call_id).or_insert(t);
        } else if dport == uac_port && payload.starts_with(b"SIP/2.0 200") && header(payload, "CSeq").is_some_and(timed) {
            oks.entry(call_id).or_insert(t);
        }
    }
    Ok(oks.iter().filter_map(|(id, ok)| invites.get(id).filter(|inv| ok >= *inv).map(|inv| (ok - inv) * 1000.0)).collect())
}

/// Setup-time percentiles from a capture file, if it holds any complete setup.
pub fn setup_percentiles(path: &std::path::Path, uac_port: u16) -> Option<Percentiles> {
    Percentiles::of(setup_times(&std::fs::read(path).ok()?, uac_port).ok()?)
}

/// (source port, destination port, payload) of an IPv4 UDP packet.
fn udp(ip: &[u8]) -> Option<(u16, u16, &[u8])> {
    if ip.len() < 28 || ip[0] >> 4 != 4 || ip[9] != 17 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0xF) * 4;
    let port = |at: usize| Some(u16::from_be_bytes([*ip.get(at)?, *ip.get(at + 1)?]));
    Some((port(ihl)?, port(ihl + 2)?, ip.get(ihl + 8..)?))
}

/// The trimmed value of the first header `name` (case-insensitive) in a SIP message.
pub fn header<'a>(msg: &'a [u8], name: &str) -> Option<&'a [u8]> {
    msg.split(|b| *b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|b| *b == b':')?;
        line[..colon].trim_ascii().eq_ignore_ascii_case(name.as_bytes()).then(|| line[colon + 1..].trim_ascii())
    })
}

#[cfg(test)]
/// A pcap file (Ethernet link type, microseconds) of UDP packets on 127.0.0.1.
pub(crate) fn test_pcap(packets: &[(f64, u16, u16, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0xA1B2_C3D4u32, 0x0004_0002, 0, 0, 65535, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for (t, sport, dport, payload) in packets {
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
        ip.extend_from_slice(&sport.to_be_bytes());
        ip.extend_from_slice(&dport.to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0, 0]);
        ip.extend_from_slice(payload.as_bytes());
        let frame = [vec![0u8; 14], ip].concat();
        for v in [t.trunc() as u32, (t.fract() * 1e6).round() as u32, frame.len() as u32, frame.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&frame);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_each_first_invite_with_its_first_200() {
        let file = test_pcap(&[
            (10.000_000, 5080, 5060, "INVITE sip:a@x SIP/2.0\r\nCall-ID: one\r\nCSeq: 1 INVITE\r\n\r\n"),
            (10.000_500, 5080, 5060, "INVITE sip:a@x SIP/2.0\r\nCall-ID: one\r\nCSeq: 1 INVITE\r\n\r\n"),
            (10.000_800, 5060, 5080, "SIP/2.0 100 Trying\r\nCall-ID: one\r\nCSeq: 1 INVITE\r\n\r\n"),
            (10.001_250, 5060, 5080, "SIP/2.0 200 OK\r\ni: x\r\ncall-id:  one \r\nCSeq: 1 INVITE\r\n\r\n"),
            (10.002_000, 5060, 5080, "SIP/2.0 200 OK\r\nCall-ID: one\r\nCSeq: 1 INVITE\r\n\r\n"),
            (10.003_000, 5080, 5060, "INVITE sip:a@x SIP/2.0\r\nCall-ID: two\r\nCSeq: 1 INVITE\r\n\r\n"),
            (10.004_000, 5060, 5080, "SIP/2.0 200 OK\r\nCall-ID: two\r\nCSeq: 2 BYE\r\n\r\n"),
            (10.005_000, 5060, 5080, "SIP/2.0 200 OK\r\nCall-ID: orphan\r\nCSeq: 1 INVITE\r\n\r\n"),
            (11.000_000, 5080, 5060, "REGISTER sip:x SIP/2.0\r\nCall-ID: reg\r\nCSeq: 1 REGISTER\r\n\r\n"),
            (11.000_100, 5060, 5080, "SIP/2.0 401 Unauthorized\r\nCall-ID: reg\r\nCSeq: 1 REGISTER\r\n\r\n"),
            (11.000_200, 5080, 5060, "REGISTER sip:x SIP/2.0\r\nCall-ID: reg\r\nCSeq: 2 REGISTER\r\n\r\n"),
            (11.000_500, 5060, 5080, "SIP/2.0 200 OK\r\nCall-ID: reg\r\nCSeq: 2 REGISTER\r\n\r\n"),
        ]);
        let mut times = setup_times(&file, 5080).unwrap();
        times.sort_by(f64::total_cmp);
        assert_eq!(times.len(), 2, "call two has no 200 to its INVITE, the orphan no INVITE: {times:?}");
        assert!((times[0] - 0.5).abs() < 1e-6 && (times[1] - 1.25).abs() < 1e-6, "{times:?}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(setup_times(b"short", 5080).is_err());
        assert!(setup_times(&[0u8; 64], 5080).is_err());
        let mut truncated = test_pcap(&[(1.0, 5080, 5060, "INVITE sip:a@x SIP/2.0\r\nCall-ID: one\r\n\r\n")]);
        truncated.truncate(50);
        assert_eq!(setup_times(&truncated, 5080).unwrap(), Vec::<f64>::new());
    }
}
