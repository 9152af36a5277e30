//! SDP as Callmesh uses it: a small owned model of a session description (what offer/answer
//! needs: origin, connection, media lines, codecs, direction, ptime, other attributes),
//! parsed (`parse`) and printed (`write`) by us, negotiated per RFC 3264
//! (`negotiate`) with the options of the SDK (`options`), and relayed by a B2BUA with the
//! media pointed at its anchor (`anchor`).

mod anchor;
mod codec;
mod direction;
mod events;
pub mod negotiate;
pub mod options;
mod parse;
mod transcode;
mod write;

use std::net::{IpAddr, SocketAddr};

pub use anchor::{AnchorOrigin, anchor, as_new_offer};
pub use codec::Codec;
pub use direction::Direction;
pub use events::{telephone_event_pt, with_telephone_event, without_telephone_event};
pub use negotiate::{LocalMedia, Negotiated, NegotiationError, TelephoneEvent, answer_offer, apply_answer, build_offer};
pub use options::{NegotiationOptions, NegotiationStrategy};
pub use parse::SdpError;
pub use transcode::{answer_within, audio_codecs, transcodable, with_transcodable};

/// A far end's media as a relay must know it (from its SDP and its SIP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FarMedia {
    /// Where it wants RTP (RTCP on the next port).
    pub rtp: std::net::SocketAddr,
    /// The RFC 4733 payload type it negotiated.
    pub events: Option<u8>,
    /// The address its SIP comes from or goes to: behind NAT its RTP comes from there too,
    /// and a relay takes RTP only from `rtp`'s or this address.
    pub signal: Option<std::net::IpAddr>,
    /// The clock rate of its first audio codec (RTP timestamps, for jitter).
    pub clock_rate: u32,
    /// Its audio codecs on its payload types (not events): what it sends and can receive.
    /// A relay transcodes what the other far end sends in a codec not among them.
    pub codecs: Vec<Codec>,
}

/// Larger bodies are refused before parsing: no real audio SDP comes close.
pub const MAX_SDP_BYTES: usize = 16 * 1024;

/// A session description (RFC 4566) reduced to what offer/answer reads and writes.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionDescription {
    pub origin: Origin,
    /// `s=`; "-" when there is nothing to say.
    pub session_name: String,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level attributes other than direction, in order (`name`, optional value).
    pub attributes: Vec<Attribute>,
    /// Session-level direction attribute, if any (media-level overrides it).
    pub direction: Option<Direction>,
    pub media: Vec<MediaDescription>,
}

/// The `o=` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub username: String,
    pub session_id: u64,
    pub session_version: u64,
    pub address: String,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaDescription {
    /// `audio`, `video`, `application`, …
    pub kind: String,
    /// 0 = rejected or disabled stream.
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, …
    pub proto: String,
    /// The format list as written (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Codecs described by the format list, in its order (static types get their RFC 3551
    /// names even without `a=rtpmap`).
    pub codecs: Vec<Codec>,
    /// Media-level direction attribute, if any.
    pub direction: Option<Direction>,
    /// `a=ptime` in milliseconds.
    pub ptime: Option<u32>,
    /// `a=rtcp` port, when the stream says where its RTCP goes.
    pub rtcp_port: Option<u16>,
    /// Other attributes, in order.
    pub attributes: Vec<Attribute>,
}

/// An attribute kept as text: `a=name` or `a=name:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

impl Attribute {
    pub fn new(name: impl Into<String>, value: Option<String>) -> Self {
        Self { name: name.into(), value }
    }
}

impl SessionDescription {
    /// The first audio section that is RTP, with its index.
    pub fn audio(&self) -> Option<(usize, &MediaDescription)> {
        self.media.iter().enumerate().find(|(_, m)| m.kind == "audio" && m.proto.starts_with("RTP/"))
    }

    /// The direction in force for `media`: its own attribute, else the session's, else sendrecv.
    pub fn direction_of(&self, media: &MediaDescription) -> Direction {
        media.direction.or(self.direction).unwrap_or(Direction::SendRecv)
    }

    /// Where `media` wants its RTP: its own `c=`, else the session's; `None` for a rejected
    /// stream or a missing address.
    pub fn rtp_addr(&self, media: &MediaDescription) -> Option<SocketAddr> {
        if media.port == 0 {
            return None;
        }
        Some(SocketAddr::new(media.connection.or(self.connection)?, media.port))
    }
}

impl MediaDescription {
    /// The codec with payload type `pt`, if this section lists it.
    pub fn codec(&self, pt: u8) -> Option<&Codec> {
        self.codecs.iter().find(|c| c.payload_type == pt)
    }

    /// The value of the first attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name)).and_then(|a| a.value.as_deref())
    }
}
