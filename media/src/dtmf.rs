//! RFC 4733 telephone events (DTMF digits), sans-IO. The sender turns a digit into its
//! packets — start (marker), continuations with growing duration, and the end packet sent
//! three times — each with the time to send it; all carry the event's start timestamp. The
//! receiver reports each digit once, with its duration, however many of its packets were
//! lost or repeated; an event whose end packets were all lost is reported when the next one
//! starts or after a silence.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Digits in event-code order (RFC 4733 §3.2: 0-9, *, #, A-D).
const DIGITS: &[u8; 16] = b"0123456789*#ABCD";
/// Copies of the end packet (RFC 4733 §2.5.1.4).
const END_REPEATS: usize = 3;
/// An event with no packet for this long is over, end packets or not.
const EVENT_TIMEOUT: Duration = Duration::from_millis(500);
/// Timestamps of ended events remembered to ignore their late copies.
const REMEMBERED: usize = 8;

/// Why a digit cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    #[error("{0:?} is not a DTMF digit (0-9, *, #, A-D)")]
    NotADigit(char),
    #[error("a {0:?} event is longer than one RFC 4733 event can say")]
    TooLong(Duration),
}

/// The event code of `digit`.
pub fn event_code(digit: char) -> Option<u8> {
    let upper = digit.to_ascii_uppercase();
    DIGITS.iter().position(|&d| char::from(d) == upper).map(|p| p as u8)
}

/// The digit of an event code.
pub fn digit_of(code: u8) -> Option<char> {
    DIGITS.get(usize::from(code)).map(|&d| char::from(d))
}

/// One packet of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// The 4-byte RFC 4733 payload.
    pub payload: [u8; 4],
    /// Marker bit: set on the first packet of an event.
    pub marker: bool,
    /// When to send it, from the event's start.
    pub at: Duration,
}

/// Builds the packets of digits for one stream.
#[derive(Debug, Clone, Copy)]
pub struct DtmfSender {
    clock_rate: u32,
    /// Time between packets of one event.
    interval: Duration,
    /// Volume in -dBm0 (RFC 4733 §2.3.4), 0-63.
    volume: u8,
}

impl DtmfSender {
    pub fn new(clock_rate: u32, interval: Duration) -> Self {
        Self { clock_rate, interval: interval.max(Duration::from_millis(5)), volume: 10 }
    }

    /// Samples (timestamp units) in `d`.
    fn samples(&self, d: Duration) -> u64 {
        (d.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u64
    }

    /// The packets for `digit` lasting `duration`: the caller stamps them all with the RTP
    /// timestamp at the event's start and moves its audio clock on by `duration`.
    pub fn packets(&self, digit: char, duration: Duration) -> Result<Vec<DtmfPacket>, DtmfError> {
        let code = event_code(digit).ok_or(DtmfError::NotADigit(digit))?;
        let total = self.samples(duration);
        if total > u64::from(u16::MAX) {
            return Err(DtmfError::TooLong(duration));
        }
        let step = self.samples(self.interval).max(1);
        let mut packets = Vec::new();
        let mut elapsed = step.min(total);
        let mut at = Duration::ZERO;
        while elapsed < total {
            packets.push(DtmfPacket { payload: self.payload(code, false, elapsed), marker: packets.is_empty(), at });
            elapsed += step;
            at += self.interval;
        }
        for _ in 0..END_REPEATS {
            packets.push(DtmfPacket { payload: self.payload(code, true, total), marker: packets.is_empty(), at });
        }
        Ok(packets)
    }

    fn payload(&self, code: u8, end: bool, duration: u64) -> [u8; 4] {
        let d = (duration as u16).to_be_bytes();
        [code, (u8::from(end) << 7) | (self.volume & 0x3F), d[0], d[1]]
    }
}

/// A digit the far end sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    pub digit: char,
    pub duration: Duration,
    /// RTP timestamp of the event's start.
    pub timestamp: u32,
}

#[derive(Debug, Clone, Copy)]
struct Ongoing {
    timestamp: u32,
    code: u8,
    duration: u16,
    last_packet: Instant,
}

/// Reassembles digits from received event packets.
#[derive(Debug, Clone)]
pub struct DtmfReceiver {
    clock_rate: u32,
    ongoing: Option<Ongoing>,
    ended: VecDeque<u32>,
    ready: VecDeque<DtmfDigit>,
}

impl DtmfReceiver {
    pub fn new(clock_rate: u32) -> Self {
        Self { clock_rate, ongoing: None, ended: VecDeque::new(), ready: VecDeque::new() }
    }

    /// Takes an event packet (RTP timestamp and payload) that arrived at `now`. Malformed
    /// payloads and non-digit events are ignored.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8], now: Instant) {
        let [code, flags, d0, d1, ..] = *payload else { return };
        if digit_of(code).is_none() || self.ended.contains(&timestamp) {
            return;
        }
        let duration = u16::from_be_bytes([d0, d1]);
        match &mut self.ongoing {
            Some(ev) if ev.timestamp == timestamp => {
                ev.duration = ev.duration.max(duration);
                ev.last_packet = now;
            }
            _ => {
                self.finish();
                self.ongoing = Some(Ongoing { timestamp, code, duration, last_packet: now });
            }
        }
        if flags & 0x80 != 0 {
            self.finish();
        }
    }

    /// The next digit, once known: ended, superseded, or silent for `EVENT_TIMEOUT`.
    pub fn poll(&mut self, now: Instant) -> Option<DtmfDigit> {
        if self.ready.is_empty() && self.ongoing.is_some_and(|ev| now.duration_since(ev.last_packet) >= EVENT_TIMEOUT) {
            self.finish();
        }
        self.ready.pop_front()
    }

    fn finish(&mut self) {
        let Some(ev) = self.ongoing.take() else { return };
        self.ended.push_back(ev.timestamp);
        if self.ended.len() > REMEMBERED {
            self.ended.pop_front();
        }
        self.ready.push_back(DtmfDigit {
            digit: digit_of(ev.code).expect("checked on arrival"),
            duration: Duration::from_nanos(u64::from(ev.duration) * 1_000_000_000 / u64::from(self.clock_rate)),
            timestamp: ev.timestamp,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digit_is_start_continuations_and_three_ends() {
        let packets = DtmfSender::new(8000, Duration::from_millis(20)).packets('5', Duration::from_millis(100)).unwrap();
        let durations: Vec<u16> = packets.iter().map(|p| u16::from_be_bytes([p.payload[2], p.payload[3]])).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = packets.iter().map(|p| p.payload[1] & 0x80 != 0).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        assert!(packets[0].marker && packets[1..].iter().all(|p| !p.marker));
        assert!(packets.iter().all(|p| p.payload[0] == 5));
        assert_eq!(packets[4].at, Duration::from_millis(80));
    }

    #[test]
    fn digit_codes_follow_rfc_4733() {
        assert_eq!(event_code('*'), Some(10));
        assert_eq!(event_code('#'), Some(11));
        assert_eq!(event_code('d'), Some(15));
        assert_eq!(event_code('x'), None);
        let sender = DtmfSender::new(8000, Duration::from_millis(20));
        assert_eq!(sender.packets('x', Duration::from_millis(100)), Err(DtmfError::NotADigit('x')));
        assert!(sender.packets('1', Duration::from_secs(9)).is_err());
    }

    #[test]
    fn repeated_end_packets_report_the_digit_once() {
        let mut rx = DtmfReceiver::new(8000);
        let now = Instant::now();
        for p in DtmfSender::new(8000, Duration::from_millis(20)).packets('#', Duration::from_millis(120)).unwrap() {
            rx.on_packet(1000, &p.payload, now + p.at);
        }
        let digit = rx.poll(now).unwrap();
        assert_eq!((digit.digit, digit.duration, digit.timestamp), ('#', Duration::from_millis(120), 1000));
        assert_eq!(rx.poll(now + Duration::from_secs(5)), None);
    }

    #[test]
    fn an_event_without_end_packets_ends_on_the_next_event_or_a_timeout() {
        let mut rx = DtmfReceiver::new(8000);
        let t0 = Instant::now();
        rx.on_packet(0, &[1, 10, 0, 160], t0);
        rx.on_packet(0, &[1, 10, 1, 64], t0 + Duration::from_millis(20));
        assert_eq!(rx.poll(t0 + Duration::from_millis(100)), None);
        rx.on_packet(4000, &[2, 10, 0, 160], t0 + Duration::from_millis(200));
        assert_eq!(
            rx.poll(t0 + Duration::from_millis(200)).map(|d| (d.digit, d.duration)),
            Some(('1', Duration::from_millis(40)))
        );
        assert_eq!(rx.poll(t0 + Duration::from_millis(600)), None);
        assert_eq!(rx.poll(t0 + Duration::from_millis(700)).map(|d| d.digit), Some('2'));
    }

    #[test]
    fn garbage_payloads_are_ignored() {
        let mut rx = DtmfReceiver::new(8000);
        let now = Instant::now();
        rx.on_packet(0, &[], now);
        rx.on_packet(0, &[1, 2], now);
        rx.on_packet(0, &[200, 0x80, 0, 160], now);
        assert_eq!(rx.poll(now + Duration::from_secs(1)), None);
    }
}
