//! What arrives from the far end for this call: requests in the dialog, ACKs, CANCEL, and
//! the replies to our own requests — each turned into a leg input, or answered directly
//! when it is not the table's business (OPTIONS, INFO, NOTIFY, REFER).

use media::sdp;
use sip::auth::answer_challenge;
use sip::dialog::Dialog;
use sip::message::{HeaderName, Message, Method};
use sip::transaction::{Peer, TxId};

use super::actor::Actor;
use crate::engine::dtmf_relay_digit;
pub(super) use crate::engine::sdp_of;
use crate::leg::{LegInput, LegState};
use crate::peer::agent::{DialogInput, Purpose, TxReply};
use crate::peer::policies::NetworkErrorPolicy;

impl Actor {
    pub(super) async fn on_dialog(&mut self, input: DialogInput) {
        match input {
            DialogInput::Request { tx, request, peer } => self.on_request(tx, request, peer).await,
            DialogInput::Ack(ack) => {
                if let Some(d) = &mut self.dialog {
                    let _ = d.on_request(&ack);
                }
                self.step(LegInput::Ack).await;
            }
            DialogInput::Cancelled(tx) if Some(tx) == self.invite_tx => {
                self.step(LegInput::CancelReceived).await;
            }
            DialogInput::Cancelled(_) => {}
            DialogInput::AckTimeout => {
                self.end_reason = Some("our answer was never acknowledged".into());
                self.step(LegInput::Timeout).await;
            }
            DialogInput::Reply { purpose, tx, reply } => self.on_reply(purpose, tx, reply).await,
            DialogInput::Stray(response) => {
                if response.status().is_some_and(|s| (200..300).contains(&s))
                    && self.dialog.as_ref().is_some_and(|d| d.matches(&response))
                {
                    self.resend_ack();
                }
            }
        }
    }

    async fn on_request(&mut self, tx: TxId, request: Message, peer: Peer) {
        let Some(method) = request.method().cloned() else { return };
        if let Some(dialog) = &mut self.dialog
            && let Err(e) = dialog.on_request(&request)
        {
            self.respond(tx, &request, e.status(), "", None, None);
            return;
        }
        self.remote_peer.addr = peer.addr;
        match method {
            Method::Bye => {
                self.inbound = Some((tx, request.clone()));
                if !self.step(LegInput::ByeReceived).await {
                    self.inbound = None;
                    self.respond(tx, &request, 481, "", None, None);
                }
            }
            Method::Invite => {
                self.inbound = Some((tx, request.clone()));
                if self.leg.state() == LegState::Confirmed {
                    self.pending_reinvite = Some((tx, request.clone(), None));
                }
                if !self.step(LegInput::ReinviteReceived).await {
                    self.inbound = None;
                    self.pending_reinvite = None;
                    self.respond(tx, &request, 500, "Server Internal Error", None, None);
                }
            }
            Method::Refer => self.on_refer(tx, request).await,
            Method::Notify => self.on_notify(tx, request).await,
            Method::Info => {
                self.respond(tx, &request, 200, "", None, None);
                if let Some(digit) = dtmf_relay_digit(&request) {
                    self.dtmf_received(digit, std::time::Duration::from_millis(100)).await;
                }
            }
            Method::Options => {
                self.respond(tx, &request, 200, "", None, Some((HeaderName::Allow, crate::peer::agent::ALLOW.into())))
            }
            _ => self.respond(tx, &request, 405, "", None, Some((HeaderName::Allow, crate::peer::agent::ALLOW.into()))),
        }
    }

    async fn on_reply(&mut self, purpose: Purpose, tx: TxId, reply: TxReply) {
        match (purpose, reply) {
            (Purpose::Invite, TxReply::Response(r)) => self.on_invite_response(r).await,
            (Purpose::Invite, _) => {
                self.failure = (408, "Request Timeout".into(), None);
                self.step(LegInput::Timeout).await;
            }
            (Purpose::Reinvite, TxReply::Response(r)) => self.on_reinvite_response(r).await,
            (Purpose::Reinvite, _) => self.network_failure(Purpose::Reinvite).await,
            (Purpose::Bye, TxReply::Response(r)) if r.status().unwrap_or(0) >= 200 => {
                self.step(LegInput::ByeResponse).await;
            }
            (Purpose::Bye, TxReply::Response(_)) => {}
            (Purpose::Bye, _) => self.network_failure(Purpose::Bye).await,
            (Purpose::Refer, reply) => self.on_refer_reply(tx, reply).await,
            (Purpose::Notify | Purpose::Register, _) => {}
        }
    }

    async fn on_invite_response(&mut self, response: Message) {
        let status = response.status().unwrap_or(0);
        match status {
            100 => {}
            101..=199 => {
                if let (Some(offer), Some(answer)) = (&self.offer, sdp_of(&response))
                    && let Ok(n) = sdp::apply_answer(offer, &answer)
                {
                    self.configure_media(n);
                }
                self.step(LegInput::Provisional).await;
            }
            200..=299 if matches!(self.leg.state(), LegState::Calling | LegState::Alerting | LegState::Cancelling) => {
                if let Some(invite) = &self.invite
                    && let Ok(dialog) = Dialog::uac(invite, &response)
                {
                    self.set_dialog(dialog);
                }
                self.ack_seq = response.cseq().map_or(1, |(s, _)| s);
                match (&self.offer, sdp_of(&response)) {
                    (Some(offer), Some(answer)) => match sdp::apply_answer(offer, &answer) {
                        Ok(n) => self.configure_media(n),
                        Err(e) => tracing::warn!(call = %self.call.id(), error = %e, "the answer's SDP is unusable"),
                    },
                    _ => tracing::warn!(call = %self.call.id(), "2xx without SDP answer"),
                }
                self.step(LegInput::Success).await;
            }
            200..=299 => self.resend_ack(),
            401 | 407 if self.auth_tries < 2 && self.leg.state() == LegState::Calling => {
                let uri = self.uac.as_ref().map(|(t, _)| t.to_string()).unwrap_or_default();
                let answer = self.credentials().and_then(|c| answer_challenge(&response, &c, &Method::Invite, &uri, 1).ok());
                match answer {
                    Some((name, value)) => {
                        self.auth_tries += 1;
                        self.send_invite(Some((name, value.to_string()))).await;
                    }
                    None => self.fail(status, response.reason()).await,
                }
            }
            _ => self.fail(status, response.reason()).await,
        }
    }

    async fn fail(&mut self, status: u16, reason: &str) {
        self.failure = (status, reason.to_owned(), None);
        self.step(LegInput::Failure).await;
    }

    async fn on_reinvite_response(&mut self, response: Message) {
        let status = response.status().unwrap_or(0);
        if status < 200 {
            return;
        }
        self.reinvite_status = status;
        if !(200..300).contains(&status) {
            self.step(LegInput::UpdateFailure).await;
            return;
        }
        if let Some(d) = &mut self.dialog {
            let _ = d.on_response(&response);
        }
        if let (Some(offer), Some(answer)) = (&self.offer, sdp_of(&response))
            && let Ok(n) = sdp::apply_answer(offer, &answer)
        {
            self.configure_media(n);
        }
        self.step(LegInput::UpdateSuccess).await;
    }

    /// A request of ours got no answer: the network error policy decides.
    async fn network_failure(&mut self, purpose: Purpose) {
        let policy = self.ctx.policies().network_error;
        let (retries, _) = policy.retries();
        if purpose == Purpose::Reinvite && self.network_retries < retries {
            self.network_retries += 1;
            let body = self.offer.as_ref().map(|o| ("application/sdp", o.to_string()));
            self.send_in_dialog(Method::Invite, Purpose::Reinvite, body, &[]).await;
            return;
        }
        self.warn_network(format!("no answer to our {purpose:?}")).await;
        if let Some((_, w)) = self.hold_waiter.take() {
            let _ = w.send(Err(crate::peer::error::PeerError::Timeout));
        }
        self.step(LegInput::Timeout).await;
        if policy == NetworkErrorPolicy::TerminateAll {
            self.ctx.hangup_all();
        }
    }
}
