//! Counters of an edge, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
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
pub struct EdgeStats {
    /// New INVITEs published to the routers.
    pub calls: Counter,
    /// New calls refused with 503 because no node acted on them.
    pub unclaimed: Counter,
    /// In-dialog requests forwarded to their session.
    pub in_dialog: Counter,
    /// Forwarded in-dialog requests nobody answered (481 sent).
    pub unanswered: Counter,
    pub registrations: Counter,
    /// Commands from other nodes that could not be carried out (bad message, unknown
    /// transaction).
    pub bad_commands: Counter,
}
