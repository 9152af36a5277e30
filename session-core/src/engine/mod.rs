//! The call engine: one sans-IO core that runs a call of any number of legs — the caller,
//! the targets it rings (in parallel or one after another), transfer targets — for the
//! session node's B2BUA, and, in its local mode (`local`), the SDK's calls: one leg and our
//! own media. It owns no socket, no task and no clock, in the shape of quinn-proto:
//!
//! 1. Create it with [`Engine::incoming`] (the caller's INVITE) and give it the routing
//!    decision with [`Engine::handle_command`] (`Dial`, `Reject`, …).
//! 2. Feed it what arrives — [`Engine::handle_sip`], [`Engine::handle_media`],
//!    [`Engine::handle_command`] — and, when [`Engine::poll_timeout`]'s instant has come,
//!    [`Engine::handle_timeout`]; each with the current time.
//! 3. After each, drain [`Engine::poll_output`] and carry the outputs out in order (an
//!    [`Output::Persist`] first writes [`Engine::snapshot`], before what follows it).
//! 4. The call is over when [`Engine::is_over`].
//!
//! Each leg follows the leg state table ([`crate::leg`]); the engine turns the table's
//! actions into SIP (`sip_out`), decides what one leg's events mean for the others
//! (`flow`), reads what arrives (`inbound`), and carries transfers (`transfer`). SDP only
//! goes through `media::sdp`: each leg gets the other side's description anchored at the
//! call's relay, with our own origin.

mod clock;
mod dtmf;
mod flow;
mod flows;
mod inbound;
pub mod io;
mod leg;
mod local;
mod queries;
pub use self::queries::LegSummary;
mod relay;
mod sdp;
mod sip_out;
mod state;
mod timers;
mod transfer;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use media::sdp::AnchorOrigin;
use sip::message::Message;

pub use self::flows::{peer_from_contract, peer_to_contract};
pub use self::io::{
    CallEvent, Command, Failure, FarMedia, LegId, MediaInput, MediaOutput, OnTimeout, Output, Replacement, Replaces, RingPolicy,
    Route, ServerTx, SipInput, Target,
};
use self::leg::{Leg, LegRole};
pub use self::local::{LocalEnd, Outgoing};
pub(crate) use self::sdp::{FarSdp, far_sdp, sdp_body, sdp_of};
pub use self::sip_out::{ALLOW, refusal};
pub use self::state::RestoreError;
pub use self::transfer::replacement;
use crate::leg::{LegAction, LegInput, LegState};

/// The caller's leg.
pub const CALLER: LegId = LegId(0);

/// Our tag for leg `leg` of the call named `session`: `<session>-<leg>`. Edges read the
/// call's name back from it (`cluster::tags`), so any edge can route an in-dialog request.
pub fn leg_tag(session: &str, leg: LegId) -> String {
    format!("{session}-{}", leg.0)
}

/// What a call is named and how it presents itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The call's name: in our tags and Call-IDs (the session id in a cluster).
    pub session: String,
    /// Our Contact URI (the edge's address with the session as user).
    pub contact: String,
    /// The username of our SDP origin.
    pub sdp_user: String,
}

/// The dial plan in progress: targets not yet called, and how.
#[derive(Debug, Clone)]
struct Plan {
    waiting: VecDeque<Target>,
    parallel: bool,
    ring: RingPolicy,
}

/// Timers, as data: what is due when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The targets have rung long enough.
    Ring,
    /// Send the re-INVITE of this leg again after a 491 (RFC 3261 §14.1).
    Glare(LegId),
    /// Refresh this leg's session (we are its refresher, RFC 4028).
    Refresh(LegId),
    /// This leg's far end did not refresh the session in time.
    Expire(LegId),
}

/// A call.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    /// Our own end of the call, when the engine is one (the SDK's calls).
    local: Option<Box<local::Local>>,
    legs: Vec<Leg>,
    /// Who talks to whom (symmetric).
    partner: BTreeMap<LegId, LegId>,
    /// Legs being called for another leg: new leg → the leg it will be bridged to.
    ringing_for: BTreeMap<LegId, LegId>,
    /// Transfer targets being called: new leg → the leg that asked (REFER).
    referred_by: BTreeMap<LegId, LegId>,
    /// An attended transfer waiting for the replaced dialog to be found (not in the
    /// snapshot: a takeover meanwhile loses that transfer, not the call).
    replacing: Option<transfer::Replacing>,
    plan: Option<Plan>,
    /// The relay: its node and one address per slot, once allocated.
    media_node: Option<String>,
    slots: Vec<SocketAddr>,
    /// Where each slot's relay sends now and a print of the codecs it was given (what the
    /// media node was last told; the print is not in the snapshot).
    connected: BTreeMap<u32, (SocketAddr, u64)>,
    allocating: bool,
    /// The relay is being moved to another media node (not in the snapshot).
    reanchor: Option<relay::Reanchor>,
    timers: BTreeMap<Timer, Instant>,
    /// The best failure heard from the targets (what the caller gets when all fail).
    best_failure: Option<(u16, String)>,
    /// Leg inputs still to run (the flow between legs queues them).
    work: VecDeque<(LegId, LegInput)>,
    out: VecDeque<Output>,
    next_key: u64,
    ended: bool,
    /// The time of the input being handled (timers are set from it).
    now: Instant,
}

impl Engine {
    /// A call created by the INVITE `invite`, received on `tx` from `route`.
    pub fn incoming(config: EngineConfig, invite: Message, tx: ServerTx, route: Route, now: Instant) -> Engine {
        let mut engine = Engine::empty(config);
        engine.start_incoming(invite, tx, route, now);
        engine
    }

    fn empty(config: EngineConfig) -> Engine {
        Engine {
            config,
            local: None,
            legs: Vec::new(),
            partner: BTreeMap::new(),
            ringing_for: BTreeMap::new(),
            referred_by: BTreeMap::new(),
            replacing: None,
            plan: None,
            media_node: None,
            slots: Vec::new(),
            connected: BTreeMap::new(),
            allocating: false,
            reanchor: None,
            timers: BTreeMap::new(),
            best_failure: None,
            work: VecDeque::new(),
            out: VecDeque::new(),
            next_key: 1,
            ended: false,
            now: Instant::now(),
        }
    }

    /// Leg 0 from the INVITE that makes the call.
    fn start_incoming(&mut self, invite: Message, tx: ServerTx, route: Route, now: Instant) {
        self.now = now;
        let leg = self.new_leg(LegRole::Uas, route, 0);
        let caller = self.leg_mut(leg);
        caller.remote_sdp = far_sdp(&invite);
        caller.invite = Some(invite);
        caller.invite_tx = Some(tx);
        self.input(leg, LegInput::InviteReceived, now);
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Something arrived over SIP.
    pub fn handle_sip(&mut self, input: SipInput, now: Instant) {
        self.now = now;
        self.on_sip(input, now);
        self.run(now);
    }

    /// The media plane answered or reported.
    pub fn handle_media(&mut self, input: MediaInput, now: Instant) {
        self.now = now;
        match input {
            MediaInput::Allocated { node, slots } => {
                self.allocating = false;
                self.media_node = Some(node);
                self.slots = slots;
                // The allocation request carried the caller's address: slot 0 sends there.
                if let Some(far) = self.far_media(CALLER) {
                    self.connected.insert(self.leg(CALLER).slot, (far.rtp, sdp::codecs_print(&far.codecs)));
                }
                self.out.push_back(Output::Persist);
                self.dial_waiting(now);
                self.reanchored();
            }
            MediaInput::Unavailable { reason } => {
                self.allocating = false;
                tracing::warn!(session = %self.config.session, %reason, "no media for the call");
                if !self.reanchor_failed() {
                    self.reject_caller(503, "Service Unavailable");
                }
            }
            MediaInput::Dtmf { slot, digit, duration_ms } => self.dtmf_from_rtp(slot, digit, duration_ms),
            MediaInput::NoRtp { slot } => {
                tracing::info!(session = %self.config.session, slot, "no RTP: ending the call");
                self.hangup_all();
            }
        }
        self.run(now);
    }

    /// An application asks.
    pub fn handle_command(&mut self, command: Command, now: Instant) {
        self.now = now;
        match command {
            Command::Dial { targets, parallel, ring } => {
                if let Some(timeout) = ring.timeout {
                    self.timers.insert(Timer::Ring, now + timeout);
                }
                self.plan = Some(Plan { waiting: targets.into(), parallel, ring });
                self.dial_waiting(now);
            }
            Command::Answer => self.work.push_back((CALLER, LegInput::Answer)),
            Command::Reject { status, reason } => self.reject_caller(status, &reason),
            Command::Hangup => self.hangup_all(),
            Command::Reanchor => self.reanchor(),
            Command::Replacement { found } => self.on_replacement(found, now),
            Command::Transfer { leg, target } if !self.is_local() => self.blind_transfer(leg, target, now),
            other => {
                if !self.local_command(other) {
                    tracing::debug!(session = %self.config.session, "a command for local calls only: ignored");
                }
            }
        }
        self.run(now);
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        let due: Vec<Timer> = self.timers.iter().filter(|(_, at)| **at <= now).map(|(t, _)| *t).collect();
        for timer in due {
            self.timers.remove(&timer);
            match timer {
                Timer::Ring if self.is_local() => self.local_answer_timeout(),
                Timer::Ring => self.ring_timeout(now),
                Timer::Glare(leg) => self.retry_reinvite(leg),
                Timer::Refresh(leg) => self.refresh_session(leg),
                Timer::Expire(leg) => self.session_expired(leg),
            }
        }
        self.run(now);
    }

    /// The next thing the driver must do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Engine::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.values().min().copied()
    }

    // ---- internals shared by the modules ----

    fn leg(&self, id: LegId) -> &Leg {
        &self.legs[id.0 as usize]
    }

    fn leg_mut(&mut self, id: LegId) -> &mut Leg {
        &mut self.legs[id.0 as usize]
    }

    fn new_leg(&mut self, role: LegRole, route: Route, slot: u32) -> LegId {
        let id = LegId(self.legs.len() as u32);
        let tag = leg_tag(&self.config.session, id);
        let origin = AnchorOrigin::new(&self.config.sdp_user, session_number(&self.config.session, id));
        self.legs.push(Leg::new(id, role, tag, route, slot, origin));
        id
    }

    fn key(&mut self) -> u64 {
        let k = self.next_key;
        self.next_key += 1;
        k
    }

    /// Queues `input` for `leg` (run by [`Engine::run`]).
    fn input(&mut self, leg: LegId, input: LegInput, now: Instant) {
        self.work.push_back((leg, input));
        self.run(now);
    }

    /// Runs queued leg inputs until none is left: each through the leg's table, its actions
    /// turned into SIP, its events into inputs of other legs.
    fn run(&mut self, now: Instant) {
        // A safety bound: the flow between legs cannot loop, but a table edit could make it.
        let mut budget = 256;
        while let Some((id, input)) = self.work.pop_front() {
            budget -= 1;
            if budget == 0 {
                tracing::error!(session = %self.config.session, "leg inputs did not settle; dropping the rest");
                self.work.clear();
                break;
            }
            if input == LegInput::Hangup && self.leg(id).state() == LegState::Updating {
                self.leg_mut(id).hangup_after_update = true;
                continue;
            }
            let Some(actions) = self.leg_mut(id).machine.handle(input) else {
                tracing::debug!(session = %self.config.session, leg = id.0, ?input, "input ignored in this state");
                continue;
            };
            for action in actions {
                match action {
                    LegAction::Notify(event) => self.on_leg_event(id, *event, now),
                    action => self.act(id, *action),
                }
            }
            if matches!(input, LegInput::UpdateSuccess | LegInput::UpdateFailure)
                && std::mem::take(&mut self.leg_mut(id).hangup_after_update)
            {
                self.leg_mut(id).glare = false;
                self.timers.remove(&Timer::Glare(id));
                self.work.push_back((id, LegInput::Hangup));
            }
        }
        if !self.ended && !self.legs.is_empty() && self.legs.iter().all(Leg::is_over) && !self.allocating {
            self.ended = true;
            self.timers.clear();
            if self.media_node.is_some() {
                self.out.push_back(Output::Media(MediaOutput::Release));
            }
            self.out.push_back(Output::Event(CallEvent::Ended));
        }
    }
}

/// A number for our SDP origin's session id, stable for a call's leg (RFC 4566 asks for a
/// numeric, unique-ish id): a hash of the call's name and the leg.
fn session_number(session: &str, leg: LegId) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in session.bytes().chain(leg.0.to_be_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h >> 1
}

/// How long to wait before retrying a re-INVITE after 491 (RFC 3261 §14.1): 2.1–4 s for
/// the owner of the Call-ID (we placed the leg's INVITE), 0–2 s otherwise. Derived from the
/// Call-ID so it needs no random source and a replay gives the same answer.
fn glare_delay(owner: bool, call_id: &str) -> Duration {
    let spread = call_id.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % 1900;
    Duration::from_millis(if owner { 2100 + spread } else { spread })
}
