//! Callmesh session core: what a call *is*, independent of where it runs.
//!
//! - [`leg`]: the call-leg state table (one SIP dialog from our side) and its machine.
//! - [`engine`]: the sans-IO call engine: a call of any number of legs, its SIP and its
//!   media requests as outputs, its state a value.
//! - [`policy`] and [`interceptor`]: deciding what happens to an incoming call before any
//!   session exists (the seeds' `IncomingCallPolicy` and `SignalingInterceptor`).
//! - [`peer`]: the `SimplePeer` SDK — real calls with real audio in a few lines, each run by
//!   the same call engine (its local mode), with the seeds' handlers and policies.

pub mod engine;
pub mod interceptor;
pub mod leg;
pub mod peer;
pub mod policy;

pub use peer::{SimplePeer, SimplePeerBuilder};
