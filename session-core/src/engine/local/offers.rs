//! A local call's offers and answers: our own descriptions from `LocalMedia`, the media set
//! up from each exchange, and the far end's re-offers asked of the user.

use media::sdp::{self, Direction, SessionDescription};
use sip::message::{HeaderName, Message};

use crate::engine::io::{CallEvent, LegId, MediaOutput, Output, ServerTx};
use crate::engine::{CALLER, Engine, sdp_of};
use crate::leg::{LegInput, LegState};

/// Whether an offer puts its receiver on hold: `sendonly`/`inactive`, or `c=0.0.0.0`.
fn offer_holds(offer: &SessionDescription) -> bool {
    let Some((_, audio)) = offer.audio().filter(|(_, a)| a.port != 0) else { return false };
    offer.direction_of(audio).is_hold() || offer.rtp_addr(audio).is_some_and(|a| a.ip().is_unspecified())
}

impl Engine {
    /// The call's INVITE is in: answer its offer, then ask whether to take the call.
    pub(in crate::engine) fn local_incoming(&mut self) {
        let invite = self.leg(CALLER).invite.clone();
        let offer = invite.as_ref().and_then(sdp_of);
        let local = self.local();
        let answer = offer.map(|o| sdp::answer_offer(&o, &local.end.media, &local.end.negotiation));
        match answer {
            Some(Ok((sdp, negotiated))) => local.answer = Some((sdp.to_string(), negotiated)),
            Some(Err(e)) => return self.reject_caller(488, &format!("Not Acceptable Here ({e})")),
            None => return self.reject_caller(488, "Not Acceptable Here (an SDP offer is required)"),
        }
        let replaces = invite.as_ref().and_then(|i| i.header(HeaderName::Replaces)).map(str::to_owned);
        self.work.push_back((CALLER, LegInput::Ring));
        self.out.push_back(Output::Event(CallEvent::Offered { leg: CALLER, replaces }));
    }

    /// Our pending answer (to the INVITE or a re-INVITE), the media set up from it.
    pub(in crate::engine) fn local_answer(&mut self) -> Option<String> {
        let (sdp, negotiated) = self.local().answer.take()?;
        self.out.push_back(Output::Media(MediaOutput::Local(negotiated)));
        Some(sdp)
    }

    /// 183 with our answer, the media set up: the caller hears us before the answer. The
    /// 2xx will carry the same answer (RFC 3264: one answer per offer).
    pub(super) fn early_media(&mut self) {
        if !matches!(self.leg(CALLER).state(), LegState::Incoming | LegState::Early) {
            return;
        }
        let Some((sdp, negotiated)) = self.local().answer.clone() else { return };
        self.out.push_back(Output::Media(MediaOutput::Local(negotiated)));
        self.respond_invite(CALLER, 183, "Session Progress", Some(sdp));
    }

    /// Our offer for the INVITE of the call we place.
    pub(super) fn local_offer(&mut self) -> Option<String> {
        let local = self.local();
        if local.offer.is_none() {
            local.offer = sdp::build_offer(&local.end.media, &local.end.negotiation).ok();
        }
        local.offer.as_ref().map(ToString::to_string)
    }

    /// Our re-INVITE, when the dialog is free for it (else the outcome is a 491).
    pub(super) fn start_reoffer(&mut self, hold: bool) {
        if self.leg(CALLER).state() == LegState::Confirmed && self.reoffer(hold) {
            self.work.push_back((CALLER, LegInput::Update));
        } else {
            self.out.push_back(Output::Event(CallEvent::Updated { leg: CALLER, status: 491 }));
        }
    }

    /// The ACK is in: a re-offer asked for before it goes out now.
    pub(in crate::engine) fn local_confirmed(&mut self) {
        if let Some(hold) = self.local.as_deref_mut().and_then(|l| l.deferred_reoffer.take()) {
            self.start_reoffer(hold);
        }
    }

    /// A new offer for a re-INVITE: same codecs, the direction for `hold`.
    pub(super) fn reoffer(&mut self, hold: bool) -> bool {
        let local = self.local();
        local.end.media.session_version += 1;
        local.end.media.direction = if hold { Direction::SendOnly } else { Direction::SendRecv };
        local.holding = hold;
        local.offer = sdp::build_offer(&local.end.media, &local.end.negotiation).ok();
        local.offer.is_some()
    }

    /// A local call refreshing its session with a re-INVITE offers anew (a call we answered
    /// has no offer of its own yet); the hold stays as it is.
    pub(in crate::engine) fn local_refresh_offer(&mut self) {
        if self.is_local() {
            let holding = self.local().holding;
            self.reoffer(holding);
        }
    }

    /// The body of our re-INVITE.
    pub(in crate::engine) fn local_reoffer_body(&mut self) -> Option<String> {
        self.local().offer.as_ref().map(ToString::to_string)
    }

    /// The far end answered our offer (in a 1xx, a 2xx, a re-INVITE's 2xx).
    pub(in crate::engine) fn local_answered(&mut self, response: &Message) {
        let Some(answer) = sdp_of(response) else { return };
        let Some(offer) = self.local().offer.clone() else { return };
        match sdp::apply_answer(&offer, &answer) {
            Ok(negotiated) => self.out.push_back(Output::Media(MediaOutput::Local(negotiated))),
            Err(e) => tracing::warn!(session = %self.config.session, error = %e, "the answer's SDP is unusable"),
        }
    }

    /// The far end's re-INVITE: answer its offer; whether to accept is asked.
    pub(in crate::engine) fn local_reoffered(&mut self, leg: LegId) {
        let offer = self.leg(leg).reinvite.as_ref().and_then(|i| sdp_of(&i.request));
        let Some(offer) = offer else {
            self.work.push_back((leg, LegInput::RejectUpdate));
            return;
        };
        let local = self.local();
        local.end.media.session_version += 1;
        local.end.media.direction = if local.holding { Direction::SendOnly } else { Direction::SendRecv };
        match sdp::answer_offer(&offer, &local.end.media, &local.end.negotiation) {
            Ok((answer, negotiated)) => {
                local.answer = Some((answer.to_string(), negotiated));
                let hold = offer_holds(&offer);
                self.out.push_back(Output::Event(CallEvent::Reoffered { leg, hold }));
            }
            Err(_) => self.work.push_back((leg, LegInput::RejectUpdate)),
        }
    }

    /// An UPDATE: answered at once (with our answer when it carries an offer).
    pub(in crate::engine) fn local_update(&mut self, leg: LegId, tx: ServerTx, request: Message) {
        let Some(offer) = sdp_of(&request) else {
            return self.respond(leg, tx, &request, 200, "OK", None);
        };
        let local = self.local();
        match sdp::answer_offer(&offer, &local.end.media, &local.end.negotiation) {
            Ok((answer, negotiated)) => {
                self.out.push_back(Output::Media(MediaOutput::Local(negotiated)));
                self.respond(leg, tx, &request, 200, "OK", Some(answer.to_string()));
            }
            Err(_) => self.respond(leg, tx, &request, 488, "Not Acceptable Here", None),
        }
    }
}
