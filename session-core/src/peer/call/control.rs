//! Decisions in a call's life: what the application asks (answer, reject, hang up, hold),
//! what arrives for a decision (a new call, the far end's hold), and what the media task
//! reports (flow, digits, failures) — with the policies applied where nobody decided.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use media::sdp::{self, Direction, SessionDescription};
use sip::message::HeaderName;

use super::actor::{Actor, Internal};
use super::inbound::sdp_of;
use super::{CallCommand, lock};
use crate::leg::{LegInput, LegState};
use crate::peer::error::PeerError;
use crate::peer::events::{
    Decider, DtmfEvent, HoldRequest, MediaDirection, MediaFlowEvent, PeerEvent, WarningCategory, WarningEvent,
};
use crate::peer::incoming::IncomingCall;
use crate::peer::media::MediaCommand;
use crate::peer::policies::{HoldMediaSource, HoldPolicy, MediaErrorPolicy};

/// Whether an offer puts its receiver on hold: `sendonly`/`inactive`, or `c=0.0.0.0`.
fn offer_holds(offer: &SessionDescription) -> bool {
    let Some(audio) = offer.media.iter().find(|m| m.kind == "audio" && m.port != 0) else { return false };
    let direction = audio.direction.or(offer.direction).unwrap_or(Direction::SendRecv);
    let zero = audio.connection.or(offer.connection).is_some_and(|a: IpAddr| a.is_unspecified());
    direction.is_hold() || zero
}

impl Actor {
    pub(super) async fn on_command(&mut self, command: CallCommand) {
        match command {
            CallCommand::Answer { done } => {
                let ok = matches!(self.leg.state(), LegState::Incoming | LegState::Early) && self.step(LegInput::Answer).await;
                let _ = done.send(if ok {
                    Ok(())
                } else {
                    Err(PeerError::InvalidState("only a ringing incoming call can be accepted"))
                });
            }
            CallCommand::Reject { status, reason, contact } => {
                self.failure = (status, reason, contact);
                self.end_reason = Some(format!("rejected with {status}"));
                self.step(LegInput::Reject).await;
            }
            CallCommand::Defer { timeout, on_timeout } => {
                if matches!(self.leg.state(), LegState::Incoming | LegState::Early) {
                    self.deadline = Some((Instant::now() + timeout, on_timeout));
                }
            }
            CallCommand::Hangup { done } => {
                if matches!(self.leg.state(), LegState::Incoming | LegState::Early) {
                    self.call.0.decided.store(true, Ordering::Release);
                    self.failure = (603, "Decline".into(), None);
                }
                self.end_reason.get_or_insert_with(|| "hung up by us".into());
                self.hangup_waiters.push(done);
                self.step(LegInput::Hangup).await;
            }
            CallCommand::Hold { hold, done } => {
                if self.leg.state() != LegState::Confirmed || self.reoffer(hold).is_none() {
                    let _ = done.send(Err(PeerError::InvalidState("hold needs an answered call with no re-INVITE under way")));
                    return;
                }
                self.hold_waiter = Some((hold, done));
                self.step(LegInput::Update).await;
            }
            CallCommand::Transfer { refer_to, done } => self.send_refer(refer_to, done).await,
            CallCommand::Internal(Internal::HoldDecision(accept)) => {
                if accept {
                    self.remote_hold = self.requested_hold;
                }
                self.step(if accept { LegInput::AcceptUpdate } else { LegInput::RejectUpdate }).await;
            }
            CallCommand::Internal(Internal::TransferDecided { tx, request, decision }) => {
                self.transfer_decided(tx, request, decision).await;
            }
            CallCommand::Internal(Internal::TransferOutcome(status, reason)) => self.transfer_outcome(status, reason).await,
        }
    }

    /// A call arrived: answer its offer, then let the application (or a policy) decide.
    pub(super) async fn on_incoming(&mut self) {
        let offer = self.invite.as_ref().and_then(sdp_of);
        let answer = offer.map(|o| sdp::answer_offer(&o, &self.local, &self.ctx.config.negotiation));
        match answer {
            Some(Ok((sdp, negotiated))) => self.answer = Some((sdp.to_string(), negotiated)),
            Some(Err(e)) => return self.refuse(488, &e.to_string()),
            None => return self.refuse(488, "an SDP offer is required"),
        }
        if let Some(replaced) =
            self.invite.as_ref().and_then(|i| i.header(HeaderName::Replaces)).and_then(|r| self.ctx.find_replaced(r))
        {
            // RFC 3891: the new call takes the place of one of ours, without asking.
            self.call.0.decided.store(true, Ordering::Release);
            self.followup = Some(LegInput::Answer);
            tokio::spawn(async move {
                let _ = replaced.hangup().await;
            });
            return;
        }
        self.followup = Some(LegInput::Ring);
        self.ctx.emit(PeerEvent::IncomingCall(IncomingCall::new(self.call.clone(), self.invite.clone()))).await;
    }

    fn refuse(&mut self, status: u16, why: &str) {
        self.call.0.decided.store(true, Ordering::Release);
        self.failure = (status, "Not Acceptable Here".into(), None);
        self.end_reason = Some(format!("{status}: {why}"));
        self.followup = Some(LegInput::Reject);
    }

    /// The far end's re-INVITE: answer its offer, and decide on a hold by the hold policy.
    pub(super) async fn on_update_requested(&mut self) {
        let Some((_, request, _)) = &self.pending_reinvite else { return };
        let Some(offer) = sdp_of(request) else {
            self.followup = Some(LegInput::RejectUpdate);
            return;
        };
        self.local.session_version += 1;
        self.local.direction = if self.on_hold { Direction::SendOnly } else { Direction::SendRecv };
        match sdp::answer_offer(&offer, &self.local, &self.ctx.config.negotiation) {
            Ok((answer, n)) => {
                if let Some(p) = &mut self.pending_reinvite {
                    p.2 = Some((answer.to_string(), n));
                }
            }
            Err(_) => {
                self.followup = Some(LegInput::RejectUpdate);
                return;
            }
        }
        let hold = offer_holds(&offer);
        self.requested_hold = hold;
        if !hold || hold == self.remote_hold {
            self.remote_hold = hold;
            self.followup = Some(LegInput::AcceptUpdate);
            return;
        }
        let policy = self.call.policies().hold.unwrap_or_else(|| self.ctx.policies().hold);
        match policy {
            HoldPolicy::Accept | HoldPolicy::AcceptWithMedia { .. } => {
                self.remote_hold = true;
                self.followup = Some(LegInput::AcceptUpdate);
            }
            HoldPolicy::Reject => self.followup = Some(LegInput::RejectUpdate),
            HoldPolicy::RequireManual => {
                let (decider, rx) = Decider::new();
                let request = HoldRequest { call: self.call.clone(), hold, decider };
                self.ctx.emit(PeerEvent::HoldRequested(request)).await;
                let commands = self.call.0.commands.clone();
                tokio::spawn(async move {
                    let accepted =
                        tokio::time::timeout(Duration::from_secs(10), rx).await.ok().and_then(Result::ok).unwrap_or(false);
                    let _ = commands.send(CallCommand::Internal(Internal::HoldDecision(accepted)));
                });
            }
        }
    }

    /// Our re-INVITE went through: the hold (or resume) is in place.
    pub(super) async fn on_update_done(&mut self) {
        self.network_retries = 0;
        let Some((hold, waiter)) = self.hold_waiter.take() else { return };
        self.on_hold = hold;
        let policy = self.call.policies().hold.unwrap_or_else(|| self.ctx.policies().hold);
        if let HoldPolicy::AcceptWithMedia { media_source } = policy {
            let media = &self.call.0.media;
            if !hold {
                let _ = media.send(MediaCommand::StopPlaying);
            } else {
                let rate = media.snapshot().sample_rate.max(8000);
                let frame = match media_source {
                    HoldMediaSource::Silence => None,
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
                    let _ = media.send(MediaCommand::Play { frame, looped: true, done });
                }
            }
        }
        let _ = waiter.send(Ok(()));
    }

    pub(super) async fn media_flow(&mut self, receiving: bool) {
        let event = MediaFlowEvent {
            call_id: self.call.id().clone(),
            direction: MediaDirection::Receive,
            active: receiving,
            codec: self.call.0.media.snapshot().codec,
        };
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
        if self.leg.state() != LegState::Confirmed || self.on_hold || self.remote_hold {
            return;
        }
        match self.ctx.policies().media_error {
            MediaErrorPolicy::TerminateCall => {
                self.end_reason = Some(format!("media failed: {why}"));
                self.step(LegInput::Hangup).await;
            }
            MediaErrorPolicy::AttemptRecovery { max_attempts } if self.media_recoveries < max_attempts => {
                self.media_recoveries += 1;
                self.warn(WarningCategory::Media, format!("{why}; re-INVITE {} of {max_attempts}", self.media_recoveries)).await;
                if self.reoffer(false).is_some() {
                    self.step(LegInput::Update).await;
                }
            }
            MediaErrorPolicy::AttemptRecovery { .. } => {
                self.end_reason = Some(format!("media failed after recovery attempts: {why}"));
                self.step(LegInput::Hangup).await;
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
