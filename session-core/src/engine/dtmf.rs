//! DTMF between legs that carry it differently: a far end that offered no RFC 4733
//! `telephone-event` sends and receives digits in SIP INFO (`application/dtmf-relay`); its
//! partner is offered events all the same (`media::sdp::with_telephone_event`) and answered
//! without them toward the first (`without_telephone_event`). When the two legs differ, an
//! INFO digit becomes RFC 4733 events the media node writes toward the partner, and events
//! the media node reads from the partner become an INFO. Legs that agree are left alone:
//! INFO is relayed as INFO and events ride the relayed RTP.

use media::sdp::{SessionDescription, telephone_event_pt, with_telephone_event, without_telephone_event};
use sip::message::{Message, Method};

use super::Engine;
use super::io::{CallEvent, LegId, MediaOutput, Output};
use super::leg::Pending;

/// How long a digit lasts when its INFO does not say (`Duration=` in ms).
const DEFAULT_DURATION_MS: u32 = 160;

/// `Duration=160` of an `application/dtmf-relay` body.
fn relay_duration(request: &Message) -> Option<u32> {
    let text = std::str::from_utf8(request.body()).ok()?;
    let line = text.lines().find(|l| l.trim_start().to_ascii_lowercase().starts_with("duration"))?;
    line.split('=').nth(1)?.trim().parse().ok()
}

impl Engine {
    /// The RFC 4733 payload type of leg `leg`'s far end, from its description.
    pub(super) fn events_pt(&self, leg: LegId) -> Option<u8> {
        telephone_event_pt(&self.leg(leg).remote_sdp.as_deref()?.parsed)
    }

    /// `far` as leg `toward` should get it with respect to events: without them for a far end
    /// that has none, with them when `far` has none (we map its INFO); `None`: unchanged.
    pub(super) fn events_for(&self, toward: LegId, far: &SessionDescription) -> Option<SessionDescription> {
        let far_has = telephone_event_pt(far).is_some();
        match self.leg(toward).remote_sdp.as_deref() {
            Some(own) if telephone_event_pt(&own.parsed).is_none() => far_has.then(|| without_telephone_event(far)),
            _ if !far_has && self.local.is_none() => Some(with_telephone_event(far)),
            _ => None,
        }
    }

    /// An INFO digit from `leg`, whose partner takes events and `leg` does not: written as
    /// events toward the partner by the media node. `false` when the legs agree.
    pub(super) fn dtmf_to_rtp(&mut self, leg: LegId, digit: char, request: &Message) -> bool {
        let Some(partner) = self.partner(leg).filter(|p| self.leg(*p).is_up()) else { return false };
        if self.local.is_some() || self.events_pt(leg).is_some() || self.events_pt(partner).is_none() {
            return false;
        }
        let duration_ms = relay_duration(request).unwrap_or(DEFAULT_DURATION_MS);
        let slot = self.leg(partner).slot;
        self.out.push_back(Output::Media(MediaOutput::Dtmf { slot, digit, duration_ms }));
        true
    }

    /// The media node read a digit from the far end on `slot`: an INFO to its partner,
    /// which takes no events.
    pub(super) fn dtmf_from_rtp(&mut self, slot: u32, digit: char, duration_ms: u32) {
        let from = self.legs.iter().find(|l| l.slot == slot && l.is_up() && self.partner.contains_key(&l.id)).map(|l| l.id);
        let Some(leg) = from else { return };
        self.out.push_back(Output::Event(CallEvent::Dtmf { leg, digit }));
        let Some(partner) = self.partner(leg).filter(|p| self.leg(*p).is_up() && self.events_pt(*p).is_none()) else { return };
        let body = format!("Signal={digit}\r\nDuration={duration_ms}\r\n");
        self.send_in_dialog(partner, Method::Info, Pending::Info, Some(("application/dtmf-relay", body)), &[]);
    }
}
