//! The task that runs one call: it feeds the leg state table with what arrives (SIP from the
//! agent, commands from the handles, notices from the media task, its own deadlines) and
//! carries out the table's actions (`actions.rs`). The same table drives the session node's
//! B2BUA legs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use media::sdp::{LocalMedia, Negotiated, SessionDescription};
use sip::dialog::Dialog;
use sip::message::{HeaderName, Message, Uri};
use sip::transaction::{Peer, TxId};
use tokio::sync::{mpsc, oneshot};

use super::{Call, CallCommand, CallState, lock};
use crate::leg::{LegEvent, LegInput, LegMachine, LegState};
use crate::peer::agent::DialogInput;
use crate::peer::context::PeerContext;
use crate::peer::error::{PeerError, Result};
use crate::peer::events::{PeerEvent, StateChangeEvent, TransferDecision};
use crate::peer::media::MediaNotice;
use crate::peer::policies::TimeoutAction;

/// An SDP answer as sent, and what it means for the media.
pub(super) type Answer = (String, Negotiated);

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
        tx: TxId,
        request: Message,
        decision: TransferDecision,
    },
    /// Our call to a transfer target ended its setup with this status.
    TransferOutcome(u16, String),
}

/// One call's task.
pub(crate) struct Actor {
    pub(super) call: Call,
    pub(super) ctx: Arc<PeerContext>,
    pub(super) leg: LegMachine,
    pub(super) inbox: mpsc::UnboundedReceiver<DialogInput>,
    pub(super) inbox_tx: mpsc::UnboundedSender<DialogInput>,
    pub(super) commands: mpsc::UnboundedReceiver<CallCommand>,
    pub(super) notices: mpsc::UnboundedReceiver<MediaNotice>,
    pub(super) uac: Option<(Uri, Vec<(HeaderName, String)>)>,
    pub(super) remote_peer: Peer,
    pub(super) local_tag: String,
    pub(super) dialog: Option<Dialog>,
    /// UAC: the INVITE we sent (the latest, with credentials); UAS: the one we answer.
    pub(super) invite: Option<Message>,
    pub(super) invite_tx: Option<TxId>,
    pub(super) local: LocalMedia,
    /// Our outstanding offer (initial INVITE or re-INVITE).
    pub(super) offer: Option<SessionDescription>,
    /// UAS: the answer we will send with the 2xx.
    pub(super) answer: Option<Answer>,
    /// A request being answered by the current step (BYE, re-INVITE).
    pub(super) inbound: Option<(TxId, Message)>,
    /// A received re-INVITE awaiting a decision, with our answer.
    pub(super) pending_reinvite: Option<(TxId, Message, Option<Answer>)>,
    /// CSeq of the INVITE whose 2xx we acknowledge next.
    pub(super) ack_seq: u32,
    pub(super) last_ack: Option<(Message, Peer)>,
    pub(super) failure: (u16, String, Option<String>),
    pub(super) answer_waiter: Option<oneshot::Sender<Result<()>>>,
    pub(super) hangup_waiters: Vec<oneshot::Sender<Result<()>>>,
    pub(super) hold_waiter: Option<(bool, oneshot::Sender<Result<()>>)>,
    pub(super) transfer_waiter: Option<oneshot::Sender<Result<u16>>>,
    pub(super) transfer_refer: Option<(TxId, Message)>,
    pub(super) auth_tries: u32,
    pub(super) on_hold: bool,
    pub(super) remote_hold: bool,
    pub(super) deadline: Option<(Instant, TimeoutAction)>,
    pub(super) end_reason: Option<String>,
    pub(super) established_once: bool,
    pub(super) media_recoveries: u32,
    pub(super) network_retries: u32,
    pub(super) reinvite_status: u16,
    /// The far end's pending re-INVITE would put us on hold.
    pub(super) requested_hold: bool,
    /// An input the current step's actions call for next (run by `step` after them).
    pub(super) followup: Option<LegInput>,
}

impl Actor {
    /// A call's task, not yet started.
    pub(crate) fn new(
        call: Call,
        ctx: Arc<PeerContext>,
        local: LocalMedia,
        inbox: (mpsc::UnboundedReceiver<DialogInput>, mpsc::UnboundedSender<DialogInput>),
        commands: mpsc::UnboundedReceiver<CallCommand>,
        notices: mpsc::UnboundedReceiver<MediaNotice>,
    ) -> Self {
        let remote_peer = Peer::udp(ctx.agent.local_addr());
        Actor {
            call,
            ctx,
            leg: LegMachine::new(),
            inbox: inbox.0,
            inbox_tx: inbox.1,
            commands,
            notices,
            uac: None,
            remote_peer,
            local_tag: sip::transaction::new_tag(),
            dialog: None,
            invite: None,
            invite_tx: None,
            local,
            offer: None,
            answer: None,
            inbound: None,
            pending_reinvite: None,
            ack_seq: 0,
            last_ack: None,
            failure: (500, "Server Internal Error".into(), None),
            answer_waiter: None,
            hangup_waiters: Vec::new(),
            hold_waiter: None,
            transfer_waiter: None,
            transfer_refer: None,
            auth_tries: 0,
            on_hold: false,
            remote_hold: false,
            deadline: None,
            end_reason: None,
            established_once: false,
            media_recoveries: 0,
            network_retries: 0,
            reinvite_status: 0,
            requested_hold: false,
            followup: None,
        }
    }

    /// Runs the call to its end. `answered` (outgoing calls) learns how the setup went.
    pub(crate) async fn run(mut self, role: Role, answered: Option<oneshot::Sender<Result<()>>>) {
        self.answer_waiter = answered;
        self.ctx.agent.attach(self.call.id().as_str(), self.inbox_tx.clone());
        match role {
            Role::Uac { target, peer, headers } => {
                self.remote_peer = peer;
                self.uac = Some((target, headers));
                self.deadline = Some((Instant::now() + self.ctx.config.answer_timeout, TimeoutAction::Reject));
                self.step(LegInput::Dial).await;
            }
            Role::Uas { tx, invite, peer } => {
                self.remote_peer = peer;
                self.invite_tx = Some(tx);
                self.invite = Some(invite);
                self.deadline = Some((Instant::now() + self.ctx.config.incoming_timeout, TimeoutAction::Reject));
                self.step(LegInput::InviteReceived).await;
            }
        }
        while !self.leg.state().is_terminal() {
            let deadline = self.deadline.map(|(at, _)| tokio::time::Instant::from_std(at));
            tokio::select! {
                Some(input) = self.inbox.recv() => self.on_dialog(input).await,
                Some(command) = self.commands.recv() => self.on_command(command).await,
                Some(notice) = self.notices.recv() => self.on_media(notice).await,
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                    self.on_deadline().await;
                }
            }
        }
        self.finish().await;
    }

    /// The state an application sees, from the leg's state and the hold flags.
    pub(super) fn public_state(&self) -> CallState {
        match self.leg.state() {
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
            LegState::Terminated if !self.established_once => CallState::Failed(self.failure.0),
            LegState::Terminated => CallState::Ended,
        }
    }

    /// Applies `input` to the leg and carries out the actions of its row.
    /// Then the follow-up inputs those actions asked for. `false` when the table has no row
    /// for `input` in the current state (it is ignored).
    pub(super) async fn step(&mut self, input: LegInput) -> bool {
        let mut next = Some(input);
        let mut first = true;
        while let Some(input) = next.take() {
            let before = self.public_state();
            let Some(actions) = self.leg.handle(input) else {
                tracing::debug!(call = %self.call.id(), state = %self.leg.state(), ?input, "input ignored in this state");
                if first {
                    return false;
                }
                break;
            };
            first = false;
            for action in actions {
                self.execute(*action).await;
            }
            self.publish(before).await;
            next = self.followup.take();
        }
        true
    }

    /// Tells the application what changed.
    pub(super) async fn publish(&mut self, before: CallState) {
        let after = self.public_state();
        if before == after || after.is_final() {
            return;
        }
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
            if let Some(w) = self.answer_waiter.take() {
                let _ = w.send(Ok(()));
            }
            self.ctx.emit(PeerEvent::CallEstablished(self.call.clone())).await;
        }
    }

    /// What the leg tells its owner.
    pub(super) async fn on_leg_event(&mut self, event: LegEvent) {
        match event {
            LegEvent::Incoming => self.on_incoming().await,
            LegEvent::Failed => {
                self.end_reason.get_or_insert_with(|| format!("{} {}", self.failure.0, self.failure.1));
            }
            LegEvent::Cancelled => {
                self.end_reason = Some("cancelled by the caller".into());
            }
            LegEvent::Ending => {
                self.end_reason.get_or_insert_with(|| "no answer to our requests (timeout)".into());
            }
            LegEvent::UpdateRequested => self.on_update_requested().await,
            LegEvent::UpdateDone => self.on_update_done().await,
            LegEvent::UpdateFailed => {
                if let Some((_, w)) = self.hold_waiter.take() {
                    let _ = w.send(Err(PeerError::Refused { status: self.reinvite_status, reason: "re-INVITE refused".into() }));
                }
            }
            LegEvent::Ended | LegEvent::Ringing | LegEvent::Answered | LegEvent::Confirmed => {}
        }
    }

    async fn on_deadline(&mut self) {
        let Some((_, action)) = self.deadline.take() else { return };
        match self.leg.state() {
            LegState::Calling | LegState::Alerting => {
                self.failure = (408, "No answer".into(), None);
                self.end_reason = Some("no answer before the answer timeout".into());
                self.step(LegInput::Cancel).await;
            }
            LegState::Incoming | LegState::Early if !self.call.0.decided.swap(true, Ordering::AcqRel) => {
                self.apply_timeout_action(action).await;
            }
            _ => {}
        }
    }

    pub(super) async fn apply_timeout_action(&mut self, action: TimeoutAction) {
        match (action, self.ctx.config.voicemail_uri.clone()) {
            (TimeoutAction::Accept, _) => {
                self.step(LegInput::Answer).await;
            }
            (TimeoutAction::SendToVoicemail, Some(voicemail)) => {
                self.failure = (302, "Moved Temporarily".into(), Some(voicemail));
                self.end_reason = Some("sent to voicemail".into());
                self.step(LegInput::Reject).await;
            }
            _ => {
                self.failure = (480, "Temporarily Unavailable".into(), None);
                self.end_reason = Some("nobody took the call in time".into());
                self.step(LegInput::Reject).await;
            }
        }
    }

    async fn on_media(&mut self, notice: MediaNotice) {
        match notice {
            MediaNotice::Flow { receiving } => self.media_flow(receiving).await,
            MediaNotice::Dtmf(d) => self.dtmf_received(d.digit, d.duration).await,
            MediaNotice::Timeout => self.media_failed("no RTP from the far end".into()).await,
            MediaNotice::Error(e) => self.media_failed(e).await,
        }
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
        *lock(&self.call.0.ended) = Some((Instant::now(), reason.clone()));
        let before = *self.call.0.state.borrow();
        self.call.0.state.send_replace(state);
        let status = self.failure.0;
        if let Some(w) = self.answer_waiter.take() {
            let _ = w.send(Err(PeerError::CallFailed { status, reason: self.failure.1.clone() }));
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
