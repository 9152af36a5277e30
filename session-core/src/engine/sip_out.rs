//! The one place the table's actions become SIP: responses to a leg's INVITE and to its
//! in-dialog requests, the INVITE of a leg we place (with the caller's identity and our
//! tag), in-dialog requests (BYE, re-INVITE, NOTIFY, relayed INFO/UPDATE), ACKs and CANCELs.
//! Every description we send is the other side's, anchored at our relay.

use sip::dialog::Dialog;
use sip::message::{Builder, HeaderName, Message, Method, NameAddr, ParseError, Uri};

use super::io::{LegId, Output, ServerTx};
use super::leg::{Inbound, Pending};
use super::{Engine, Timer};
use crate::leg::{LegAction, LegInput};

/// What our messages call us (a local call says what it is told to).
pub(super) const USER_AGENT: &str = "callmesh";
/// The extensions our INVITEs say we support: reliable provisionals (we acknowledge them),
/// Replaces, session timers.
pub(super) const SUPPORTED: &str = "100rel, replaces, timer";

/// The extensions a caller may require of us.
const REQUIRABLE: &[&str] = &["timer"];

/// The methods a leg of ours accepts in its dialogs.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REFER, NOTIFY, PRACK";

/// A refusal of a call for which no engine runs (the router's decisions): the final
/// response to `invite` with the caller's leg tag of call `session`.
pub fn refusal(invite: &Message, session: &str, status: u16, reason: &str) -> Result<Message, ParseError> {
    Builder::response_to(invite, status, reason, Some(&super::leg_tag(session, super::CALLER)))
        .header(HeaderName::Server, USER_AGENT)
        .build()
}

impl Engine {
    pub(super) fn act(&mut self, leg: LegId, action: LegAction) {
        match action {
            LegAction::SendInvite => self.send_invite(leg),
            LegAction::SendProvisional => self.send_provisional(leg),
            LegAction::SendAnswer => self.send_answer(leg),
            LegAction::SendFailure => {
                let (status, reason) = self.leg(leg).failure.clone().unwrap_or((500, "Server Internal Error".into()));
                let extra = match status {
                    300..=399 => self.local_redirect().map(|c| (HeaderName::Contact, format!("<{c}>"))),
                    420 => Some((HeaderName::Unsupported, self.unsupported_required(leg).join(", "))),
                    422 => Some((HeaderName::MinSe, super::timers::MIN_SE.to_string())),
                    _ => None,
                };
                match extra {
                    Some(header) => self.respond_invite_with(leg, status, &reason, header),
                    None => self.respond_invite(leg, status, &reason, None),
                }
            }
            LegAction::SendRequestTerminated => self.respond_invite(leg, 487, "Request Terminated", None),
            LegAction::SendAck => self.send_ack(leg),
            LegAction::SendCancel => {
                if let Some(key) = self.leg(leg).invite_key {
                    self.out.push_back(Output::Cancel { key });
                }
            }
            LegAction::SendBye => self.send_in_dialog(leg, Method::Bye, Pending::Bye, None, &[]),
            LegAction::ConfirmBye => self.answer_inbound(leg, 200, "OK"),
            LegAction::SendReinvite => self.send_reinvite(leg),
            LegAction::AnswerReinvite => self.answer_reinvite(leg),
            LegAction::RejectReinvite => {
                let passed_on = self.partner(leg).and_then(|p| self.leg(p).failure.clone()).map(|(s, _)| s);
                let status = self.leg_mut(leg).refusal.take().or(passed_on).filter(|s| *s >= 300).unwrap_or(488);
                self.answer_reinvite_with(leg, status);
            }
            LegAction::RejectReinvitePending => self.answer_inbound(leg, 491, "Request Pending"),
            LegAction::RejectReinviteGone => self.answer_inbound(leg, 481, "Call/Transaction Does Not Exist"),
            LegAction::TerminateReinvite => self.answer_reinvite_with(leg, 487),
            LegAction::Notify(_) => {}
        }
    }

    // ---- responses ----

    /// A response to `request` with our tag, our Contact on a 1xx/2xx to an INVITE.
    pub(super) fn response(
        &self,
        leg: LegId,
        request: &Message,
        status: u16,
        reason: &str,
        sdp: Option<String>,
    ) -> Option<Message> {
        let mut b =
            Builder::response_to(request, status, reason, Some(&self.leg(leg).tag)).header(HeaderName::Server, self.user_agent());
        if request.method() == Some(&Method::Invite) && (101..300).contains(&status) {
            b = b.header(HeaderName::Contact, format_args!("<{}>", self.config.contact));
            b = b.header(HeaderName::Allow, ALLOW);
        } else if status == 405 {
            b = b.header(HeaderName::Allow, ALLOW);
        }
        if (200..300).contains(&status) && matches!(request.method(), Some(Method::Invite | Method::Update)) {
            for (name, value) in self.timer_headers(leg, false) {
                b = b.header(name, value);
            }
        }
        if let Some(body) = sdp {
            b = b.body("application/sdp", body);
        }
        b.build().map_err(|e| tracing::warn!(session = %self.config.session, error = %e, "response not built")).ok()
    }

    pub(super) fn respond(
        &mut self,
        leg: LegId,
        tx: ServerTx,
        request: &Message,
        status: u16,
        reason: &str,
        sdp: Option<String>,
    ) {
        if let Some(response) = self.response(leg, request, status, reason, sdp) {
            self.out.push_back(Output::Respond { tx, response });
        }
    }

    pub(super) fn respond_invite(&mut self, leg: LegId, status: u16, reason: &str, sdp: Option<String>) {
        let (Some(invite), Some(tx)) = (self.leg(leg).invite.clone(), self.leg(leg).invite_tx.clone()) else { return };
        self.respond(leg, tx, &invite, status, reason, sdp);
    }

    /// A final refusal of the leg's INVITE with one more header (a redirection's Contact,
    /// a 420's Unsupported).
    fn respond_invite_with(&mut self, leg: LegId, status: u16, reason: &str, (name, value): (HeaderName, String)) {
        let (Some(invite), Some(tx)) = (self.leg(leg).invite.clone(), self.leg(leg).invite_tx.clone()) else { return };
        let response = Builder::response_to(&invite, status, reason, Some(&self.leg(leg).tag))
            .header(HeaderName::Server, self.user_agent())
            .header(name, value)
            .build();
        if let Ok(response) = response {
            self.out.push_back(Output::Respond { tx, response });
        }
    }

    /// A provisional to the caller: the target's status, its description anchored (early media).
    fn send_provisional(&mut self, leg: LegId) {
        let provisional = self.leg(leg).provisional.clone();
        let status = provisional.as_ref().and_then(Message::status).filter(|s| (180..200).contains(s)).unwrap_or(180);
        let sdp = provisional.as_ref().and_then(super::far_sdp).and_then(|far| self.anchored_for(leg, &far));
        self.respond_invite(leg, status, "", sdp);
    }

    /// The 2xx to the caller: the partner's answer anchored (or, answered by us, its own
    /// offer reflected at our relay); the dialog exists from now on.
    fn send_answer(&mut self, leg: LegId) {
        self.negotiate_as_uas(leg);
        let sdp = if self.is_local() {
            self.local_answer()
        } else {
            let far = self.partner(leg).and_then(|p| self.leg(p).remote_sdp.clone()).or_else(|| self.leg(leg).remote_sdp.clone());
            far.and_then(|far| self.anchored_for(leg, &far))
        };
        self.respond_invite(leg, 200, "OK", sdp);
        if let Some(invite) = self.leg(leg).invite.clone()
            && let Ok(mut dialog) = Dialog::uas(&invite, &self.leg(leg).tag)
        {
            dialog.confirm();
            self.leg_mut(leg).dialog = Some(dialog);
        }
    }

    /// Answers the in-dialog request being handled (BYE, a re-INVITE refused at once).
    fn answer_inbound(&mut self, leg: LegId, status: u16, reason: &str) {
        if let Some(Inbound { tx, request }) = self.leg_mut(leg).inbound.take() {
            self.respond(leg, tx, &request, status, reason, None);
        }
    }

    /// The 2xx to the far end's re-INVITE: the partner's new answer anchored.
    fn answer_reinvite(&mut self, leg: LegId) {
        let Some(Inbound { tx, request }) = self.leg_mut(leg).reinvite.take() else { return };
        let sdp = if self.is_local() {
            self.local_answer()
        } else {
            let far = self.partner(leg).and_then(|p| self.leg(p).remote_sdp.clone());
            far.and_then(|far| self.anchored_for(leg, &far))
        };
        self.respond(leg, tx, &request, 200, "OK", sdp);
    }

    fn answer_reinvite_with(&mut self, leg: LegId, status: u16) {
        if let Some(Inbound { tx, request }) = self.leg_mut(leg).reinvite.take() {
            let reason = if status == 487 { "Request Terminated" } else { "" };
            self.respond(leg, tx, &request, status, reason, None);
        }
    }

    // ---- requests ----

    /// The INVITE of a leg we place: the identity of the leg it calls for, our tag, a
    /// Call-ID of its own, that leg's description anchored at this leg's relay slot.
    fn send_invite(&mut self, leg: LegId) {
        if self.is_local() {
            return self.local_invite(leg, None);
        }
        let for_leg = self.ringing_for.get(&leg).copied().unwrap_or(super::CALLER);
        let far =
            self.leg(for_leg).remote_sdp.clone().or_else(|| self.partner(for_leg).and_then(|p| self.leg(p).remote_sdp.clone()));
        // An offer to someone new: a transferee held by its transferor is not on hold for them.
        let sdp = far.and_then(|far| {
            let relay = self.relay(self.leg(leg).slot)?;
            let offer = media::sdp::as_new_offer(&far.parsed);
            let offer = self.codecs_for(leg, &offer).unwrap_or(offer);
            let offer = self.events_for(leg, &offer).unwrap_or(offer);
            Some(media::sdp::anchor(&offer, relay, &mut self.leg_mut(leg).origin))
        });
        let invite = match self.build_invite(leg, for_leg, sdp) {
            Ok(invite) => invite,
            Err(e) => {
                tracing::warn!(session = %self.config.session, target = %self.leg(leg).target, error = %e, "INVITE not built");
                self.leg_mut(leg).failure = Some((502, "Bad Target".into()));
                self.work.push_back((leg, LegInput::Timeout));
                return;
            }
        };
        self.invite_out(leg, invite);
    }

    /// The extensions leg `leg`'s INVITE requires that we do not support (RFC 3261 §8.2.2.3:
    /// refused with 420). A local call takes `Replaces` too.
    pub(super) fn unsupported_required(&self, leg: LegId) -> Vec<String> {
        let Some(invite) = &self.leg(leg).invite else { return Vec::new() };
        let ok = |t: &str| {
            REQUIRABLE.iter().any(|r| r.eq_ignore_ascii_case(t)) || (self.is_local() && t.eq_ignore_ascii_case("replaces"))
        };
        invite.tokens(HeaderName::Require).filter(|t| !t.is_empty() && !ok(t)).map(str::to_owned).collect()
    }

    fn build_invite(&self, leg: LegId, for_leg: LegId, sdp: Option<String>) -> Result<Message, ParseError> {
        let l = self.leg(leg);
        let target = Uri::parse(&l.target)?;
        let source = self.leg(for_leg).invite.clone();
        let from = match source.as_ref().map(Message::from) {
            Some(Ok(mut from)) => {
                from.params = Default::default();
                from.with_tag(&l.tag)
            }
            _ => NameAddr::new(Uri::parse(&self.config.contact)?).with_tag(&l.tag),
        };
        let hops = source.as_ref().and_then(|i| i.max_forwards()).unwrap_or(70).saturating_sub(1);
        let mut b = Builder::request(&Method::Invite, &target)
            .header(HeaderName::MaxForwards, hops)
            .header(HeaderName::From, from)
            .header(HeaderName::To, NameAddr::new(target.clone()))
            .header(HeaderName::CallId, format_args!("{}@callmesh", l.tag))
            .header(HeaderName::CSeq, "1 INVITE")
            .header(HeaderName::Contact, format_args!("<{}>", self.config.contact))
            .header(HeaderName::Allow, ALLOW)
            .header(HeaderName::Supported, SUPPORTED)
            .header(HeaderName::SessionExpires, super::timers::DEFAULT_SE)
            .header(HeaderName::MinSe, super::timers::MIN_SE)
            .header(HeaderName::UserAgent, USER_AGENT);
        if let Some(replaces) = &l.replaces {
            b = b.header(HeaderName::Replaces, replaces);
        }
        if let Some(body) = sdp {
            b = b.body("application/sdp", body);
        }
        b.build()
    }

    /// The ACK for the 2xx to the leg's INVITE (its CSeq in `ack_seq`).
    fn send_ack(&mut self, leg: LegId) {
        let l = self.leg(leg);
        let Some(dialog) = &l.dialog else { return };
        let first = l.ack_seq <= 1;
        let Ok(ack) = dialog.ack(l.ack_seq.max(1), None).build() else { return };
        let invite_key = if first { l.invite_key } else { None };
        let route = l.route.clone();
        self.leg_mut(leg).last_ack = Some(ack.clone());
        self.out.push_back(Output::Ack { request: ack, route, invite_key });
    }

    /// The far end repeats its 2xx: our ACK was lost.
    pub(super) fn resend_ack(&mut self, leg: LegId) {
        if let Some(ack) = self.leg(leg).last_ack.clone() {
            let route = self.leg(leg).route.clone();
            self.out.push_back(Output::Ack { request: ack, route, invite_key: None });
        }
    }

    /// The re-INVITE carrying the partner's new description (a hold, a resume, a transfer).
    pub(super) fn send_reinvite(&mut self, leg: LegId) {
        let sdp = if self.is_local() {
            self.local_reoffer_body()
        } else {
            let far = self.partner(leg).and_then(|p| self.leg(p).remote_sdp.clone());
            far.and_then(|far| self.anchored_for(leg, &far))
        };
        let Some(dialog) = &self.leg(leg).dialog else { return };
        let seq = dialog.local_seq + 1;
        self.send_in_dialog(leg, Method::Invite, Pending::Reinvite(seq), sdp.map(|s| ("application/sdp", s)), &[]);
    }

    /// After a 491, the same re-INVITE again (with a new CSeq) — unless the far end's own
    /// re-INVITE is being handled now, in which case ours gives way and fails.
    pub(super) fn retry_reinvite(&mut self, leg: LegId) {
        self.timers.remove(&Timer::Glare(leg));
        self.leg_mut(leg).glare = false;
        if self.leg(leg).state() == crate::leg::LegState::Confirmed {
            self.work.push_back((leg, LegInput::Update));
        } else if self.is_local() {
            self.local_updated(leg, 491);
        } else if let Some(p) = self.partner(leg) {
            self.work.push_back((p, LegInput::RejectUpdate));
        }
    }

    /// Sends `method` in the leg's dialog; what it waits for is `pending`.
    pub(super) fn send_in_dialog(
        &mut self,
        leg: LegId,
        method: Method,
        pending: Pending,
        body: Option<(&str, String)>,
        headers: &[(HeaderName, String)],
    ) {
        let contact = self.config.contact.clone();
        let user_agent = self.user_agent().to_owned();
        let timer = if matches!(method, Method::Invite | Method::Update) { self.timer_headers(leg, true) } else { Vec::new() };
        let Some(dialog) = self.leg_mut(leg).dialog.as_mut() else { return };
        let mut b = dialog.request(method.clone(), None).header(HeaderName::UserAgent, &user_agent);
        if matches!(method, Method::Invite | Method::Refer | Method::Notify | Method::Update) {
            b = b.header(HeaderName::Contact, format_args!("<{contact}>"));
        }
        for (name, value) in headers.iter().chain(&timer) {
            b = b.header(*name, value);
        }
        if let Some((content_type, body)) = body {
            b = b.body(content_type, body);
        }
        let Ok(request) = b.build() else { return };
        if method == Method::Invite {
            self.leg_mut(leg).ack_seq = request.cseq().map_or(0, |(s, _)| s);
        }
        let key = self.key();
        let route = self.leg(leg).route.clone();
        self.leg_mut(leg).pending.insert(key, pending);
        self.out.push_back(Output::Send { key, request, route });
    }
}
