//! The sending half of an RTP stream: SSRC, sequence numbers and timestamps that wrap, the
//! marker bit on the first packet of a talk spurt, and the counts a sender report carries.

use bytes::Bytes;
use rtp::header::Header;
use rtp::packet::Packet;

/// Numbers and stamps the packets of one outgoing stream.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    marker_pending: bool,
    stats: SenderStats,
}

/// What a sender report says about our stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderStats {
    pub packets: u32,
    /// Payload octets (RFC 3550 §6.4.1: headers and padding excluded).
    pub octets: u32,
    /// RTP timestamp of the last packet sent.
    pub last_timestamp: u32,
}

impl RtpSender {
    /// A stream starting at the given sequence number and timestamp (RFC 3550 wants both
    /// random: see [`RtpSender::random`]).
    pub fn new(ssrc: u32, payload_type: u8, sequence: u16, timestamp: u32) -> Self {
        Self { ssrc, payload_type, sequence, timestamp, marker_pending: true, stats: SenderStats::default() }
    }

    /// A stream with random SSRC, first sequence number and first timestamp.
    pub fn random(payload_type: u8) -> Self {
        Self::new(rand::random(), payload_type, rand::random(), rand::random())
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn set_payload_type(&mut self, payload_type: u8) {
        self.payload_type = payload_type;
    }

    /// The RTP timestamp the next packet will carry.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    pub fn stats(&self) -> SenderStats {
        self.stats
    }

    /// The next packet carries the marker bit (start of a talk spurt, RFC 3551 §4.1).
    pub fn mark_talk_spurt(&mut self) {
        self.marker_pending = true;
    }

    /// Moves the clock on by `samples` without sending (silence, or time spent on events).
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
    }

    /// The next audio packet: `payload` covering `samples` sampling periods.
    pub fn audio(&mut self, payload: Bytes, samples: u32) -> Packet {
        let packet = self.packet(self.payload_type, self.timestamp, payload, false);
        self.timestamp = self.timestamp.wrapping_add(samples);
        packet
    }

    /// A packet with its own payload type and timestamp (RFC 4733 events keep the timestamp
    /// of the event's start), `marker` as given or pending.
    pub fn packet(&mut self, payload_type: u8, timestamp: u32, payload: Bytes, marker: bool) -> Packet {
        let header = Header {
            version: 2,
            marker: marker || std::mem::take(&mut self.marker_pending),
            payload_type,
            sequence_number: self.sequence,
            timestamp,
            ssrc: self.ssrc,
            ..Header::default()
        };
        self.sequence = self.sequence.wrapping_add(1);
        self.stats.packets = self.stats.packets.wrapping_add(1);
        self.stats.octets = self.stats.octets.wrapping_add(payload.len() as u32);
        self.stats.last_timestamp = timestamp;
        Packet { header, payload }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_and_timestamp_wrap_and_the_first_packet_is_marked() {
        let mut s = RtpSender::new(7, 0, 65534, u32::MAX - 159);
        let a = s.audio(Bytes::from_static(&[0; 160]), 160);
        let b = s.audio(Bytes::from_static(&[0; 160]), 160);
        let c = s.audio(Bytes::from_static(&[0; 160]), 160);
        assert_eq!([a.header.sequence_number, b.header.sequence_number, c.header.sequence_number], [65534, 65535, 0]);
        assert_eq!([a.header.timestamp, b.header.timestamp, c.header.timestamp], [u32::MAX - 159, 0, 160]);
        assert_eq!([a.header.marker, b.header.marker, c.header.marker], [true, false, false]);
        s.mark_talk_spurt();
        assert!(s.audio(Bytes::new(), 160).header.marker);
        assert_eq!(s.stats().packets, 4);
        assert_eq!(s.stats().octets, 480);
    }
}
