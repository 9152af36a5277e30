//! The stream the relay sends toward one leg: one SSRC, continuous sequence numbers and
//! timestamps, whatever is behind it. When the source changes — a transfer puts another far
//! end behind the same relay slot — the new source's packets continue the old stream
//! instead of starting a new one (many phones' jitter buffers drop a new stream whose
//! numbers look old). Packets the relay writes itself (RFC 4733 events) take their place in
//! the stream too.

/// What went out toward a leg, and how arriving packets are rewritten to continue it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutStream {
    /// The SSRC of the source being relayed now.
    source: u32,
    /// The SSRC the leg's far end sees: the first source's.
    ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
    last_seq: u16,
    last_ts: u32,
}

fn fields(packet: &[u8]) -> (u16, u32, u32) {
    let seq = u16::from_be_bytes([packet[2], packet[3]]);
    let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
    let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
    (seq, ts, ssrc)
}

/// Timestamp units between the last packet of one source and the first of the next (20 ms
/// at 8 kHz: what matters is that time moves forward).
const SOURCE_GAP: u32 = 160;

impl OutStream {
    /// The stream that starts with `packet` (an RTP packet of 12 bytes or more).
    pub fn new(packet: &[u8]) -> OutStream {
        let (seq, ts, ssrc) = fields(packet);
        OutStream { source: ssrc, ssrc, seq_offset: 0, ts_offset: 0, last_seq: seq, last_ts: ts }
    }

    /// A stream of our own, when the relay writes toward a leg nothing was sent to yet.
    pub fn own(ssrc: u32) -> OutStream {
        OutStream { source: ssrc, ssrc, seq_offset: 0, ts_offset: 0, last_seq: 0, last_ts: 0 }
    }

    /// Rewrites `packet` to continue the stream.
    pub fn stamp(&mut self, packet: &mut [u8]) {
        let (seq, ts, ssrc) = fields(packet);
        if ssrc != self.source {
            self.source = ssrc;
            self.seq_offset = self.last_seq.wrapping_add(1).wrapping_sub(seq);
            self.ts_offset = self.last_ts.wrapping_add(SOURCE_GAP).wrapping_sub(ts);
        }
        let (seq, ts) = (seq.wrapping_add(self.seq_offset), ts.wrapping_add(self.ts_offset));
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
        packet[4..8].copy_from_slice(&ts.to_be_bytes());
        packet[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        if seq.wrapping_sub(self.last_seq) < 0x8000 {
            (self.last_seq, self.last_ts) = (seq, ts);
        }
    }

    /// The SSRC and the current timestamp of the stream.
    pub fn position(&self) -> (u32, u32) {
        (self.ssrc, self.last_ts)
    }

    /// The sequence number of a packet the relay writes itself now; the relayed packets
    /// that follow are shifted past it.
    pub fn next_own_seq(&mut self) -> u16 {
        self.seq_offset = self.seq_offset.wrapping_add(1);
        self.last_seq = self.last_seq.wrapping_add(1);
        self.last_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p
    }

    #[test]
    fn a_new_source_continues_the_stream_and_own_packets_take_their_place() {
        let mut first = rtp(5000, 80_000, 0xaaaa);
        let mut stream = OutStream::new(&first);
        stream.stamp(&mut first);
        assert_eq!(fields(&first), (5000, 80_000, 0xaaaa), "the first source passes unchanged");
        // Another far end behind the slot (a transfer): its numbers look older.
        let mut next = rtp(12, 3_000, 0xbbbb);
        stream.stamp(&mut next);
        assert_eq!(fields(&next), (5001, 80_160, 0xaaaa));
        let mut after = rtp(13, 3_160, 0xbbbb);
        stream.stamp(&mut after);
        assert_eq!(fields(&after), (5002, 80_320, 0xaaaa));
        // An event we write: the next relayed packet comes after it.
        assert_eq!(stream.next_own_seq(), 5003);
        let mut later = rtp(14, 3_320, 0xbbbb);
        stream.stamp(&mut later);
        assert_eq!(fields(&later), (5004, 80_480, 0xaaaa));
        assert_eq!(stream.position(), (0xaaaa, 80_480));
    }
}
