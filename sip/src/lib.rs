//! The Callmesh SIP stack.
//!
//! Layered like the protocol: [`message`] is the codec (zero-copy parse, typed headers,
//! builder, validation, stream framing). Everything above it that holds protocol state is
//! sans-IO: it takes `(input, now)` and is polled for transmits, timeouts and events.

pub mod message;
pub mod transaction;
pub mod dialog;
pub mod auth;
