//! The task that runs one call: the call engine ([`crate::engine`]) in its local mode,
//! driven — the same engine that runs the session node's calls. The task feeds it what the
//! agent delivers, the handles' commands and the time, and carries out its outputs
//! (`wire.rs`); what the engine asks a user to decide is answered by the application or the
//! policies (`control.rs`, `refer.rs`) and goes back in as a command.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use media::sdp::LocalMedia;
use sip::auth::Credentials;
use sip::message::{HeaderName, Message, Uri};
use sip::transaction::{Peer, TxId};
use tokio::sync::{mpsc, oneshot};

use super::{Call, CallCommand, CallState, DialogInfo, lock};
use crate::engine::{CALLER, Command, Engine, EngineConfig, LocalEnd, Outgoing, Route, ServerTx};
use crate::leg::LegState;
use crate::peer::agent::DialogInput;
use crate::peer::context::PeerContext;
use crate::peer::error::{PeerError, Result};
use crate::peer::events::{MediaDirection, PeerEvent, StateChangeEvent, TransferDecision};
use crate::peer::media::MediaNotice;
use crate::peer::policies::TimeoutAction;

/// What our requests and responses call us.
const USER_AGENT: &str = "callmesh-peer";

/// How the call started.
pub(crate) enum Role {
    /// We call `target` (at `peer`), with extra headers (e.g. `Replaces`).
    Uac { target: Uri, peer: Peer, headers: Vec<(HeaderName, String)> },
    /// The far end called: its INVITE on server transaction `tx`.
    Uas { tx: TxId, invite: Message, peer: Peer },
}

/// What the call's own helpers report back to it.
#[allow(clippy::large_enum_variant)] // moved once through a channel
pub(crate) enum Internal {
    HoldDecision(bool),
    TransferDecided {
        target: String,
        replaces: Option<String>,
        decision: TransferDecision,
    },
    /// Our call to a transfer target ended its setup with this status.
    TransferOutcome(u16, String),
}

/// One call's task.
pub(crate) struct Actor {
    pub(super) call: Call,
    pub(super) ctx: Arc<PeerContext>,
    pub(super) engine: Engine,
    pub(super) inbox: mpsc::UnboundedReceiver<DialogInput>,
    pub(super) inbox_tx: mpsc::UnboundedSender<DialogInput>,
    pub(super) commands: mpsc::UnboundedReceiver<CallCommand>,
    pub(super) notices: mpsc::UnboundedReceiver<MediaNotice>,
    /// Where the far end last sent from.
    pub(super) remote_peer: Peer,
    /// Our client transactions by the engine's key, and back.
    pub(super) txs: HashMap<u64, TxId>,
    pub(super) keys: HashMap<TxId, u64>,
    /// UAS: the INVITE and its transaction.
    pub(super) invite: Option<(TxId, Message)>,
    /// The state the application was last told.
    pub(super) shown: CallState,
    pub(super) answer_waiter: Option<oneshot::Sender<Result<()>>>,
    pub(super) hangup_waiters: Vec<oneshot::Sender<Result<()>>>,
    pub(super) hold_waiter: Option<(bool, oneshot::Sender<Result<()>>)>,
    pub(super) transfer_waiter: Option<oneshot::Sender<Result<u16>>>,
    pub(super) on_hold: bool,
    pub(super) remote_hold: bool,
    /// The far end's pending re-offer would put us on hold.
    pub(super) requested_hold: bool,
    /// When nobody has decided on an incoming call by then, what to do.
    pub(super) deadline: Option<(Instant, TimeoutAction)>,
    pub(super) end_reason: Option<String>,
    /// We asked for the end (hang-up, refusal).
    pub(super) hung_up: bool,
    pub(super) established_once: bool,
    pub(super) media_recoveries: u32,
}

impl Actor {
    /// A call's task, not yet started: its engine holds the call from the start.
    pub(crate) fn new(
        call: Call,
        ctx: Arc<PeerContext>,
        (local, negotiation): (LocalMedia, media::sdp::NegotiationOptions),
        role: Role,
        inbox: (mpsc::UnboundedReceiver<DialogInput>, mpsc::UnboundedSender<DialogInput>),
        commands: mpsc::UnboundedReceiver<CallCommand>,
        notices: mpsc::UnboundedReceiver<MediaNotice>,
    ) -> Self {
        let now = Instant::now();
        let config = EngineConfig {
            session: format!("{:016x}", rand::random::<u64>()),
            contact: ctx.local_uri(),
            sdp_user: ctx.name.clone(),
        };
        let display = ctx.config.display_name.as_ref().map(|d| format!("\"{d}\" ")).unwrap_or_default();
        let end = LocalEnd {
            media: local,
            negotiation,
            identity: format!("{display}<{}>", ctx.local_uri()),
            credentials: ctx.config.credentials.as_ref().map(|(u, p)| Credentials::new(u, p)),
            reinvite_retries: ctx.policies().network_error.retries().0,
            user_agent: USER_AGENT.into(),
        };
        let (engine, remote_peer, invite, deadline) = match role {
            Role::Uac { target, peer, headers } => {
                let answer_timeout = Some(ctx.config.answer_timeout);
                let outgoing = Outgoing { target, call_id: call.id().to_string(), headers, answer_timeout };
                let route = Route { edge: String::new(), peer };
                (Engine::calling(config, end, outgoing, route, now), peer, None, None)
            }
            Role::Uas { tx, invite, peer } => {
                let route = Route { edge: String::new(), peer };
                let server = ServerTx { edge: String::new(), id: tx.as_u64() };
                let engine = Engine::answering(config, end, invite.clone(), server, route, now);
                let deadline = (now + ctx.config.incoming_timeout, TimeoutAction::Reject);
                (engine, peer, Some((tx, invite)), Some(deadline))
            }
        };
        let shown = *call.0.state.borrow();
        let actor = Actor {
            call,
            ctx,
            engine,
            inbox: inbox.0,
            inbox_tx: inbox.1,
            commands,
            notices,
            remote_peer,
            txs: HashMap::new(),
            keys: HashMap::new(),
            invite,
            shown,
            answer_waiter: None,
            hangup_waiters: Vec::new(),
            hold_waiter: None,
            transfer_waiter: None,
            on_hold: false,
            remote_hold: false,
            requested_hold: false,
            deadline,
            end_reason: None,
            hung_up: false,
            established_once: false,
            media_recoveries: 0,
        };
        if let Some((_, invite)) = &actor.invite {
            actor.keep_sdp(invite, false);
        }
        actor
    }

    /// Runs the call to its end. `answered` (outgoing calls) learns how the setup went.
    pub(crate) async fn run(mut self, answered: Option<oneshot::Sender<Result<()>>>) {
        self.answer_waiter = answered;
        self.ctx.agent.attach(self.call.id().as_str(), self.inbox_tx.clone());
        self.carry_out().await;
        while !self.engine.is_over() {
            let due = [self.engine.poll_timeout(), self.deadline.map(|(at, _)| at)].into_iter().flatten().min();
            tokio::select! {
                Some(input) = self.inbox.recv() => self.on_dialog(input),
                Some(command) = self.commands.recv() => self.on_command(command).await,
                Some(notice) = self.notices.recv() => self.on_media(notice).await,
                _ = tokio::time::sleep_until(due.map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std)), if due.is_some() => {
                    self.on_deadline().await;
                }
            }
            self.carry_out().await;
        }
        self.finish().await;
    }

    /// Asks the engine.
    pub(super) fn command(&mut self, command: Command) {
        self.engine.handle_command(command, Instant::now());
    }

    pub(super) fn leg_state(&self) -> LegState {
        self.engine.leg_state(CALLER).unwrap_or(LegState::Idle)
    }

    /// The status the call failed with (500 when none was heard).
    fn failure_status(&self) -> u16 {
        self.engine.failure(CALLER).map_or(500, |(s, _)| s)
    }

    /// The state an application sees, from the leg's state and the hold flags.
    pub(super) fn public_state(&self) -> CallState {
        match self.leg_state() {
            LegState::Idle | LegState::Calling => CallState::Calling,
            LegState::Alerting => CallState::Ringing,
            LegState::Incoming | LegState::Early => CallState::Incoming,
            LegState::Answered | LegState::Confirmed | LegState::Updating | LegState::Updated => {
                if self.on_hold {
                    CallState::OnHold
                } else if self.remote_hold {
                    CallState::RemoteHold
                } else {
                    CallState::Active
                }
            }
            LegState::Cancelling | LegState::Terminating => CallState::Terminating,
            LegState::Terminated if !self.established_once => CallState::Failed(self.failure_status()),
            LegState::Terminated => CallState::Ended,
        }
    }

    /// Tells the application what changed since it was last told.
    pub(super) async fn publish(&mut self) {
        let (before, after) = (self.shown, self.public_state());
        if before == after || after.is_final() {
            return;
        }
        self.shown = after;
        self.call.0.state.send_replace(after);
        let event = StateChangeEvent {
            call_id: self.call.id().clone(),
            old_state: before,
            new_state: after,
            timestamp: Instant::now(),
            reason: self.end_reason.clone(),
        };
        self.ctx.emit(PeerEvent::StateChanged(event)).await;
        if after.is_established() && !self.established_once {
            self.established_once = true;
            *lock(&self.call.0.answered) = Some(Instant::now());
            self.deadline = None;
            if let Some(dialog) = self.engine.dialog(CALLER) {
                *lock(&self.call.0.dialog) = Some(DialogInfo {
                    local_tag: dialog.id.local_tag.clone(),
                    remote_tag: dialog.id.remote_tag.clone(),
                    remote_target: dialog.remote_target.to_string(),
                });
            }
            if let Some(w) = self.answer_waiter.take() {
                let _ = w.send(Ok(()));
            }
            self.ctx.emit(PeerEvent::CallEstablished(self.call.clone())).await;
        }
    }

    /// The engine's timers, or the application's time to decide on a call.
    async fn on_deadline(&mut self) {
        let now = Instant::now();
        if self.engine.poll_timeout().is_some_and(|at| at <= now) {
            self.engine.handle_timeout(now);
        }
        if self.deadline.is_some_and(|(at, _)| at <= now) {
            let Some((_, action)) = self.deadline.take() else { return };
            if matches!(self.leg_state(), LegState::Incoming | LegState::Early)
                && !self.call.0.decided.swap(true, Ordering::AcqRel)
            {
                self.apply_timeout_action(action);
            }
        }
    }

    pub(super) fn apply_timeout_action(&mut self, action: TimeoutAction) {
        match (action, self.ctx.config.voicemail_uri.clone()) {
            (TimeoutAction::Accept, _) => self.command(Command::Answer),
            (TimeoutAction::SendToVoicemail, Some(contact)) => {
                self.end_reason = Some("sent to voicemail".into());
                self.hung_up = true;
                self.command(Command::Redirect { status: 302, contact });
            }
            _ => {
                self.end_reason = Some("nobody took the call in time".into());
                self.hung_up = true;
                self.command(Command::Reject { status: 480, reason: "Temporarily Unavailable".into() });
            }
        }
    }

    async fn on_media(&mut self, notice: MediaNotice) {
        match notice {
            MediaNotice::Flow { receiving } => self.media_flow(MediaDirection::Receive, receiving).await,
            MediaNotice::Sending(sending) => self.media_flow(MediaDirection::Send, sending).await,
            MediaNotice::Dtmf(d) => self.dtmf_received(d.digit, d.duration).await,
            MediaNotice::Timeout => self.media_failed("no RTP from the far end".into()).await,
            MediaNotice::Error(e) => self.media_failed(e).await,
        }
    }

    /// Why the call ended, when a leg's end says it and nothing said it before.
    pub(super) fn leg_ended(&mut self, status: u16) {
        if self.end_reason.is_some() {
            return;
        }
        let reason = match status {
            0 if self.hung_up => "hung up by us".to_owned(),
            0 => "hung up by the far end (BYE)".to_owned(),
            487 if self.invite.is_some() && !self.hung_up => "cancelled by the caller".to_owned(),
            _ => format!("{status} {}", self.engine.failure(CALLER).map(|(_, r)| r).unwrap_or_default()),
        };
        self.end_reason = Some(reason);
    }

    /// The call's history record.
    fn keep_record(&self, final_state: CallState, ended: Instant, reason: &str) {
        if self.ctx.call_history_size == 0 {
            return;
        }
        let c = &self.call.0;
        let record = crate::peer::history::CallRecord {
            id: c.id.clone(),
            direction: c.direction,
            remote_uri: c.remote_uri.clone(),
            started: c.started,
            answered: *lock(&c.answered),
            ended,
            final_state,
            reason: reason.to_owned(),
            metadata: lock(&c.metadata).clone(),
        };
        let mut history = lock(&self.ctx.history_calls);
        if history.len() == self.ctx.call_history_size {
            history.pop_front();
        }
        history.push_back(record);
    }

    async fn finish(mut self) {
        let _ = self.call.0.media.send(crate::peer::media::MediaCommand::Stop);
        self.ctx.agent.detach(self.call.id().as_str());
        lock(&self.ctx.calls).remove(self.call.id());
        if let Some(m) = lock(&self.call.0.monitor).take() {
            m.abort();
        }
        let state = self.public_state();
        let reason = self.end_reason.take().unwrap_or_else(|| "ended".into());
        let ended = Instant::now();
        *lock(&self.call.0.ended) = Some((ended, reason.clone()));
        self.keep_record(state, ended, &reason);
        let before = *self.call.0.state.borrow();
        self.call.0.state.send_replace(state);
        if let Some(w) = self.answer_waiter.take() {
            let (status, why) = self.engine.failure(CALLER).map_or((500, reason.clone()), |(s, r)| (s, r.to_owned()));
            let _ = w.send(Err(PeerError::CallFailed { status, reason: why }));
        }
        for w in self.hangup_waiters.drain(..) {
            let _ = w.send(Ok(()));
        }
        if let Some((_, w)) = self.hold_waiter.take() {
            let _ = w.send(Err(PeerError::CallEnded));
        }
        if let Some(w) = self.transfer_waiter.take() {
            let _ = w.send(Err(PeerError::CallEnded));
        }
        let change = StateChangeEvent {
            call_id: self.call.id().clone(),
            old_state: before,
            new_state: state,
            timestamp: Instant::now(),
            reason: Some(reason.clone()),
        };
        self.ctx.emit(PeerEvent::StateChanged(change)).await;
        self.ctx.emit(PeerEvent::CallEnded { call: self.call.clone(), reason }).await;
    }
}
