//! The Callmesh session node: each call run by the call engine of the session core.
//!
//! - [`node`]: the role — routed calls in, one task per call.
//! - `call`: the driver — edge and media events into the engine, its outputs carried out
//!   (SIP through the edges, media requests, the call's state written to the registry).
//! - [`parties`]: who a call is between, from its engine's state.
//! - [`takeover`]: the calls of session nodes that die, resumed by those that survive.

mod call;
mod gone;
pub mod node;
pub mod parties;
pub mod takeover;

pub use self::node::{SessionConfig, SessionStats, start};
