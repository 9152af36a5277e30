//! The engine as one end of a call: the SDK's mode. The call has one leg (leg 0, placed by
//! us or answered by us) and its other side is our own media rather than another leg: we
//! make our own offers and answers from [`LocalMedia`] (`media::sdp`), the media to set up
//! comes out as [`MediaOutput::Local`], and what a user decides — answering, a hold asked
//! by the far end, a transfer asked by REFER — comes out as an event and goes back in as a
//! command. Everything else (the leg table, dialogs, glare, transfers' NOTIFYs, ACKs,
//! CANCEL) is the same code as the session node's calls.
//!
//! A local call is not handed over to another node, so this part is not in the snapshot.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use media::sdp::{self, Direction, LocalMedia, Negotiated, NegotiationOptions, SessionDescription};
use sip::auth::{Credentials, answer_challenge};
use sip::dialog::forking::UacDialogs;
use sip::message::{Builder, HeaderName, Message, Method, Uri};

use super::io::{CallEvent, Command, LegId, MediaOutput, Output, Route, ServerTx};
use super::leg::{Inbound, LegRole, Pending};
use super::sip_out::ALLOW;
use super::{CALLER, Engine, EngineConfig, Timer, sdp_of};
use crate::leg::{LegInput, LegState};

/// Who we are at our end of a call.
#[derive(Debug, Clone)]
pub struct LocalEnd {
    /// What we can receive, and where.
    pub media: LocalMedia,
    pub negotiation: NegotiationOptions,
    /// Our From for calls we place: a name-addr without tag (`"Alice" <sip:alice@host>`).
    pub identity: String,
    /// Answers a 401/407 to our INVITE.
    pub credentials: Option<Credentials>,
    /// How often a re-INVITE of ours that got no answer is sent again.
    pub reinvite_retries: u32,
    /// Our User-Agent and Server header.
    pub user_agent: String,
}

/// A call we place.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub target: Uri,
    /// The Call-ID of the call.
    pub call_id: String,
    /// Extra headers of the INVITE (`Replaces` for an attended transfer).
    pub headers: Vec<(HeaderName, String)>,
    /// Longest the far end may take to answer (then the INVITE is cancelled, 408).
    pub answer_timeout: Option<Duration>,
}

/// The state of our end.
#[derive(Debug)]
pub(super) struct Local {
    end: LocalEnd,
    outgoing: Option<Outgoing>,
    /// Our outstanding offer (INVITE or re-INVITE).
    offer: Option<SessionDescription>,
    /// Our answer to the far end's outstanding offer, and what it means for the media.
    answer: Option<(String, Negotiated)>,
    /// We hold the far end.
    holding: bool,
    /// A REFER waiting for the application's decision, or accepted and in progress.
    refer: Option<Inbound>,
    transfer_started: bool,
    /// Our REFER is out (its answer or last NOTIFY not in yet).
    referring: bool,
    /// A Contact for a redirecting refusal.
    redirect: Option<String>,
    /// A re-offer asked for before our 2xx was acknowledged (hold or not).
    deferred_reoffer: Option<bool>,
    auth_tries: u32,
    retries_left: u32,
}

/// Whether an offer puts its receiver on hold: `sendonly`/`inactive`, or `c=0.0.0.0`.
fn offer_holds(offer: &SessionDescription) -> bool {
    let Some(audio) = offer.media.iter().find(|m| m.kind == "audio" && m.port != 0) else { return false };
    let direction = audio.direction.or(offer.direction).unwrap_or(Direction::SendRecv);
    let zero = audio.connection.or(offer.connection).is_some_and(|a: IpAddr| a.is_unspecified());
    direction.is_hold() || zero
}

impl Engine {
    /// A call the far end places to us: its INVITE on `tx`, from `route`. The engine
    /// answers the offer from `end` and asks with [`CallEvent::Offered`] whether to take it.
    pub fn answering(config: EngineConfig, end: LocalEnd, invite: Message, tx: ServerTx, route: Route, now: Instant) -> Engine {
        let mut engine = Engine::empty(config);
        engine.local = Some(Box::new(Local::new(end, None)));
        engine.start_incoming(invite, tx, route, now);
        engine
    }

    /// A call we place to `outgoing.target` through `route`.
    pub fn calling(config: EngineConfig, end: LocalEnd, outgoing: Outgoing, route: Route, now: Instant) -> Engine {
        let mut engine = Engine::empty(config);
        engine.now = now;
        if let Some(timeout) = outgoing.answer_timeout {
            engine.timers.insert(Timer::Ring, now + timeout);
        }
        let target = outgoing.target.to_string();
        engine.local = Some(Box::new(Local::new(end, Some(outgoing))));
        let leg = engine.new_leg(LegRole::Uac, route, 0);
        engine.leg_mut(leg).target = target;
        engine.input(leg, LegInput::Dial, now);
        engine
    }

    /// Other negotiation options (and codecs) for the answer of a call to us not yet
    /// answered: the answer is made again from the caller's offer. `false` when it cannot
    /// be (nothing in common; the call is untouched).
    pub fn answer_with(&mut self, negotiation: Option<NegotiationOptions>, codecs: Option<Vec<media::sdp::Codec>>) -> bool {
        if self.local.is_none() || !matches!(self.leg(CALLER).state(), LegState::Incoming | LegState::Early) {
            return false;
        }
        let Some(offer) = self.leg(CALLER).invite.as_ref().and_then(sdp_of) else { return false };
        let mut end = self.local().end.clone();
        if let Some(n) = negotiation {
            end.negotiation = n;
        }
        if let Some(c) = codecs {
            end.media.codecs = c;
        }
        match sdp::answer_offer(&offer, &end.media, &end.negotiation) {
            Ok((answer, negotiated)) => {
                let local = self.local();
                local.end = end;
                local.answer = Some((answer.to_string(), negotiated));
                true
            }
            Err(_) => false,
        }
    }

    /// The dialog of leg `leg`, once it has one.
    pub fn dialog(&self, leg: LegId) -> Option<&sip::dialog::Dialog> {
        self.legs.get(leg.0 as usize)?.dialog.as_ref()
    }

    /// How leg `leg` failed or was refused, if it was.
    pub fn failure(&self, leg: LegId) -> Option<(u16, &str)> {
        self.legs.get(leg.0 as usize)?.failure.as_ref().map(|(s, r)| (*s, r.as_str()))
    }

    /// The key of leg `leg`'s INVITE (a 2xx repeated after its transaction ended answers it).
    pub fn invite_key(&self, leg: LegId) -> Option<u64> {
        self.legs.get(leg.0 as usize)?.invite_key
    }

    pub(super) fn is_local(&self) -> bool {
        self.local.is_some()
    }

    fn local(&mut self) -> &mut Local {
        self.local.as_deref_mut().expect("only called for a local call")
    }

    pub(super) fn user_agent(&self) -> &str {
        self.local.as_ref().map_or(super::sip_out::USER_AGENT, |l| l.end.user_agent.as_str())
    }

    /// The commands only a local call takes; `false` for the others.
    pub(super) fn local_command(&mut self, command: Command) -> bool {
        if self.local.is_none() {
            return false;
        }
        match command {
            Command::Redirect { status, contact } => {
                self.local().redirect = Some(contact);
                self.reject_caller(status, "Moved Temporarily");
            }
            // Answered but not yet acknowledged: the offer waits for the ACK.
            Command::Reoffer { hold } if self.leg(CALLER).state() == LegState::Answered => {
                self.local().deferred_reoffer = Some(hold);
            }
            Command::Reoffer { hold } => self.start_reoffer(hold),
            Command::EarlyMedia => self.early_media(),
            Command::AcceptReoffer => self.work.push_back((CALLER, LegInput::AcceptUpdate)),
            Command::RejectReoffer => self.work.push_back((CALLER, LegInput::RejectUpdate)),
            Command::Refer { refer_to } => self.send_refer(refer_to),
            Command::AcceptTransfer => self.answer_refer(202, "Accepted", Some((100, "Trying", false))),
            Command::IgnoreTransfer => self.answer_refer(202, "Accepted", Some((100, "Trying", true))),
            Command::RejectTransfer { status, reason } => self.answer_refer(status, &reason, None),
            Command::TransferProgress { status, reason } => {
                self.notify_refer(status, &reason, status >= 200);
                if (200..300).contains(&status) {
                    self.work.push_back((CALLER, LegInput::Hangup));
                }
            }
            _ => return false,
        }
        true
    }

    // ---- offers and answers ----

    /// The call's INVITE is in: answer its offer, then ask whether to take the call.
    pub(super) fn local_incoming(&mut self) {
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

    /// The 2xx to the far end's INVITE, with our answer.
    pub(super) fn local_answer(&mut self) -> Option<String> {
        let (sdp, negotiated) = self.local().answer.take()?;
        self.out.push_back(Output::Media(MediaOutput::Local(negotiated)));
        Some(sdp)
    }

    /// 183 with our answer, the media set up: the caller hears us before the answer. The
    /// 2xx will carry the same answer (RFC 3264: one answer per offer).
    fn early_media(&mut self) {
        if !matches!(self.leg(CALLER).state(), LegState::Incoming | LegState::Early) {
            return;
        }
        let Some((sdp, negotiated)) = self.local().answer.clone() else { return };
        self.out.push_back(Output::Media(MediaOutput::Local(negotiated)));
        let (Some(invite), Some(tx)) = (self.leg(CALLER).invite.clone(), self.leg(CALLER).invite_tx.clone()) else { return };
        self.respond(CALLER, tx, &invite, 183, "Session Progress", Some(sdp));
    }

    /// Our offer for the INVITE of the call we place.
    fn local_offer(&mut self) -> Option<String> {
        let local = self.local();
        if local.offer.is_none() {
            local.offer = sdp::build_offer(&local.end.media, &local.end.negotiation).ok();
        }
        local.offer.as_ref().map(ToString::to_string)
    }

    /// Our re-INVITE, when the dialog is free for it (else the outcome is a 491).
    fn start_reoffer(&mut self, hold: bool) {
        if self.leg(CALLER).state() == LegState::Confirmed && self.reoffer(hold) {
            self.work.push_back((CALLER, LegInput::Update));
        } else {
            self.out.push_back(Output::Event(CallEvent::Updated { leg: CALLER, status: 491 }));
        }
    }

    /// The ACK is in: a re-offer asked for before it goes out now.
    pub(super) fn local_confirmed(&mut self) {
        if let Some(hold) = self.local.as_deref_mut().and_then(|l| l.deferred_reoffer.take()) {
            self.start_reoffer(hold);
        }
    }

    /// A new offer for a re-INVITE: same codecs, the direction for `hold`.
    fn reoffer(&mut self, hold: bool) -> bool {
        let local = self.local();
        local.end.media.session_version += 1;
        local.end.media.direction = if hold { Direction::SendOnly } else { Direction::SendRecv };
        local.holding = hold;
        local.offer = sdp::build_offer(&local.end.media, &local.end.negotiation).ok();
        local.offer.is_some()
    }

    /// The body of our re-INVITE.
    pub(super) fn local_reoffer_body(&mut self) -> Option<String> {
        self.local().offer.as_ref().map(ToString::to_string)
    }

    /// The far end answered our offer (in a 1xx, a 2xx, a re-INVITE's 2xx).
    pub(super) fn local_answered(&mut self, response: &Message) {
        let Some(answer) = sdp_of(response) else { return };
        let Some(offer) = self.local().offer.clone() else { return };
        match sdp::apply_answer(&offer, &answer) {
            Ok(negotiated) => self.out.push_back(Output::Media(MediaOutput::Local(negotiated))),
            Err(e) => tracing::warn!(session = %self.config.session, error = %e, "the answer's SDP is unusable"),
        }
    }

    /// The far end's re-INVITE: answer its offer; whether to accept is asked.
    pub(super) fn local_reoffered(&mut self, leg: LegId) {
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
    pub(super) fn local_update(&mut self, leg: LegId, tx: ServerTx, request: Message) {
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

    // ---- the INVITE we send ----

    /// Our INVITE (again, with `auth`, after a challenge: the next CSeq).
    pub(super) fn local_invite(&mut self, leg: LegId, auth: Option<(HeaderName, String)>) {
        let Some(body) = self.local_offer() else {
            self.leg_mut(leg).failure = Some((488, "No Usable Codec".into()));
            self.work.push_back((leg, LegInput::Timeout));
            return;
        };
        let seq = self.leg(leg).invite.as_ref().and_then(Message::cseq).map_or(1, |(s, _)| s + 1);
        let local = self.local.as_deref().expect("a local call");
        let Some(out) = &local.outgoing else { return };
        let mut b = Builder::request(&Method::Invite, &out.target)
            .header(HeaderName::MaxForwards, 70)
            .header(HeaderName::From, format_args!("{};tag={}", local.end.identity, self.leg(leg).tag))
            .header(HeaderName::To, format_args!("<{}>", out.target))
            .header(HeaderName::CallId, &out.call_id)
            .header(HeaderName::CSeq, format_args!("{seq} INVITE"))
            .header(HeaderName::Contact, format_args!("<{}>", self.config.contact))
            .header(HeaderName::Allow, ALLOW)
            .header(HeaderName::Supported, super::sip_out::SUPPORTED)
            .header(HeaderName::SessionExpires, super::timers::DEFAULT_SE)
            .header(HeaderName::MinSe, super::timers::MIN_SE)
            .header(HeaderName::UserAgent, &local.end.user_agent);
        for (name, value) in out.headers.iter().chain(auth.iter()) {
            b = b.header(*name, value);
        }
        match b.body("application/sdp", body).build() {
            Ok(invite) => self.invite_out(leg, invite),
            Err(e) => {
                tracing::warn!(session = %self.config.session, error = %e, "INVITE not built");
                self.leg_mut(leg).failure = Some((400, "Bad Target".into()));
                self.work.push_back((leg, LegInput::Timeout));
            }
        }
    }

    /// Sends `invite` as leg `leg`'s INVITE.
    pub(super) fn invite_out(&mut self, leg: LegId, invite: Message) {
        let key = self.key();
        let route = self.leg(leg).route.clone();
        let l = self.leg_mut(leg);
        l.early = Some(UacDialogs::new(invite.clone()));
        l.early_responses.clear();
        l.invite = Some(invite.clone());
        l.invite_key = Some(key);
        l.pending.insert(key, Pending::Invite);
        self.out.push_back(Output::Send { key, request: invite, route });
    }

    /// A 401/407 to our INVITE: sent again with credentials (twice at most). `false` when
    /// it cannot be answered.
    pub(super) fn local_challenged(&mut self, leg: LegId, response: &Message) -> bool {
        let Some(local) = self.local.as_deref_mut() else { return false };
        let (Some(credentials), Some(out)) = (&local.end.credentials, &local.outgoing) else { return false };
        if local.auth_tries >= 2 || self.legs[leg.0 as usize].state() != LegState::Calling {
            return false;
        }
        let uri = out.target.to_string();
        let Ok((name, value)) = answer_challenge(response, credentials, &Method::Invite, &uri, 1) else { return false };
        local.auth_tries += 1;
        self.local_invite(leg, Some((name, value.to_string())));
        true
    }

    /// Our re-INVITE got no answer: sent again while retries last. `false` when they are
    /// spent (the leg ends).
    pub(super) fn local_retry_reinvite(&mut self, leg: LegId) -> bool {
        let Some(local) = self.local.as_deref_mut() else { return false };
        if local.retries_left == 0 {
            self.out.push_back(Output::Event(CallEvent::Updated { leg, status: 408 }));
            return false;
        }
        local.retries_left -= 1;
        self.send_reinvite(leg);
        true
    }

    /// Our re-INVITE went through.
    pub(super) fn local_updated(&mut self, leg: LegId, status: u16) {
        if status < 300 {
            let end = self.local();
            end.retries_left = end.end.reinvite_retries;
        }
        self.out.push_back(Output::Event(CallEvent::Updated { leg, status }));
    }

    /// The Contact of a redirecting refusal.
    pub(super) fn local_redirect(&self) -> Option<String> {
        self.local.as_ref()?.redirect.clone()
    }

    /// The answer to the far end's re-INVITE accepted by the application.
    pub(super) fn local_reanswer(&mut self) -> Option<String> {
        let (sdp, negotiated) = self.local().answer.take()?;
        self.out.push_back(Output::Media(MediaOutput::Local(negotiated)));
        Some(sdp)
    }

    /// Nobody answered our INVITE in time.
    pub(super) fn local_answer_timeout(&mut self) {
        if matches!(self.leg(CALLER).state(), LegState::Calling | LegState::Alerting) {
            self.leg_mut(CALLER).failure = Some((408, "No Answer".into()));
            self.work.push_back((CALLER, LegInput::Cancel));
        }
    }

    // ---- transfers ----

    /// A REFER to us: the application decides.
    pub(super) fn local_refer(&mut self, leg: LegId, tx: ServerTx, request: Message, target: String, replaces: Option<String>) {
        if self.leg(leg).state() != LegState::Confirmed {
            return self.respond(leg, tx, &request, 481, "Call/Transaction Does Not Exist", None);
        }
        if self.local().refer.is_some() {
            return self.respond(leg, tx, &request, 491, "Request Pending", None);
        }
        let domain = request.from().ok().and_then(|f| f.uri.as_sip().map(|s| s.host_port.host.to_string())).unwrap_or_default();
        let local = self.local();
        local.refer = Some(Inbound { tx, request });
        local.transfer_started = false;
        self.out.push_back(Output::Event(CallEvent::TransferRequested { leg, target, replaces, referrer_domain: domain }));
    }

    /// Answers the REFER waiting for a decision; with `notify`, the first NOTIFY.
    fn answer_refer(&mut self, status: u16, reason: &str, notify: Option<(u16, &str, bool)>) {
        let Some(Inbound { tx, request }) = self.local().refer.clone() else { return };
        if self.local().transfer_started {
            return;
        }
        self.respond(CALLER, tx, &request, status, reason, None);
        match notify {
            Some((status, reason, last)) => {
                self.local().transfer_started = true;
                self.notify_refer(status, reason, last);
            }
            None => self.local().refer = None,
        }
    }

    /// A NOTIFY of the transfer we carry out (`last`: the subscription ends).
    fn notify_refer(&mut self, status: u16, reason: &str, last: bool) {
        if self.local().refer.is_none() || !self.leg(CALLER).is_up() {
            return;
        }
        if last {
            self.local().refer = None;
        }
        let state = if last { "terminated;reason=noresource" } else { "active;expires=60" };
        let headers = [(HeaderName::Event, "refer".to_owned()), (HeaderName::SubscriptionState, state.to_owned())];
        let body = ("message/sipfrag;version=2.0", format!("SIP/2.0 {status} {reason}\r\n"));
        self.send_in_dialog(CALLER, Method::Notify, Pending::Notify, Some(body), &headers);
    }

    /// As transferor: REFER the far end to `refer_to` (a name-addr).
    fn send_refer(&mut self, refer_to: String) {
        if !self.leg(CALLER).is_up() || self.local().referring {
            let event = CallEvent::ReferProgress { leg: CALLER, status: 491, reason: "Request Pending".into(), last: true };
            self.out.push_back(Output::Event(event));
            return;
        }
        let identity = self.local().end.identity.clone();
        let referred_by = identity.rfind('<').map_or(identity.clone(), |i| identity[i..].to_owned());
        let headers = [(HeaderName::ReferTo, refer_to), (HeaderName::ReferredBy, referred_by)];
        self.local().referring = true;
        self.send_in_dialog(CALLER, Method::Refer, Pending::Refer, None, &headers);
    }

    /// The answer to our REFER: a refusal ends the transfer.
    pub(super) fn local_refer_answered(&mut self, leg: LegId, status: u16, reason: &str) {
        if status >= 300 {
            self.local().referring = false;
            let event = CallEvent::ReferProgress { leg, status, reason: reason.to_owned(), last: true };
            self.out.push_back(Output::Event(event));
        }
    }

    /// A NOTIFY about our REFER: progress, then the final status (a success ends our leg).
    pub(super) fn local_refer_notified(&mut self, leg: LegId, request: &Message) {
        let line = std::str::from_utf8(request.body()).ok().and_then(|b| b.lines().next()).unwrap_or_default();
        let mut parts = line.splitn(3, ' ');
        let status = parts.nth(1).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
        let reason = parts.next().unwrap_or_default().to_owned();
        let terminated = request.header(HeaderName::SubscriptionState).is_some_and(|s| s.trim().starts_with("terminated"));
        let last = terminated || status >= 200;
        if last {
            self.local().referring = false;
        }
        self.out.push_back(Output::Event(CallEvent::ReferProgress { leg, status, reason, last }));
        if (200..300).contains(&status) {
            self.work.push_back((leg, LegInput::Hangup));
        }
    }
}

impl Local {
    fn new(end: LocalEnd, outgoing: Option<Outgoing>) -> Local {
        let retries_left = end.reinvite_retries;
        Local {
            end,
            outgoing,
            offer: None,
            answer: None,
            holding: false,
            refer: None,
            transfer_started: false,
            referring: false,
            redirect: None,
            deferred_reoffer: None,
            auth_tries: 0,
            retries_left,
        }
    }
}
