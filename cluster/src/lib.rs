//! The Callmesh cluster fabric: what joins the nodes.
//!
//! - [`contracts`]: the protobuf messages of every bus subject and registry bucket (the
//!   `callmesh-contracts` crate, re-exported).
//! - [`subjects`]: typed subject builders and ids.
//! - [`bus`]: the bus trait with [`bus::NatsBus`] and [`bus::LocalBus`], and typed helpers.
//! - [`registry`]: the replicated key-value store with [`registry::JetStreamRegistry`] and
//!   [`registry::MemoryRegistry`]; [`ownership`] (fenced session ownership) and
//!   [`membership`] (node heartbeats and liveness) on top of it.
//! - [`journal`]: append-only logs with sequence numbers (the event feed, the call
//!   records), on JetStream streams or in memory.
//! - [`trace`]: trace context in bus headers; [`metrics`]: fabric counters; [`drain`]: graceful
//!   drain and the count of work in progress.

pub mod bus;
/// The protobuf contracts (the `callmesh-contracts` crate).
pub use contracts;
pub mod drain;
pub mod journal;
pub mod locations;
pub mod membership;
pub mod metrics;
pub mod ownership;
pub mod registry;
pub mod subjects;
pub mod tags;
pub mod trace;
