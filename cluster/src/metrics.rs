//! Process-wide counters of the fabric, read by the nodes' `/metrics` endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bus messages that could not be decoded into their contract type (logged and dropped).
pub static DECODE_ERRORS: AtomicU64 = AtomicU64::new(0);
/// Messages the in-process bus dropped because a subscriber stayed full too long.
pub static SLOW_CONSUMER_DROPS: AtomicU64 = AtomicU64::new(0);

pub fn decode_errors() -> u64 {
    DECODE_ERRORS.load(Ordering::Relaxed)
}

pub fn slow_consumer_drops() -> u64 {
    SLOW_CONSUMER_DROPS.load(Ordering::Relaxed)
}

/// A monotonically increasing counter, for the per-node statistics every role exposes.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A Prometheus histogram of durations: cumulative buckets by upper bound (seconds), their
/// sum and count. Lock-free; observing costs a few atomic adds.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds in seconds, ascending; `+Inf` is implied.
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    buckets: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

/// Bounds for latencies of a network hop or a call setup: 1 ms to 10 s.
pub const LATENCY_BOUNDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new(LATENCY_BOUNDS)
    }
}

/// Bounds for recoveries after a node's death, which take seconds (a death is declared
/// after 3 s of silence): 1 s to 60 s.
pub const RECOVERY_BOUNDS: &[f64] = &[1.0, 2.0, 3.0, 3.25, 3.5, 3.75, 4.0, 4.5, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 60.0];

/// A [`Histogram`] of recovery times ([`RECOVERY_BOUNDS`]).
#[derive(Debug)]
pub struct RecoveryHistogram(pub Histogram);

impl Default for RecoveryHistogram {
    fn default() -> Self {
        RecoveryHistogram(Histogram::new(RECOVERY_BOUNDS))
    }
}

impl std::ops::Deref for RecoveryHistogram {
    type Target = Histogram;

    fn deref(&self) -> &Histogram {
        &self.0
    }
}

/// What a histogram holds at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Each bound with the count of observations at or below it (cumulative), `+Inf` last.
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram { bounds, buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(), sum_micros: AtomicU64::new(0) }
    }

    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.iter().position(|b| secs <= *b).unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            total += b.load(Ordering::Relaxed);
            buckets.push((self.bounds.get(i).copied().unwrap_or(f64::INFINITY), total));
        }
        let sum_seconds = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        HistogramSnapshot { buckets, sum_seconds, count: total }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_sum_adds_up() {
        let h = Histogram::new(&[0.01, 0.1]);
        for ms in [5, 10, 50, 2000] {
            h.observe(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.01, 2), (0.1, 3), (f64::INFINITY, 4)]);
        assert_eq!(s.count, 4);
        assert!((s.sum_seconds - 2.065).abs() < 1e-9, "{}", s.sum_seconds);
    }
}
