//! The engine as one end of a call: the SDK's mode. The call has one leg (leg 0, placed by
//! us or answered by us) and its other side is our own media rather than another leg: we
//! make our own offers and answers from [`LocalMedia`] (`media::sdp`), the media to set up
//! comes out as `MediaOutput::Local`, and what a user decides — answering, a hold asked
//! by the far end, a transfer asked by REFER — comes out as an event and goes back in as a
//! command. Everything else (the leg table, dialogs, glare, transfers' NOTIFYs, ACKs,
//! CANCEL) is the same code as the session node's calls.
//!
//! Here: what a local call is, its commands and the INVITE it sends; its offers and answers
//! in `offers.rs`, its transfers in `refer.rs`. A local call is not handed over to another
//! node, so this part is not in the snapshot.

use std::time::{Duration, Instant};

use media::sdp::{self, LocalMedia, Negotiated, NegotiationOptions, SessionDescription};
use sip::auth::{Credentials, answer_challenge};
use sip::dialog::forking::UacDialogs;
use sip::message::{Builder, HeaderName, Message, Method, Uri};

use super::io::{CallEvent, Command, LegId, Output, Route, ServerTx};
use super::leg::{Inbound, LegRole, Pending};
use super::sip_out::ALLOW;
use super::{CALLER, Engine, EngineConfig, Timer, sdp_of};

mod offers;
mod refer;
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

impl Engine {
    /// A call the far end places to us: its INVITE on `tx`, from `route`. The engine
    /// answers the offer from `end` and asks with [`CallEvent::Offered`] whether to take it.
    pub fn answering(config: EngineConfig, end: LocalEnd, invite: Message, tx: ServerTx, route: Route, now: Instant) -> Engine {
        let mut engine = Engine::empty(config);
        engine.local = Some(Box::new(Local::new(end, None)));
        engine.start_incoming(invite, tx, route, now);
        engine
    }

    /// A call to us another node answered (a conference seat, a queue caller), rebuilt from
    /// its state with our end `end` (the media it answered with). Only an established call
    /// resumes whole: nothing of ours was outstanding but what the state holds.
    pub fn restore_answered(
        state: contracts::EngineState,
        end: LocalEnd,
        now: Instant,
        wall_ms: u64,
    ) -> Result<Engine, super::RestoreError> {
        let mut engine = Engine::restore(state, now, wall_ms)?;
        engine.local = Some(Box::new(Local::new(end, None)));
        Ok(engine)
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
            Command::MoveMedia { rtp } => {
                let local = self.local();
                (local.end.media.address, local.end.media.rtp_port) = (rtp.ip(), rtp.port());
                let hold = local.holding;
                match self.leg(CALLER).state() {
                    LegState::Answered => self.local().deferred_reoffer = Some(hold),
                    _ => self.start_reoffer(hold),
                }
            }
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
}

/// The INVITE of the call we place, and what becomes of our requests.
impl Engine {
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
        // Without an identity, our Contact says who calls (an empty From is no From at all).
        let from = match local.end.identity.as_str() {
            "" => format!("<{}>", self.config.contact),
            identity => identity.to_owned(),
        };
        let mut b = Builder::request(&Method::Invite, &out.target)
            .header(HeaderName::MaxForwards, 70)
            .header(HeaderName::From, format_args!("{from};tag={}", self.leg(leg).tag))
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

    /// Nobody answered our INVITE in time.
    pub(super) fn local_answer_timeout(&mut self) {
        if matches!(self.leg(CALLER).state(), LegState::Calling | LegState::Alerting) {
            self.leg_mut(CALLER).failure = Some((408, "No Answer".into()));
            self.work.push_back((CALLER, LegInput::Cancel));
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
