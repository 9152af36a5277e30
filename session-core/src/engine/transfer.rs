//! Transfers through the B2BUA (RFC 3515 REFER, RFC 3420 sipfrag): a leg that REFERs asks
//! us to call the target for the leg it talks to. We accept (202), call the target with that
//! leg's description on the referrer's media slot, and report progress in NOTIFYs. When the
//! target answers, it is bridged to the transferee (re-INVITEd only if what it hears
//! changes) and the referrer is let go; when the target fails, the referrer's call goes on as
//! before — or, if the referrer has already hung up, the transferee is.
//!
//! Attended transfer (`Refer-To` with `Replaces`, RFC 3891): the dialog it names is the
//! referrer's consultation call — through us, so a dialog of another of our calls. The
//! driver finds that call ([`Output::FindReplaced`]); we then call the far end on its other
//! side with a `Replaces` naming *its* dialog with us, so that it swaps that call for this
//! one and hangs the old one up (which ends the consultation call's other leg too). A
//! dialog that is not ours is passed on as it came.

use std::time::Instant;

use sip::message::{HeaderName, Message, Method, NameAddr, Uri};

use contracts::EngineState;

use super::Engine;
use super::flows::peer_from_contract;
use super::io::{CallEvent, LegId, Output, Replacement, Replaces, Route, ServerTx, Target};
use super::leg::Pending;
use crate::leg::{LegInput, LegState};

/// An attended transfer waiting for the dialog it replaces to be found.
#[derive(Debug, Clone)]
pub(super) struct Replacing {
    referrer: LegId,
    transferee: LegId,
    /// The `Refer-To` URI and its `Replaces`, as they came.
    target: String,
    replaces: Replaces,
}

/// `%3B` → `;` and the like.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex: String = bytes.by_ref().take(2).map(char::from).collect();
            if let Ok(v) = u8::from_str_radix(&hex, 16) {
                out.push(char::from(v));
                continue;
            }
            out.push('%');
            out.push_str(&hex);
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// The target URI and the `Replaces` (attended transfer) of a `Refer-To` value.
pub(crate) fn parse_refer_to(value: &str) -> Option<(String, Option<String>)> {
    let mut addr = NameAddr::parse_for(value, HeaderName::ReferTo).ok()?;
    let Uri::Sip(sip) = &mut addr.uri else { return Some((addr.uri.to_string(), None)) };
    let replaces = sip.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("Replaces")).map(|(_, v)| unescape(v));
    sip.headers.clear();
    Some((addr.uri.to_string(), replaces))
}

impl Engine {
    pub(super) fn on_refer(&mut self, leg: LegId, tx: ServerTx, request: Message, now: Instant) {
        let Some((target, replaces)) = request.header(HeaderName::ReferTo).and_then(parse_refer_to) else {
            return self.respond(leg, tx, &request, 400, "Missing or bad Refer-To", None);
        };
        if self.is_local() {
            return self.local_refer(leg, tx, request, target, replaces);
        }
        let transferee = self.partner(leg).filter(|p| self.leg(*p).is_up());
        let busy = self.referred_by.values().any(|r| *r == leg) || self.replacing.is_some();
        let named = replaces.as_deref().map(Replaces::parse);
        match (self.leg(leg).state(), transferee) {
            (LegState::Confirmed, Some(_)) if matches!(named, Some(None)) => {
                self.respond(leg, tx, &request, 400, "Bad Replaces in Refer-To", None)
            }
            (LegState::Confirmed, Some(_)) if busy => self.respond(leg, tx, &request, 491, "Request Pending", None),
            (LegState::Confirmed, Some(transferee)) => {
                self.respond(leg, tx, &request, 202, "Accepted", None);
                self.notify_transfer(leg, 100, "Trying");
                match named.flatten() {
                    Some(replaces) => {
                        self.out.push_back(Output::FindReplaced(replaces.clone()));
                        self.replacing = Some(Replacing { referrer: leg, transferee, target, replaces });
                    }
                    None => self.transfer_to(leg, transferee, Target { uri: target, route: None }, None, now),
                }
            }
            _ => self.respond(leg, tx, &request, 481, "Call/Transaction Does Not Exist", None),
        }
    }

    /// The replaced dialog's call was looked up: call whoever takes its place.
    pub(super) fn on_replacement(&mut self, found: Option<Replacement>, now: Instant) {
        let Some(r) = self.replacing.take() else { return };
        if !self.leg(r.transferee).is_up() {
            return self.notify_transfer(r.referrer, 487, "Request Terminated");
        }
        let (target, replaces) = match found {
            Some(found) => (found.target, found.replaces),
            None => (Target { uri: r.target, route: None }, r.replaces),
        };
        self.transfer_to(r.referrer, r.transferee, target, Some(replaces.to_string()), now);
    }

    /// Calls `target` for `transferee`, on the referrer's media slot.
    fn transfer_to(&mut self, referrer: LegId, transferee: LegId, target: Target, replaces: Option<String>, now: Instant) {
        let slot = self.leg(referrer).slot;
        match self.dial(target, transferee, slot, now) {
            Some(new) => {
                self.leg_mut(new).replaces = replaces;
                self.referred_by.insert(new, referrer);
            }
            None => self.notify_transfer(referrer, 502, "Bad Gateway"),
        }
    }

    /// Tells the referrer how the call to the target goes (while its dialog lasts).
    pub(super) fn notify_transfer(&mut self, referrer: LegId, status: u16, reason: &str) {
        let target = self.referred_by.iter().find(|(_, r)| **r == referrer).map(|(l, _)| self.leg(*l).target.clone());
        self.out.push_back(Output::Event(CallEvent::Transfer { leg: referrer, target: target.unwrap_or_default(), status }));
        if !self.leg(referrer).is_up() {
            return;
        }
        let state = if status >= 200 { "terminated;reason=noresource" } else { "active;expires=60" };
        let headers = [(HeaderName::Event, "refer".to_owned()), (HeaderName::SubscriptionState, state.to_owned())];
        let body = ("message/sipfrag;version=2.0", format!("SIP/2.0 {status} {reason}\r\n"));
        self.send_in_dialog(referrer, Method::Notify, Pending::Notify, Some(body), &headers);
    }

    /// The target answered and is bridged to the transferee: tell the referrer, let it go,
    /// and re-INVITE the transferee when its new partner's description differs.
    pub(super) fn finish_transfer(&mut self, referrer: LegId, transferee: LegId, previous: Option<LegId>) {
        self.notify_transfer(referrer, 200, "OK");
        if previous == Some(referrer) || self.leg(referrer).is_up() {
            self.work.push_back((referrer, LegInput::Hangup));
        }
        if self.hears_something_new(transferee) {
            self.work.push_back((transferee, LegInput::Update));
        }
    }

    /// An operator puts `leg` through to `target`: its partner is hung up (unbridged first,
    /// so `leg` stays up), and the target dialled for it on the partner's media slot.
    pub(super) fn blind_transfer(&mut self, leg: LegId, target: Target, now: Instant) {
        if !self.leg(leg).is_up() || self.legs.len() < 2 {
            tracing::info!(session = %self.config.session, leg = leg.0, "transfer of a leg not up: ignored");
            return;
        }
        let slot = if self.leg(leg).slot == 0 { 1 } else { 0 };
        if let Some(partner) = self.partner.remove(&leg) {
            self.partner.remove(&partner);
            self.work.push_back((partner, LegInput::Hangup));
        }
        self.dial(target, leg, slot, now);
    }

    /// The target did not answer: the referrer hears why; a transferee left alone ends.
    pub(super) fn fail_transfer(&mut self, referrer: LegId, transferee: LegId, status: u16, reason: &str) {
        self.notify_transfer(referrer, status, reason);
        if self.partner(transferee).is_none() && !self.leg(transferee).is_over() {
            self.work.push_back((transferee, LegInput::Hangup));
        }
    }

    /// Whether what `leg` would now be sent (its partner's description, anchored) differs
    /// from what it was last sent.
    pub(super) fn hears_something_new(&self, leg: LegId) -> bool {
        let Some(partner) = self.partner(leg) else { return false };
        let (Some(far), Some(relay)) = (self.leg(partner).remote_sdp.as_ref(), self.relay(self.leg(leg).slot)) else {
            return false;
        };
        let mut probe = self.leg(leg).origin.clone();
        let before = probe.version;
        media::sdp::anchor(&far.parsed, relay, &mut probe);
        probe.version != before
    }
}

/// Who takes the place of the dialog `named` in the call `state` describes (an attended
/// transfer): the far end of the leg that talks to that dialog's, and the `Replaces` that
/// names its dialog with us. `None` when the call has no such confirmed dialog — `named`'s
/// Call-ID and sender's tag must match it too, so only a party to it can name it.
pub fn replacement(state: &EngineState, named: &Replaces) -> Option<Replacement> {
    let leg = state.legs.iter().find(|l| l.tag == named.to_tag)?;
    let dialog = leg.dialog.as_ref().filter(|d| d.call_id == named.call_id && d.remote_tag == named.from_tag)?;
    let partner = state.partner.get(&leg.id)?;
    let other = state.legs.iter().find(|l| l.id == *partner)?;
    let theirs = other.dialog.as_ref().filter(|d| d.confirmed && dialog.confirmed)?;
    let peer = peer_from_contract(other.route_peer.as_ref()?)?;
    Some(Replacement {
        target: Target { uri: theirs.remote_target.clone(), route: Some(Route { edge: other.route_edge.clone(), peer }) },
        replaces: Replaces {
            call_id: theirs.call_id.clone(),
            to_tag: theirs.remote_tag.clone(),
            from_tag: theirs.local_tag.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::parse_refer_to;

    #[test]
    fn refer_to_with_and_without_replaces() {
        assert_eq!(parse_refer_to("<sip:carol@192.0.2.5>"), Some(("sip:carol@192.0.2.5".into(), None)));
        let (uri, replaces) = parse_refer_to("<sip:carol@192.0.2.5?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>").unwrap();
        assert_eq!(uri, "sip:carol@192.0.2.5");
        assert_eq!(replaces.as_deref(), Some("abc@host;to-tag=1;from-tag=2"));
        assert_eq!(parse_refer_to("not a uri <"), None);
    }
}
