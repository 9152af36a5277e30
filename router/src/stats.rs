//! Counters of a router, for `/metrics`.

use std::sync::Arc;

use cluster::drain::InFlight;
pub use cluster::metrics::Counter;

#[derive(Debug, Default)]
pub struct RouterStats {
    /// Calls sent to the session nodes.
    pub routed: Counter,
    /// Calls refused (policy, no route, user not registered, no decision).
    pub rejected: Counter,
    /// Calls being routed now.
    pub in_flight: Arc<InFlight>,
}
