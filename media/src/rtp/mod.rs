//! RTP and RTCP state for one stream (RFC 3550), sans-IO: the sending side numbers packets
//! and stamps them, the receiving side validates sequence numbers (A.1), counts loss (A.3)
//! and estimates inter-arrival jitter (A.8), and `rtcp` builds and reads the reports that
//! carry those figures, with the round-trip time they allow.

mod receiver;
pub mod rtcp;
mod sender;

pub use receiver::{Arrival, ReceiveStats, RtpReceiver};
pub use sender::{RtpSender, SenderStats};

/// Parses an RTP packet; `None` for anything that is not RTP version 2 (garbage in the media
/// port is dropped, never a panic).
pub fn parse_packet(datagram: &[u8]) -> Option<::rtp::packet::Packet> {
    use webrtc_util::marshal::Unmarshal;
    if datagram.len() < 12 || datagram[0] >> 6 != 2 {
        return None;
    }
    let mut buf = datagram;
    ::rtp::packet::Packet::unmarshal(&mut buf).ok()
}

/// Serialises an RTP packet.
pub fn write_packet(packet: &::rtp::packet::Packet) -> bytes::Bytes {
    use webrtc_util::marshal::Marshal;
    packet.marshal().expect("an RTP packet we built marshals")
}
