//! Decisions in a call's life: what the application asks (answer, reject, hang up, hold),
//! what arrives for a decision (a new call, the far end's hold), and what the media task
//! reports (flow, digits, failures) — with the policies applied where nobody decided.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::actor::{Actor, Internal};
use super::{CallCommand, lock};
use crate::engine::Command;
use crate::leg::LegState;
use crate::peer::error::{PeerError, Result};
use crate::peer::events::{
    Decider, DtmfEvent, HoldRequest, MediaDirection, MediaFlowEvent, PeerEvent, WarningCategory, WarningEvent,
};
use crate::peer::incoming::IncomingCall;
use crate::peer::media::{AudioFrame, MediaCommand};
use crate::peer::policies::{HoldMediaSource, HoldPolicy, MediaErrorPolicy, NetworkErrorPolicy};

/// Longest the application may take to decide on the far end's hold.
const HOLD_DECISION_LIMIT: Duration = Duration::from_secs(10);

impl Actor {
    pub(super) async fn on_command(&mut self, command: CallCommand) {
        match command {
            CallCommand::Answer { done } => {
                self.before_answer(Command::Answer, done, "only a ringing incoming call can be accepted").await;
            }
            CallCommand::AnswerWith { options, done } => {
                if self.engine.answer_with(options.negotiation, options.codecs) {
                    self.before_answer(Command::Answer, done, "only a ringing incoming call can be accepted").await;
                } else {
                    let _ = done.send(Err(PeerError::InvalidState("these options leave nothing in common with the offer")));
                }
            }
            CallCommand::Reject { status, reason, contact } => {
                self.end_reason = Some(format!("rejected with {status}"));
                self.hung_up = true;
                self.command(match contact {
                    Some(contact) => Command::Redirect { status, contact },
                    None => Command::Reject { status, reason },
                });
            }
            CallCommand::Defer { timeout, on_timeout } => {
                if matches!(self.leg_state(), LegState::Incoming | LegState::Early) {
                    self.deadline = Some((Instant::now() + timeout, on_timeout));
                }
            }
            CallCommand::Hangup { done } => {
                self.end_reason.get_or_insert_with(|| "hung up by us".into());
                self.hung_up = true;
                self.hangup_waiters.push(done);
                if matches!(self.leg_state(), LegState::Incoming | LegState::Early) {
                    self.call.0.decided.store(true, Ordering::Release);
                    self.command(Command::Reject { status: 603, reason: "Decline".into() });
                } else {
                    self.command(Command::Hangup);
                }
            }
            CallCommand::Hold { hold, done } => {
                // Answered and not yet acknowledged: the engine sends it after the ACK.
                if !matches!(self.leg_state(), LegState::Answered | LegState::Confirmed) {
                    let _ = done.send(Err(PeerError::InvalidState("hold needs an answered call with no re-INVITE under way")));
                    return;
                }
                self.hold_waiter = Some((hold, done));
                self.command(Command::Reoffer { hold });
            }
            CallCommand::EarlyMedia { done } => {
                self.before_answer(Command::EarlyMedia, done, "early media needs an incoming call not yet answered").await;
            }
            CallCommand::Transfer { refer_to, done } => self.send_refer(refer_to, done),
            CallCommand::Internal(Internal::HoldDecision(accept)) => {
                if accept {
                    self.remote_hold = self.requested_hold;
                }
                self.command(if accept { Command::AcceptReoffer } else { Command::RejectReoffer });
            }
            CallCommand::Internal(Internal::TransferDecided { target, replaces, decision }) => {
                self.transfer_decided(target, replaces, decision);
            }
            CallCommand::Internal(Internal::TransferOutcome(status, reason)) => self.transfer_outcome(status, reason),
        }
    }

    /// `command` for an incoming call not yet answered; otherwise `refused`.
    /// Answers (or sends early media) while the call still rings. The application hears
    /// back once what the answer sets up is done — the 2xx out, the media configured — so
    /// the call's codec and rate are there when `accept` returns.
    async fn before_answer(&mut self, command: Command, done: oneshot::Sender<Result<()>>, refused: &'static str) {
        let ringing = matches!(self.leg_state(), LegState::Incoming | LegState::Early);
        if ringing {
            self.command(command);
            self.carry_out().await;
        }
        let _ = done.send(if ringing { Ok(()) } else { Err(PeerError::InvalidState(refused)) });
    }

    /// A call arrived and its offer can be answered: let the application (or a policy)
    /// decide — unless it replaces one of our calls (RFC 3891), which it does at once.
    pub(super) async fn on_offered(&mut self, replaces: Option<String>) {
        if let Some(replaced) = replaces.and_then(|r| self.ctx.find_replaced(&r)) {
            self.call.0.decided.store(true, Ordering::Release);
            self.command(Command::Answer);
            tokio::spawn(async move {
                let _ = replaced.hangup().await;
            });
            return;
        }
        let invite = self.invite.as_ref().map(|(_, i)| i.clone());
        self.ctx.emit(PeerEvent::IncomingCall(IncomingCall::new(self.call.clone(), invite))).await;
    }

    /// The far end offers anew: a change of its hold is decided by the hold policy.
    pub(super) async fn on_reoffered(&mut self, hold: bool) {
        self.requested_hold = hold;
        if !hold || hold == self.remote_hold {
            self.remote_hold = hold;
            self.command(Command::AcceptReoffer);
            return;
        }
        let policy = self.call.policies().hold.unwrap_or_else(|| self.ctx.policies().hold);
        match policy {
            HoldPolicy::Accept | HoldPolicy::AcceptWithMedia { .. } => {
                self.remote_hold = true;
                self.command(Command::AcceptReoffer);
            }
            HoldPolicy::Reject => self.command(Command::RejectReoffer),
            HoldPolicy::RequireManual => {
                let (decider, rx) = Decider::new();
                let request = HoldRequest { call: self.call.clone(), hold, decider };
                self.ctx.emit(PeerEvent::HoldRequested(request)).await;
                let commands = self.call.0.commands.clone();
                tokio::spawn(async move {
                    let accepted = tokio::time::timeout(HOLD_DECISION_LIMIT, rx).await.ok().and_then(Result::ok).unwrap_or(false);
                    let _ = commands.send(CallCommand::Internal(Internal::HoldDecision(accepted)));
                });
            }
        }
    }

    /// Our re-INVITE's outcome: the hold (or resume) in place, refused, or unanswered.
    pub(super) async fn on_updated(&mut self, status: u16) {
        if status == 408 {
            self.warn_network("no answer to our re-INVITE".into()).await;
            if let Some((_, w)) = self.hold_waiter.take() {
                let _ = w.send(Err(PeerError::Timeout));
            }
            if self.ctx.policies().network_error == NetworkErrorPolicy::TerminateAll {
                self.ctx.hangup_all();
            }
            return;
        }
        let Some((hold, waiter)) = self.hold_waiter.take() else { return };
        if status >= 300 {
            let _ = waiter.send(Err(PeerError::Refused { status, reason: "re-INVITE refused".into() }));
            return;
        }
        self.on_hold = hold;
        let policy = self.call.policies().hold.unwrap_or_else(|| self.ctx.policies().hold);
        if let HoldPolicy::AcceptWithMedia { media_source } = policy {
            self.hold_media(hold, media_source).await;
        }
        let _ = waiter.send(Ok(()));
    }

    /// What the far end hears while we hold it.
    async fn hold_media(&mut self, hold: bool, source: HoldMediaSource) {
        let media = &self.call.0.media;
        if !hold {
            let _ = media.send(MediaCommand::StopPlaying);
            return;
        }
        let rate = media.snapshot().sample_rate.max(8000);
        let frame = match source {
            // Looped silence replaces the application's audio while held; RTP keeps flowing.
            HoldMediaSource::Silence => Some(AudioFrame::silence(rate, 1000)),
            HoldMediaSource::ToneBeep => Some(crate::peer::media::hold_beep(rate)),
            HoldMediaSource::MusicFile(p) | HoldMediaSource::Message(p) => match crate::peer::media::load_wav(&p) {
                Ok(f) => Some(f),
                Err(e) => {
                    self.warn(WarningCategory::Media, e.to_string()).await;
                    None
                }
            },
        };
        if let Some(frame) = frame {
            let (done, _) = tokio::sync::oneshot::channel();
            let _ = self.call.0.media.send(MediaCommand::Play { frame, looped: true, done });
        }
    }

    pub(super) async fn media_flow(&mut self, direction: MediaDirection, active: bool) {
        let event =
            MediaFlowEvent { call_id: self.call.id().clone(), direction, active, codec: self.call.0.media.snapshot().codec };
        self.ctx.emit(PeerEvent::MediaFlow(event)).await;
    }

    pub(super) async fn dtmf_received(&mut self, digit: char, duration: Duration) {
        let event = DtmfEvent {
            call_id: self.call.id().clone(),
            digit,
            duration_ms: duration.as_millis() as u32,
            timestamp: Instant::now(),
        };
        self.ctx.emit(PeerEvent::Dtmf(event)).await;
    }

    /// No RTP for the media timeout, or the media task failed: the media error policy.
    pub(super) async fn media_failed(&mut self, why: String) {
        if self.leg_state() != LegState::Confirmed || self.on_hold || self.remote_hold {
            return;
        }
        match self.ctx.policies().media_error {
            MediaErrorPolicy::TerminateCall => {
                self.end_reason = Some(format!("media failed: {why}"));
                self.command(Command::Hangup);
            }
            MediaErrorPolicy::AttemptRecovery { max_attempts } if self.media_recoveries < max_attempts => {
                self.media_recoveries += 1;
                self.warn(WarningCategory::Media, format!("{why}; re-INVITE {} of {max_attempts}", self.media_recoveries)).await;
                self.command(Command::Reoffer { hold: false });
            }
            MediaErrorPolicy::AttemptRecovery { .. } => {
                self.end_reason = Some(format!("media failed after recovery attempts: {why}"));
                self.command(Command::Hangup);
            }
            MediaErrorPolicy::ContinueDegraded => self.warn(WarningCategory::Media, why).await,
            MediaErrorPolicy::ReturnError => {
                *lock(&self.call.0.media_failed) = Some(why.clone());
                self.warn(WarningCategory::Media, why).await;
            }
            MediaErrorPolicy::Ignore => {}
        }
    }

    pub(super) async fn warn(&self, category: WarningCategory, message: String) {
        let event = WarningEvent { call_id: Some(self.call.id().clone()), category, message };
        self.ctx.emit(PeerEvent::Warning(event)).await;
    }

    pub(super) async fn warn_network(&self, message: String) {
        self.warn(WarningCategory::Network, message).await;
    }
}
