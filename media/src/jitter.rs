//! An adaptive jitter buffer, sans-IO: packets go in as they arrive (any order), one frame
//! comes out per frame period. It reorders by sequence number, drops packets that come too
//! late, reports losses for concealment, sizes its delay from the measured jitter (plus a
//! margin that grows after underruns and decays when the network calms), and absorbs clock
//! skew: a fast sender makes it drop a frame when it holds too much, a slow one makes it
//! stretch (conceal without skipping) when it runs dry.
//!
//! [`Concealer`] turns a lost PCM frame into a faded repeat of the last good one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Frames of margin underruns may add on top of the jitter-based delay.
const MAX_MARGIN: u32 = 2;

/// Tuning of a jitter buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterConfig {
    /// Duration of one packet's audio.
    pub frame: Duration,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Pops without an underrun after which the extra margin shrinks by one frame.
    pub calm_frames: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            frame: Duration::from_millis(20),
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(300),
            calm_frames: 500,
        }
    }
}

/// What to play for this frame period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout<T> {
    Frame(T),
    /// A frame is missing (lost, or not here yet): conceal.
    Missing,
    /// Still filling up before the first frame: play silence.
    Buffering,
}

/// Counters since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub played: u64,
    /// Frames concealed because their packet never came in time.
    pub lost: u64,
    /// Frames concealed while the buffer was empty (the sender is behind).
    pub underruns: u64,
    /// Packets that arrived after their frame was played.
    pub late: u64,
    /// Frames dropped to shrink an over-full buffer (the sender is ahead).
    pub dropped: u64,
    pub duplicates: u64,
}

/// Reorders and paces one stream's frames.
#[derive(Debug)]
pub struct JitterBuffer<T> {
    config: JitterConfig,
    clock_rate: u32,
    slots: BTreeMap<u64, T>,
    /// Extended sequence number of the next frame to play.
    next: Option<u64>,
    /// The highest extended sequence number seen, to unwrap the next ones.
    highest: Option<u64>,
    first_arrival: Option<Instant>,
    /// Arrival − timestamp of the previous packet, in timestamp units (RFC 3550 A.8).
    transit: Option<u32>,
    jitter: f64,
    /// Frames of margin added by underruns.
    margin: u32,
    calm: u32,
    stats: JitterStats,
}

impl<T> JitterBuffer<T> {
    pub fn new(config: JitterConfig, clock_rate: u32) -> Self {
        Self {
            config,
            clock_rate,
            slots: BTreeMap::new(),
            next: None,
            highest: None,
            first_arrival: None,
            transit: None,
            jitter: 0.0,
            margin: 0,
            calm: 0,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// A new source (SSRC) took the stream over — a re-INVITE, a transfer, the far end's
    /// media moved to another node: its numbering and timing start afresh (its packets
    /// would otherwise be taken for long late, or far ahead). The delay learnt is kept.
    pub fn restart(&mut self) {
        self.slots.clear();
        (self.next, self.highest, self.first_arrival, self.transit) = (None, None, None, None);
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Measured inter-arrival jitter.
    pub fn jitter(&self) -> Duration {
        Duration::from_secs_f64(self.jitter / f64::from(self.clock_rate))
    }

    /// The delay the buffer aims for now.
    pub fn target_delay(&self) -> Duration {
        self.config.frame * self.target_frames()
    }

    fn frame_units(&self) -> f64 {
        self.config.frame.as_secs_f64() * f64::from(self.clock_rate)
    }

    fn target_frames(&self) -> u32 {
        let frame = self.frame_units();
        let from_jitter = (3.0 * self.jitter / frame).ceil() as u32;
        let min = (self.config.min_delay.as_secs_f64() * f64::from(self.clock_rate) / frame).ceil() as u32;
        let max = (self.config.max_delay.as_secs_f64() * f64::from(self.clock_rate) / frame).floor() as u32;
        (from_jitter + self.margin).clamp(min.max(1), max.max(1))
    }

    /// Takes a packet that arrived at `now`.
    pub fn push(&mut self, sequence: u16, timestamp: u32, frame: T, now: Instant) {
        let ext = self.extend(sequence);
        self.measure(timestamp, now);
        self.first_arrival.get_or_insert(now);
        if self.next.is_some_and(|n| ext < n) {
            self.stats.late += 1;
            return;
        }
        if self.slots.insert(ext, frame).is_some() {
            self.stats.duplicates += 1;
        }
        // A sender far ahead of us: never hold more than the maximum delay's worth.
        let max = self.target_frames() as usize + 2;
        while self.slots.len() > max.max(4) * 4 {
            self.drop_oldest();
        }
    }

    /// The frame for the period starting at `now`.
    pub fn pop(&mut self, now: Instant) -> Playout<T> {
        let Some(next) = self.next else {
            let Some(first) = self.first_arrival else { return Playout::Buffering };
            if now.duration_since(first) < self.target_delay() {
                return Playout::Buffering;
            }
            let Some((&start, _)) = self.slots.first_key_value() else { return Playout::Buffering };
            self.next = Some(start);
            return self.pop(now);
        };
        // Holding well over the target: the sender runs fast, skip a frame.
        let target = self.target_frames() as usize;
        if self.slots.len() > target * 3 / 2 + 2 {
            self.drop_oldest();
        }
        let next = self.next.unwrap_or(next);
        self.calm += 1;
        if self.calm >= self.config.calm_frames {
            self.calm = 0;
            self.margin = self.margin.saturating_sub(1);
        }
        if let Some(frame) = self.slots.remove(&next) {
            self.next = Some(next + 1);
            self.stats.played += 1;
            return Playout::Frame(frame);
        }
        let span = self.highest.filter(|&h| h >= next).map_or(0, |h| h - next + 1);
        if span == 0 {
            // Nothing to play: the sender is behind. Stretch, and keep a little more in hand.
            self.stats.underruns += 1;
            self.margin = (self.margin + 1).min(MAX_MARGIN);
            self.calm = 0;
        } else if span < target as u64 {
            // Later packets are here but we hold less than the target: give `next` time.
            self.stats.underruns += 1;
        } else {
            self.next = Some(next + 1);
            self.stats.lost += 1;
        }
        Playout::Missing
    }

    fn drop_oldest(&mut self) {
        if let Some((seq, _)) = self.slots.pop_first() {
            self.stats.dropped += 1;
            if self.next.is_some_and(|n| n <= seq) {
                self.next = Some(seq + 1);
            }
        }
    }

    /// 16-bit sequence number → 64-bit, nearest to the highest seen.
    fn extend(&mut self, sequence: u16) -> u64 {
        let ext = match self.highest {
            None => (1u64 << 32) + u64::from(sequence),
            Some(h) => {
                let delta = sequence.wrapping_sub(h as u16) as i16;
                (h as i64 + i64::from(delta)) as u64
            }
        };
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        ext
    }

    fn measure(&mut self, timestamp: u32, now: Instant) {
        let epoch = *self.first_arrival.get_or_insert(now);
        let arrival = (now.duration_since(epoch).as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u32;
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(previous) = self.transit {
            let d = f64::from((transit.wrapping_sub(previous) as i32).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }
}

/// Conceals lost PCM frames: the last good frame again, each repeat 6 dB quieter, silence
/// after four.
#[derive(Debug, Clone, Default)]
pub struct Concealer {
    last: Vec<i16>,
    run: u32,
}

impl Concealer {
    /// Remembers a frame that was played.
    pub fn good(&mut self, frame: &[i16]) {
        self.last.clear();
        self.last.extend_from_slice(frame);
        self.run = 0;
    }

    /// A stand-in of `samples` for a lost frame.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.run += 1;
        let shift = self.run.min(15);
        let start = out.len();
        if self.run <= 4 && !self.last.is_empty() {
            out.extend(self.last.iter().cycle().take(samples).map(|&s| s >> shift));
        }
        out.resize(start + samples, 0);
    }
}

#[cfg(test)]
#[path = "jitter_tests.rs"]
mod tests;
