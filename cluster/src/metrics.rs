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
