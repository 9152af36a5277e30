//! Just enough SDP to anchor media: where a far end wants its audio RTP, and the same SDP
//! pointing at our relay instead (connection addresses and the audio port replaced,
//! everything else kept). Hostile SDP gives `None` or is passed through, never a panic.

use std::net::{IpAddr, SocketAddr};

/// Larger bodies are not SDP we handle.
const MAX_SDP: usize = 16 * 1024;

/// The address the audio stream of `sdp` wants RTP sent to. `None` without an audio
/// stream, with a rejected one (port 0), or without a usable connection address.
pub fn audio_rtp_addr(sdp: &str) -> Option<SocketAddr> {
    if sdp.len() > MAX_SDP {
        return None;
    }
    let mut session_ip = None;
    let mut audio_port = None;
    let mut audio_ip = None;
    let mut in_audio = false;
    let mut seen_media = false;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            seen_media = true;
            in_audio = m.starts_with("audio ") && audio_port.is_none();
            if in_audio {
                audio_port = m.split_whitespace().nth(1).and_then(|p| p.split('/').next()?.parse::<u16>().ok());
            }
        } else if let Some(c) = line.strip_prefix("c=") {
            let ip = c.split_whitespace().nth(2).and_then(|a| a.split('/').next()?.parse::<IpAddr>().ok());
            if !seen_media {
                session_ip = ip;
            } else if in_audio {
                audio_ip = ip;
            }
        }
    }
    let port = audio_port.filter(|p| *p != 0)?;
    Some(SocketAddr::new(audio_ip.or(session_ip)?, port))
}

/// `sdp` with every connection address and the origin address set to `relay`'s IP, and
/// the first audio stream's port set to `relay`'s port.
pub fn anchor(sdp: &str, relay: SocketAddr) -> String {
    let family = if relay.is_ipv4() { "IP4" } else { "IP6" };
    let ip = relay.ip();
    let mut out = String::with_capacity(sdp.len() + 16);
    let mut audio_done = false;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(c) = line.strip_prefix("c=") {
            let net = c.split_whitespace().next().unwrap_or("IN");
            out.push_str(&format!("c={net} {family} {ip}"));
        } else if let Some(o) = line.strip_prefix("o=") {
            let fields: Vec<&str> = o.split_whitespace().collect();
            if fields.len() == 6 {
                out.push_str(&format!("o={} {} {} {} {family} {ip}", fields[0], fields[1], fields[2], fields[3]));
            } else {
                out.push_str(line);
            }
        } else if let Some(m) = line.strip_prefix("m=").filter(|m| m.starts_with("audio ") && !audio_done) {
            audio_done = true;
            let mut fields: Vec<&str> = m.split_whitespace().collect();
            let port = relay.port().to_string();
            if fields.len() > 1 && fields[1] != "0" {
                fields[1] = &port;
            }
            out.push_str("m=");
            out.push_str(&fields.join(" "));
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\nm=video 6002 RTP/AVP 31\r\n";

    #[test]
    fn finds_the_audio_address_session_or_media_level() {
        assert_eq!(audio_rtp_addr(OFFER), Some("10.0.0.9:6000".parse().unwrap()));
        let media_level =
            OFFER.replace("m=audio 6000 RTP/AVP 0 8 101\r\n", "m=audio 6000 RTP/AVP 0 8 101\r\nc=IN IP4 192.0.2.7\r\n");
        assert_eq!(audio_rtp_addr(&media_level), Some("192.0.2.7:6000".parse().unwrap()));
        let v6 = OFFER.replace("c=IN IP4 10.0.0.9", "c=IN IP6 2001:db8::1");
        assert_eq!(audio_rtp_addr(&v6), Some("[2001:db8::1]:6000".parse().unwrap()));
    }

    #[test]
    fn anchoring_points_audio_at_the_relay_and_keeps_the_rest() {
        let anchored = anchor(OFFER, "127.0.0.1:30000".parse().unwrap());
        assert_eq!(audio_rtp_addr(&anchored), Some("127.0.0.1:30000".parse().unwrap()));
        assert!(anchored.contains("o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"));
        assert!(anchored.contains("a=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"));
        assert!(anchored.contains("m=video 6002 RTP/AVP 31"), "only the audio port changes");
        let rejected = anchor(&OFFER.replace("m=audio 6000", "m=audio 0"), "127.0.0.1:30000".parse().unwrap());
        assert!(rejected.contains("m=audio 0 RTP/AVP"), "a rejected stream stays rejected");
    }

    #[test]
    fn hostile_sdp_gives_nothing_and_never_panics() {
        for bad in [
            "",
            "m=audio",
            "m=audio x RTP/AVP 0",
            "c=IN IP4 nonsense\r\nm=audio 5 RTP/AVP 0",
            "m=audio 99999 RTP/AVP 0\r\nc=IN IP4 1.2.3.4",
            &"a".repeat(MAX_SDP + 1),
        ] {
            assert_eq!(audio_rtp_addr(bad), None, "{bad:.40}");
            let _ = anchor(bad, "127.0.0.1:1".parse().unwrap());
        }
    }
}
