//! Session descriptions in messages, as the engine reads them: the SDP body of a message
//! (only `application/sdp`), parsed, kept with the bytes it came as, and where its audio
//! wants RTP.

use std::net::SocketAddr;
use std::sync::Arc;

use media::sdp::{FarMedia, SessionDescription};
use sip::message::Message;

use super::Engine;
use super::io::LegId;

/// A far end's session description: parsed, and the bytes it arrived as (what a snapshot
/// keeps, so writing one prints no SDP). Shared: a leg's description is read for its partner.
#[derive(Debug)]
pub(crate) struct FarSdp {
    pub parsed: SessionDescription,
    pub raw: bytes::Bytes,
}

impl FarSdp {
    pub fn parse(raw: bytes::Bytes) -> Option<Arc<FarSdp>> {
        let parsed = SessionDescription::parse(&raw).ok()?;
        Some(Arc::new(FarSdp { parsed, raw }))
    }
}

/// The body of a message that carries SDP (`application/sdp`, not empty).
pub(crate) fn sdp_body(message: &Message) -> Option<&[u8]> {
    let is_sdp = message.content_type().is_some_and(|t| t.to_ascii_lowercase().starts_with("application/sdp"));
    Some(message.body()).filter(|b| is_sdp && !b.is_empty())
}

/// The SDP of a message, kept with its bytes.
pub(crate) fn far_sdp(message: &Message) -> Option<Arc<FarSdp>> {
    sdp_body(message)?;
    FarSdp::parse(message.body_bytes())
}

/// The SDP body of a message, when it has one that parses.
pub(crate) fn sdp_of(message: &Message) -> Option<SessionDescription> {
    SessionDescription::parse(sdp_body(message)?).ok()
}

/// Where a description's audio wants RTP (not for `0.0.0.0`: a hold).
pub(super) fn rtp_addr(sdp: &FarSdp) -> Option<SocketAddr> {
    let (_, audio) = sdp.parsed.audio()?;
    sdp.parsed.rtp_addr(audio).filter(|a| !a.ip().is_unspecified())
}

impl Engine {
    /// `leg`'s far end as the relay must know it, once its SDP gave an address.
    pub(super) fn far_media(&self, leg: LegId) -> Option<FarMedia> {
        let sdp = self.leg(leg).remote_sdp.as_deref()?;
        let rtp = rtp_addr(sdp)?;
        let signal = Some(self.leg(leg).route.peer.addr.ip()).filter(|ip| !ip.is_unspecified());
        let clock_rate = sdp.parsed.audio().and_then(|(_, m)| m.codecs.first()).map_or(8000, |c| c.clock_rate);
        Some(FarMedia { rtp, events: self.events_pt(leg), signal, clock_rate })
    }
}
