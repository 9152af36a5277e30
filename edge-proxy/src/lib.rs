//! The Callmesh SIP edge: where SIP enters and leaves the cluster.
//!
//! - [`node`]: the role — endpoint events to the bus, bus commands to the endpoint.
//! - [`registrar`]: REGISTER with digest authentication, bindings in the registry.
//! - `inbound`: what arrives from SIP; `commands`: what sessions ask the edge to do;
//!   `shared`: several edges on one address.
//! - [`peers`]: flow conversions; [`stats`]: counters.

mod commands;
mod inbound;
pub mod node;
pub mod peers;
pub mod registrar;
mod shared;
pub mod stats;
mod unclaimed;

pub use self::node::{EdgeConfig, EdgeError, EdgeHandle, start};
pub use self::registrar::RegistrarConfig;
