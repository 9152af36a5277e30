//! Counters of a router, for `/metrics`.

pub use cluster::metrics::Counter;

#[derive(Debug, Default)]
pub struct RouterStats {
    /// Calls sent to the session nodes.
    pub routed: Counter,
    /// Calls refused (policy, no route, user not registered, no decision).
    pub rejected: Counter,
}
