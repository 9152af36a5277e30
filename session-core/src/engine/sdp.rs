//! Session descriptions in messages, as the engine reads them: the SDP body of a message
//! (only `application/sdp`), parsed, kept with the bytes it came as, and where its audio
//! wants RTP.

use std::net::SocketAddr;
use std::sync::Arc;

use media::sdp::{Codec, FarMedia, SessionDescription, answer_within, with_transcodable};
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

/// A print of a far end's codecs (FNV-1a, stable across builds: snapshots keep it), to
/// tell a change from a repeat.
pub(super) fn codecs_print(codecs: &[Codec]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in codecs {
        let fields = [&[c.payload_type][..], c.name.as_bytes(), &c.clock_rate.to_be_bytes(), &c.channels.to_be_bytes()];
        for b in fields.into_iter().flatten() {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

impl Engine {
    /// `far` (the partner's description) adapted to what leg `toward` can take, when the
    /// media node transcodes (a relayed call): toward a leg that has not described its
    /// media (an offer to a callee), the codecs the node transcodes are added; toward one
    /// that has (its offer now answered, or a re-offer), a description sharing none of its
    /// codecs is given its own. `None`: `far` as it is.
    pub(super) fn codecs_for(&self, toward: LegId, far: &SessionDescription) -> Option<SessionDescription> {
        if self.local.is_some() {
            return None;
        }
        match self.leg(toward).remote_sdp.as_deref() {
            None => Some(with_transcodable(far)),
            Some(own) => answer_within(far, &own.parsed),
        }
    }

    /// `leg`'s far end as the relay must know it, once its SDP gave an address.
    pub(super) fn far_media(&self, leg: LegId) -> Option<FarMedia> {
        let sdp = self.leg(leg).remote_sdp.as_deref()?;
        let rtp = rtp_addr(sdp)?;
        let signal = Some(self.leg(leg).route.peer.addr.ip()).filter(|ip| !ip.is_unspecified());
        let clock_rate = sdp.parsed.audio().and_then(|(_, m)| m.codecs.first()).map_or(8000, |c| c.clock_rate);
        let codecs = media::sdp::audio_codecs(&sdp.parsed);
        Some(FarMedia { rtp, events: self.events_pt(leg), signal, clock_rate, codecs })
    }
}
