//! The Callmesh SIP stack, layered like the protocol:
//!
//! - [`message`]: the codec — zero-copy parsing over `bytes::Bytes`, typed headers, a
//!   builder, request validation with precise statuses, stream framing.
//! - [`transaction`]: RFC 3261 §17 client and server transactions, sans-IO, with a
//!   virtual-clock friendly `handle` / `poll_*` interface.
//! - [`dialog`]: RFC 3261 §12 dialogs, in-dialog request construction, forking.
//! - [`auth`]: digest authentication, server and client.
//! - [`transport`] and [`endpoint`]: tokio UDP/TCP transports and the driver task that owns
//!   the transaction layer for an application (the transaction user).
//! - [`shard_map`]: the sharded map the large tables use, so they grow without stalls.

pub mod auth;
pub mod dialog;
pub mod endpoint;
pub mod message;
pub mod shard_map;
pub mod transaction;
pub mod transport;
