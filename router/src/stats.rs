//! Counters of a router, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

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

#[derive(Debug, Default)]
pub struct RouterStats {
    /// Calls sent to the session nodes.
    pub routed: Counter,
    /// Calls refused (policy, no route, user not registered, no decision).
    pub rejected: Counter,
}
