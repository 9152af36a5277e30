//! The Callmesh media node: anchors RTP between the legs of each call.
//!
//! - [`ports`]: the pool of even/odd RTP/RTCP port pairs.
//! - [`relay`]: one session's relay task (latching, counters, dead-media detection).
//! - [`latch`]: safe latching — which source a leg takes media from.
//! - [`counters`]: per-leg counters and RFC 3550 reception figures.
//! - [`dtmf`]: RFC 4733 events read from and written into relayed streams.
//! - [`stream`]: one continuous RTP stream toward each leg, whatever far end is behind.
//! - [`recording`]: a room's WAV and JSON sidecar, written off the mixing task.
//! - [`tap`]: a relayed call's recording, off the relay.
//! - [`room`]: a conference room — seats terminated here, mixed with mix-minus.
//! - [`wire`]: a room seat's negotiated stream on the bus.
//! - [`node`]: the role on the bus (allocate, connect, release, media events).
//! - `node_rooms`: the node's rooms on the bus (seats, streams, prompts, recordings).
//! - [`reaper`]: relays whose call is gone, released.
//! - [`placement`]: which media node takes a call (headroom, zone).
//! - [`client`]: how session nodes call it.

mod allocation;
pub mod client;
pub mod counters;
pub mod dtmf;
pub mod latch;
pub mod limits;
pub mod node;
mod node_rooms;
pub mod placement;
pub mod ports;
pub mod reaper;
pub mod recording;
pub mod relay;
pub mod room;
pub mod rooms;
pub mod stream;
pub mod tap;
pub mod transcode;
pub mod wire;

pub use self::client::{Allocation, FarMedia, MediaClient, MediaError, Seat};
pub use self::node::{MediaConfig, MediaNode};
pub use self::placement::Placement;
