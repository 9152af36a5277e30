//! What a leg of a relay counts: packets and bytes each way, RFC 3550 loss and jitter of
//! what its far end sends (from `media::rtp::RtpReceiver`, summed over the sources a leg
//! has had), RTCP, and what was dropped — not RTP at all, or from a source the leg does
//! not take media from (safe latching), and the E-model MOS of each quality interval.
//! Atomics written by the relay task, read by anyone.

use std::sync::atomic::{AtomicU64, Ordering};

use media::quality::{CodecImpairment, QualityAlertLevel, QualityEstimate, QualityInputs};
use media::rtp::RtpReceiver;

/// Counters of one leg (what its far end sent us, and what we sent it).
#[derive(Debug, Default)]
pub struct LegCounters {
    pub packets_received: AtomicU64,
    pub bytes_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// RFC 3550 A.3 cumulative loss of received RTP.
    pub packets_lost: AtomicU64,
    /// RFC 3550 A.8 jitter of received RTP, in microseconds.
    pub jitter_us: AtomicU64,
    pub rtcp_packets: AtomicU64,
    /// Datagrams that were not RTP/RTCP, dropped.
    pub invalid_packets: AtomicU64,
    /// Packets from a source the leg does not take media from, dropped.
    pub refused_packets: AtomicU64,
    /// E-model MOS × 100 over the last quality interval, and the worst interval's (0: none).
    pub mos_centi: AtomicU64,
    pub worst_mos_centi: AtomicU64,
}

/// A snapshot of a leg's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct LegSnapshot {
    pub packets_received: u64,
    pub bytes_received: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_lost: u64,
    pub jitter_ms: f64,
    pub rtcp_packets: u64,
    pub invalid_packets: u64,
    pub refused_packets: u64,
    pub mos: f64,
    pub worst_mos: f64,
}

impl LegCounters {
    pub fn snapshot(&self) -> LegSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LegSnapshot {
            packets_received: l(&self.packets_received),
            bytes_received: l(&self.bytes_received),
            packets_sent: l(&self.packets_sent),
            bytes_sent: l(&self.bytes_sent),
            packets_lost: l(&self.packets_lost),
            jitter_ms: l(&self.jitter_us) as f64 / 1000.0,
            rtcp_packets: l(&self.rtcp_packets),
            invalid_packets: l(&self.invalid_packets),
            refused_packets: l(&self.refused_packets),
            mos: l(&self.mos_centi) as f64 / 100.0,
            worst_mos: l(&self.worst_mos_centi) as f64 / 100.0,
        }
    }

    pub fn count(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// RFC 3550 reception of one leg's RTP, across the sources it has over a call (a transfer
/// or a re-INVITE brings a new SSRC): the loss of earlier sources is kept.
#[derive(Debug, Clone)]
pub struct Reception {
    receiver: RtpReceiver,
    lost_before: u64,
    clock_rate: u32,
    /// The alert level last reported.
    level: Option<QualityAlertLevel>,
}

/// A leg's quality over one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    pub inputs: QualityInputs,
    pub estimate: QualityEstimate,
    /// The alert level changed with this interval.
    pub changed: bool,
}

impl Reception {
    pub fn new(clock_rate: u32) -> Self {
        let clock_rate = clock_rate.max(1000);
        Reception { receiver: RtpReceiver::new(clock_rate), lost_before: 0, clock_rate, level: None }
    }

    /// The quality of the interval since the last call (RFC 3550 A.3 fraction lost, A.8
    /// jitter; no round trip: the relay is not an end of the RTCP), recorded in `counters`.
    /// `None` before a source is established.
    pub fn interval(&mut self, now: std::time::Instant, counters: &LegCounters) -> Option<Quality> {
        let block = self.receiver.report_block(now)?;
        let codec = if self.clock_rate == 48_000 { CodecImpairment::OPUS } else { CodecImpairment::G711 };
        let inputs = media::quality::interval_inputs(block.fraction_lost, block.jitter, self.clock_rate, codec);
        let estimate = media::quality::estimate(&inputs);
        let centi = (estimate.mos * 100.0).round() as u64;
        counters.mos_centi.store(centi, Ordering::Relaxed);
        let worst = counters.worst_mos_centi.load(Ordering::Relaxed);
        if worst == 0 || centi < worst {
            counters.worst_mos_centi.store(centi, Ordering::Relaxed);
        }
        let changed = self.level != Some(estimate.level);
        self.level = Some(estimate.level);
        Some(Quality { inputs, estimate, changed })
    }

    /// A far end with another clock: a new receiver, the loss so far kept.
    pub fn restart(&mut self, clock_rate: u32) {
        let lost = self.lost_now();
        *self = Reception { lost_before: lost, level: self.level, ..Reception::new(clock_rate) };
    }

    fn lost_now(&self) -> u64 {
        self.lost_before + self.receiver.stats().map_or(0, |s| s.lost.max(0) as u64)
    }

    /// Accounts for an RTP packet (at least 12 bytes, version 2) and updates `counters`.
    pub fn on_packet(&mut self, packet: &[u8], now: std::time::Instant, counters: &LegCounters) {
        let header = rtp::header::Header {
            version: 2,
            marker: packet[1] & 0x80 != 0,
            payload_type: packet[1] & 0x7f,
            sequence_number: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
            ..Default::default()
        };
        if let Some(previous) = self.receiver.stats().filter(|s| s.ssrc != header.ssrc) {
            self.lost_before += previous.lost.max(0) as u64;
        }
        let payload = packet.len().saturating_sub(12 + 4 * usize::from(packet[0] & 0x0f));
        self.receiver.on_packet(&header, payload, now);
        counters.packets_lost.store(self.lost_now(), Ordering::Relaxed);
        if let Some(stats) = self.receiver.stats() {
            counters.jitter_us.store((stats.jitter_ms * 1000.0) as u64, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn packet(ssrc: u32, seq: u16) -> [u8; 172] {
        let mut p = [0u8; 172];
        p[0] = 0x80;
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p
    }

    #[test]
    fn loss_is_counted_per_rfc_3550_and_kept_across_sources() {
        let (counters, mut rx, t0) = (LegCounters::default(), Reception::new(8000), Instant::now());
        let mut at = 0;
        let mut feed = |rx: &mut Reception, ssrc: u32, seqs: &[u16]| {
            for &seq in seqs {
                rx.on_packet(&packet(ssrc, seq), t0 + Duration::from_millis(20 * at), &counters);
                at += 1;
            }
        };
        feed(&mut rx, 1, &[10, 11, 12, 14, 15, 18]);
        assert_eq!(counters.snapshot().packets_lost, 3, "13, 16 and 17");
        feed(&mut rx, 2, &[500, 501, 502, 504]);
        assert_eq!(counters.snapshot().packets_lost, 4, "the first source's 3 and the new one's 503");
        rx.restart(48_000);
        feed(&mut rx, 3, &[1, 2, 3]);
        assert_eq!(counters.snapshot().packets_lost, 4, "a new far end keeps what was lost before");
    }

    #[test]
    fn each_interval_is_scored_and_a_change_of_level_stands_out() {
        let (counters, t0) = (LegCounters::default(), Instant::now());
        let mut rx = Reception::new(8000);
        let at = |i: u64| t0 + Duration::from_millis(20 * i);
        for seq in 0..250u16 {
            rx.on_packet(&packet(3, seq), at(u64::from(seq)), &counters);
        }
        let clean = rx.interval(at(250), &counters).unwrap();
        assert!(clean.changed && clean.estimate.mos > 4.0, "{clean:?}");
        // The next 5 s lose every fifth packet: 20 %.
        for seq in (250..500u16).filter(|s| s % 5 != 0) {
            rx.on_packet(&packet(3, seq), at(u64::from(seq)), &counters);
        }
        let lossy = rx.interval(at(500), &counters).unwrap();
        assert!((19.0..21.0).contains(&lossy.inputs.loss_percent), "{lossy:?}");
        assert!(lossy.changed && lossy.estimate.mos < 3.0, "{lossy:?}");
        let snapshot = counters.snapshot();
        assert_eq!((snapshot.mos, snapshot.worst_mos), ((lossy.estimate.mos * 100.0).round() / 100.0, snapshot.mos));
        for seq in 500..750u16 {
            rx.on_packet(&packet(3, seq), at(u64::from(seq)), &counters);
        }
        assert!(rx.interval(at(750), &counters).unwrap().changed, "back to good");
        assert!(counters.snapshot().worst_mos < 3.0, "the worst interval is kept");
    }

    #[test]
    fn jitter_follows_arrival_against_timestamps() {
        let (counters, t0) = (LegCounters::default(), Instant::now());
        let mut rx = Reception::new(8000);
        for seq in 0..50u16 {
            rx.on_packet(&packet(7, seq), t0 + Duration::from_millis(20 * u64::from(seq)), &counters);
        }
        assert!(counters.snapshot().jitter_ms < 0.1, "on time: {}", counters.snapshot().jitter_ms);
        // Every other packet 10 ms late: A.8's estimate converges on 10 ms.
        for seq in 50..400u16 {
            let late = if seq % 2 == 0 { 10 } else { 0 };
            rx.on_packet(&packet(7, seq), t0 + Duration::from_millis(20 * u64::from(seq) + late), &counters);
        }
        let jitter = counters.snapshot().jitter_ms;
        assert!((9.0..11.0).contains(&jitter), "10 ms late every other packet: {jitter}");
    }
}
