//! The Callmesh session node: each call as a back-to-back user agent.
//!
//! - [`node`]: the role — routed calls in, one task per call.
//! - `call`: the call task — leg tables and bridge from the session core, edge and media
//!   events in, SIP through the edges out, the session record persisted before each step.
//! - [`sdp`]: pointing SDP at the media relay.

mod call;
pub mod node;
pub mod sdp;

pub use self::node::{SessionConfig, SessionStats, start};
