//! Counters of an edge, for `/metrics`.

pub use cluster::metrics::{Counter, Histogram};

#[derive(Debug, Default)]
pub struct EdgeStats {
    /// New INVITEs published to the routers.
    pub calls: Counter,
    /// New calls refused with 503 because no node acted on them.
    pub unclaimed: Counter,
    /// New calls published again because no node acted on them within 1.5 s.
    pub published_again: Counter,
    /// Commands dropped because another copy of their call won it (`unclaimed.rs`).
    pub disowned: Counter,
    /// In-dialog requests forwarded to their session.
    pub in_dialog: Counter,
    /// Forwarded in-dialog requests nobody answered (481 sent).
    pub unanswered: Counter,
    pub registrations: Counter,
    /// Commands from other nodes that could not be carried out (bad message, unknown
    /// transaction).
    pub bad_commands: Counter,
    /// Responses relayed to the edge on our address that sent their request.
    pub relayed: Counter,
    /// From a new INVITE to the first ringing or answer sent back (post-dial delay as the
    /// caller sees it).
    pub call_setup: Histogram,
}
