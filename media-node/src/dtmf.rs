//! RFC 4733 DTMF events in the relay, for legs that differ: one far end negotiated
//! `telephone-event`, the other only knows SIP INFO. Events arriving from the first are read
//! (and not passed to the second, which could not play them); events for the first are
//! written into the stream toward it, in its SSRC and sequence, one packet every 20 ms with
//! the duration growing and the end sent three times.

/// One event read from an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub digit: char,
    /// The E bit: the event has ended.
    pub end: bool,
    /// In timestamp units.
    pub duration: u16,
    /// The RTP timestamp: the event's start, the same in all its packets.
    pub timestamp: u32,
}

const DIGITS: &[u8; 16] = b"0123456789*#ABCD";

/// The event code of a DTMF digit.
pub fn code(digit: char) -> Option<u8> {
    DIGITS.iter().position(|d| char::from(*d) == digit.to_ascii_uppercase()).map(|p| p as u8)
}

/// The length of an RTP packet's header, with its CSRCs and extension.
fn header_len(packet: &[u8]) -> Option<usize> {
    let cc = usize::from(packet.first()? & 0x0f);
    let mut len = 12 + 4 * cc;
    if packet[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*packet.get(len + 2)?, *packet.get(len + 3)?]);
        len += 4 + 4 * usize::from(words);
    }
    (packet.len() >= len).then_some(len)
}

/// The event in `packet`, when it is an RTP packet of payload type `pt` carrying one.
pub fn read(packet: &[u8], pt: u8) -> Option<Event> {
    if packet.len() < 12 || packet[1] & 0x7f != pt {
        return None;
    }
    let payload = packet.get(header_len(packet)?..)?;
    let (&event, &flags) = (payload.first()?, payload.get(1)?);
    let digit = char::from(*DIGITS.get(usize::from(event))?);
    Some(Event {
        digit,
        end: flags & 0x80 != 0,
        duration: u16::from_be_bytes([*payload.get(2)?, *payload.get(3)?]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
    })
}

/// A digit being written toward a leg.
#[derive(Debug, Clone)]
pub struct Injection {
    pt: u8,
    code: u8,
    ssrc: u32,
    timestamp: u32,
    /// The whole duration, and what has been sent of it (timestamp units, 8 kHz).
    total: u16,
    sent: u16,
    ends_left: u8,
}

/// Samples of one 20 ms packet at 8 kHz.
const STEP: u16 = 160;

impl Injection {
    /// `digit` lasting `duration_ms` (40 ms to 5 s), in the stream `ssrc` from `timestamp`.
    pub fn new(digit: char, duration_ms: u32, pt: u8, ssrc: u32, timestamp: u32) -> Option<Injection> {
        let total = (duration_ms.clamp(40, 5000) * 8) as u16;
        Some(Injection { pt, code: code(digit)?, ssrc, timestamp, total, sent: 0, ends_left: 3 })
    }

    /// The next packet, with sequence number `seq`, written into `out`; its length, or
    /// `None` when the digit is done. The first carries the marker bit.
    pub fn next(&mut self, seq: u16, out: &mut [u8; 16]) -> Option<usize> {
        if self.ends_left == 0 {
            return None;
        }
        let first = self.sent == 0;
        self.sent = (self.sent + STEP).min(self.total);
        let end = self.sent >= self.total;
        if end {
            self.ends_left -= 1;
        }
        out[0] = 0x80;
        out[1] = self.pt | if first { 0x80 } else { 0 };
        out[2..4].copy_from_slice(&seq.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        out[12] = self.code;
        out[13] = if end { 0x80 | 10 } else { 10 }; // E bit, volume -10 dBm0
        out[14..16].copy_from_slice(&self.sent.to_be_bytes());
        Some(16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_digit_reads_back_and_ends_three_times() {
        let mut digit = Injection::new('#', 100, 101, 0x1234, 8000).unwrap();
        let mut packets = Vec::new();
        let mut buf = [0u8; 16];
        let mut seq = 7u16;
        while let Some(n) = digit.next(seq, &mut buf) {
            packets.push((buf[1] & 0x80 != 0, read(&buf[..n], 101).unwrap()));
            seq += 1;
        }
        // 100 ms: 5 packets of growing duration, the last of them repeated twice more.
        assert_eq!(packets.len(), 7);
        assert!(packets[0].0 && !packets[1].0, "the marker on the first only");
        assert!(packets.iter().all(|(_, e)| e.digit == '#' && e.timestamp == 8000));
        assert_eq!(packets.iter().map(|(_, e)| e.duration).collect::<Vec<_>>(), [160, 320, 480, 640, 800, 800, 800]);
        assert_eq!(packets.iter().filter(|(_, e)| e.end).count(), 3);
        assert_eq!(read(&buf, 0), None, "another payload type is not an event");
        assert_eq!(Injection::new('x', 100, 101, 1, 1).map(|_| ()), None);
    }
}
