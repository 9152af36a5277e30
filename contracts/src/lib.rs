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

/// The calendar date (year, month 1-12, day 1-31, proleptic Gregorian) of a day counted
/// from the Unix epoch (Howard Hinnant's `civil_from_days`), for times written as text.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The `Meta` header for a message sent now by `sender`.
pub fn meta(sender: &str) -> Option<Meta> {
    Some(Meta { schema_version: SCHEMA_VERSION, sender: sender.to_owned(), sent_at_unix_ms: unix_ms() })
}

/// What an operator (through the API), or another leg of the call, asks of session
/// `session`: the `EdgeEvent` carrying it, from edge id `api`.
pub fn control_event(sender: &str, session: &str, action: call_control::Action) -> EdgeEvent {
    EdgeEvent {
        meta: meta(sender),
        session_id: session.to_owned(),
        edge_id: "api".into(),
        event: Some(edge_event::Event::Control(CallControl { action: Some(action) })),
    }
}

/// True when a received message's schema is one this build understands.
pub fn is_compatible(meta: Option<&Meta>) -> bool {
    meta.is_some_and(|m| m.schema_version == SCHEMA_VERSION)
}

/// The encoded descriptors of every contract (`FileDescriptorSet`), for gRPC server
/// reflection.
#[cfg(feature = "grpc")]
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/callmesh_descriptor.bin"));
