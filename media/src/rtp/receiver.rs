//! The receiving half of an RTP stream: RFC 3550 A.1 sequence validation (probation,
//! wrap-around cycles, big jumps, restarts), A.3 loss accounting and A.8 inter-arrival
//! jitter, on whatever clock the caller passes (tests use a virtual one).

use std::time::{Duration, Instant};

use rtcp::reception_report::ReceptionReport;
use rtp::header::Header;

const SEQ_MOD: u32 = 1 << 16;
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
const MIN_SEQUENTIAL: u32 = 2;

/// What became of a received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Counted: in order, late within the misorder window, or a duplicate.
    Accepted,
    /// A new source still proving itself (RFC 3550 A.1 probation).
    Probation,
    /// A jump too large to believe; a second packet continuing it restarts the stream.
    Rejected,
}

/// Reception figures for one source.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReceiveStats {
    pub ssrc: u32,
    pub packets: u64,
    pub octets: u64,
    /// Packets expected from the sequence numbers seen.
    pub expected: u64,
    /// Cumulative loss (negative when duplicates outnumber losses).
    pub lost: i64,
    /// Fraction lost in the last report interval, 0.0-1.0.
    pub fraction_lost: f32,
    /// Inter-arrival jitter in milliseconds.
    pub jitter_ms: f64,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
}

/// RFC 3550 A.1 state of the source we receive from.
#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    octets: u64,
    /// Relative transit time of the previous packet, in timestamp units.
    transit: Option<u32>,
    /// A.8 jitter estimate, in timestamp units.
    jitter: f64,
}

impl Source {
    fn new(ssrc: u32, seq: u16) -> Self {
        let mut s = Source {
            ssrc,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: 0,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            octets: 0,
            transit: None,
            jitter: 0.0,
        };
        s.init_seq(seq);
        s.max_seq = seq.wrapping_sub(1);
        s
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// RFC 3550 A.1 `update_seq`.
    fn update_seq(&mut self, seq: u16) -> Arrival {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return Arrival::Accepted;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return Arrival::Probation;
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a jump: the sender restarted.
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
                return Arrival::Rejected;
            }
        }
        // Otherwise a duplicate or a reordered packet: counted, max_seq kept.
        self.received += 1;
        Arrival::Accepted
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    fn expected(&self) -> u64 {
        u64::from(self.extended_max().wrapping_sub(self.base_seq)) + 1
    }
}

/// Reception state of one incoming stream.
#[derive(Debug, Clone)]
pub struct RtpReceiver {
    clock_rate: u32,
    /// Payload type of RFC 4733 events: they repeat timestamps, so jitter skips them.
    event_payload_type: Option<u8>,
    epoch: Option<Instant>,
    source: Option<Source>,
    last_fraction: f32,
    /// Middle 32 bits of the NTP time of the last sender report, and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

impl RtpReceiver {
    pub fn new(clock_rate: u32) -> Self {
        Self { clock_rate, event_payload_type: None, epoch: None, source: None, last_fraction: 0.0, last_sr: None }
    }

    pub fn set_event_payload_type(&mut self, payload_type: Option<u8>) {
        self.event_payload_type = payload_type;
    }

    /// The SSRC of the source being received, once one is.
    pub fn ssrc(&self) -> Option<u32> {
        self.source.as_ref().map(|s| s.ssrc)
    }

    /// Accounts for a packet that arrived at `now` with `payload_len` octets of payload. A
    /// new SSRC replaces the old source (a re-INVITE or a transfer changes senders).
    pub fn on_packet(&mut self, header: &Header, payload_len: usize, now: Instant) -> Arrival {
        let epoch = *self.epoch.get_or_insert(now);
        let source = match &mut self.source {
            Some(s) if s.ssrc == header.ssrc => s,
            slot => slot.insert(Source::new(header.ssrc, header.sequence_number)),
        };
        let arrival = source.update_seq(header.sequence_number);
        if arrival != Arrival::Accepted {
            return arrival;
        }
        source.octets += payload_len as u64;
        if self.event_payload_type != Some(header.payload_type) {
            let elapsed = now.duration_since(epoch);
            let arrival_ts = (elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u32;
            // Modulo 2^32 like the timestamps: only differences between packets matter.
            let transit = arrival_ts.wrapping_sub(header.timestamp);
            if let Some(previous) = source.transit {
                let d = f64::from((transit.wrapping_sub(previous) as i32).unsigned_abs());
                source.jitter += (d - source.jitter) / 16.0;
            }
            source.transit = Some(transit);
        }
        Arrival::Accepted
    }

    /// Records a sender report from our source: its NTP time (64-bit) arrived at `now`.
    pub fn on_sender_report(&mut self, ntp_time: u64, now: Instant) {
        self.last_sr = Some(((ntp_time >> 16) as u32, now));
    }

    /// Figures so far, without starting a new report interval.
    pub fn stats(&self) -> Option<ReceiveStats> {
        let s = self.source.as_ref().filter(|s| s.probation == 0)?;
        let expected = s.expected();
        Some(ReceiveStats {
            ssrc: s.ssrc,
            packets: s.received,
            octets: s.octets,
            expected,
            lost: expected as i64 - s.received as i64,
            fraction_lost: self.last_fraction,
            jitter_ms: s.jitter * 1000.0 / f64::from(self.clock_rate),
            highest_sequence: s.extended_max(),
        })
    }

    /// A reception report block for an RTCP SR/RR sent at `now`, starting a new interval
    /// for the fraction lost (RFC 3550 A.3). `None` before a source is established.
    pub fn report_block(&mut self, now: Instant) -> Option<ReceptionReport> {
        let s = self.source.as_mut().filter(|s| s.probation == 0)?;
        let expected = s.expected();
        let lost = (expected as i64 - s.received as i64).clamp(-0x80_0000, 0x7F_FFFF);
        let expected_interval = expected.saturating_sub(s.expected_prior);
        let received_interval = s.received.saturating_sub(s.received_prior);
        s.expected_prior = expected;
        s.received_prior = s.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        self.last_fraction = f32::from(fraction) / 256.0;
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => (lsr, to_ntp_short(now.duration_since(at))),
            None => (0, 0),
        };
        Some(ReceptionReport {
            ssrc: s.ssrc,
            fraction_lost: fraction,
            total_lost: (lost as i32 as u32) & 0x00FF_FFFF,
            last_sequence_number: s.extended_max(),
            jitter: s.jitter as u32,
            last_sender_report: lsr,
            delay: dlsr,
        })
    }
}

/// A duration in the 1/65536 s units of LSR/DLSR.
pub(crate) fn to_ntp_short(d: Duration) -> u32 {
    ((d.as_nanos() << 16) / 1_000_000_000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(seq: u16, ts: u32) -> Header {
        Header { version: 2, payload_type: 0, sequence_number: seq, timestamp: ts, ssrc: 42, ..Header::default() }
    }

    /// Feeds packets 20 ms apart in sequence order `seqs`, timestamps following sequence.
    fn feed(rx: &mut RtpReceiver, start: Instant, seqs: impl IntoIterator<Item = u16>) {
        for (i, seq) in seqs.into_iter().enumerate() {
            let ts = u32::from(seq).wrapping_mul(160);
            rx.on_packet(&header(seq, ts), 160, start + Duration::from_millis(20 * i as u64));
        }
    }

    #[test]
    fn counts_across_sequence_wrap_around() {
        let mut rx = RtpReceiver::new(8000);
        let t0 = Instant::now();
        feed(&mut rx, t0, (65500..=65535).chain(0..100));
        let s = rx.stats().unwrap();
        // The first packet is spent on probation (RFC 3550 A.1).
        assert_eq!(s.packets, 135);
        assert_eq!(s.expected, 135);
        assert_eq!(s.lost, 0);
        assert_eq!(s.highest_sequence, 65536 + 99);
    }

    #[test]
    fn loss_fraction_and_cumulative_loss_per_interval() {
        let mut rx = RtpReceiver::new(8000);
        let t0 = Instant::now();
        // 1..=100 counted (0 is spent on probation), 10, 20 … 90 missing: 9 lost of 100.
        feed(&mut rx, t0, (0..=100u16).filter(|s| *s < 2 || s % 10 != 0 || *s == 100));
        let block = rx.report_block(t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(block.total_lost, 9);
        assert_eq!(block.fraction_lost, (9 * 256 / 100) as u8);
        assert_eq!(block.last_sequence_number, 100);
        // A clean interval next: fraction back to zero, the total stays.
        feed(&mut rx, t0 + Duration::from_secs(3), 101..=200);
        let block = rx.report_block(t0 + Duration::from_secs(10)).unwrap();
        assert_eq!((block.fraction_lost, block.total_lost), (0, 9));
    }

    #[test]
    fn reordered_and_duplicate_packets_do_not_count_as_loss() {
        let mut rx = RtpReceiver::new(8000);
        let t0 = Instant::now();
        feed(&mut rx, t0, [0, 1, 2, 4, 3, 5, 5, 6]);
        let s = rx.stats().unwrap();
        assert_eq!(s.expected, 6, "sequence 1..=6 after probation");
        assert_eq!(s.lost, -1, "one duplicate");
    }

    #[test]
    fn a_big_jump_is_rejected_once_then_taken_as_a_restart() {
        let mut rx = RtpReceiver::new(8000);
        let t0 = Instant::now();
        feed(&mut rx, t0, 0..10);
        assert_eq!(rx.on_packet(&header(30000, 0), 160, t0), Arrival::Rejected);
        assert_eq!(rx.on_packet(&header(30001, 160), 160, t0), Arrival::Accepted);
        let s = rx.stats().unwrap();
        assert_eq!((s.packets, s.expected), (1, 1));
    }

    #[test]
    fn jitter_follows_rfc_3550_a8_on_a_virtual_clock() {
        let mut rx = RtpReceiver::new(8000);
        let t0 = Instant::now();
        // Perfectly paced: no jitter.
        feed(&mut rx, t0, 0..50);
        assert!(rx.stats().unwrap().jitter_ms < 0.01);
        // Then every packet alternates ±5 ms around its slot: |D| = 10 ms = 80 units, and
        // the estimate converges to it.
        let mut rx = RtpReceiver::new(8000);
        for i in 0..400u16 {
            let offset = if i % 2 == 0 { 0 } else { 10 };
            let at = t0 + Duration::from_millis(20 * u64::from(i) + offset);
            rx.on_packet(&header(i, u32::from(i) * 160), 160, at);
        }
        let jitter = rx.stats().unwrap().jitter_ms;
        assert!((jitter - 10.0).abs() < 0.5, "jitter {jitter} ms");
    }

    #[test]
    fn lsr_and_dlsr_echo_the_last_sender_report() {
        let mut rx = RtpReceiver::new(8000);
        let t0 = Instant::now();
        feed(&mut rx, t0, 0..5);
        let ntp = 0x1234_5678_9ABC_DEF0u64;
        rx.on_sender_report(ntp, t0);
        let block = rx.report_block(t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(block.last_sender_report, 0x5678_9ABC);
        assert_eq!(block.delay, 32768, "0.5 s in 1/65536 s");
    }
}
