//! The Callmesh router: decides what happens to each new call.
//!
//! - [`routes`]: the dial plan (routes by user pattern, URI templates or registered users).
//! - [`node`]: the role — policy through the session core's `SignalingInterceptor`, then the
//!   dial plan; routed calls to the session nodes, refusals to the caller's edge.

pub mod node;
pub mod routes;
pub mod stats;

pub use self::node::{RouterConfig, start};
pub use self::routes::{Route, Target};
