//! The Callmesh router: decides what happens to each new call.
//!
//! - [`acd`]: queues, agents and strategies (the automatic call distributor).
//! - [`routes`]: the dial plan (routes by user pattern, URI templates or registered users).
//! - [`decider`]: a `SignalingInterceptor` served on the bus, for `RequireManual` routes.
//! - [`node`]: the role — policy through the session core's `SignalingInterceptor`, then the
//!   dial plan; routed calls to the session nodes, refusals to the caller's edge.

pub mod acd;
pub mod decider;
pub mod node;
pub mod routes;
pub mod stats;

pub use self::node::{Interceptors, RouterConfig, StartError, start};
pub use self::routes::{Route, RouteMedia, Target};
