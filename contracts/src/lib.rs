//! The contracts between Callmesh's parts: the protobuf messages of the bus and the
//! registry, and the call engine's state, generated from `proto/callmesh/v1/*.proto`; and
//! the helpers every sender uses to stamp them. A crate of its own (prost only) so the SDK's
//! call engine and the cluster share one set of types without the SDK depending on NATS.

use std::time::{SystemTime, UNIX_EPOCH};

#[allow(clippy::all, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/callmesh.v1.rs"));
}

pub use generated::*;

/// The contract version this build speaks. Bumped only for incompatible changes; added
/// fields do not need a bump.
pub const SCHEMA_VERSION: u32 = 1;

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The `Meta` header for a message sent now by `sender`.
pub fn meta(sender: &str) -> Option<Meta> {
    Some(Meta { schema_version: SCHEMA_VERSION, sender: sender.to_owned(), sent_at_unix_ms: unix_ms() })
}

/// True when a received message's schema is one this build understands.
pub fn is_compatible(meta: Option<&Meta>) -> bool {
    meta.is_some_and(|m| m.schema_version == SCHEMA_VERSION)
}

/// The encoded descriptors of every contract (`FileDescriptorSet`), for gRPC server
/// reflection.
#[cfg(feature = "grpc")]
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/callmesh_descriptor.bin"));
