//! Carrying out the legs' actions: responses and requests through the edges, media
//! connections, the busy mark, and the end of the call.

use std::net::SocketAddr;

use bytes::Bytes;
use cluster::bus::typed;
use cluster::contracts::{self, EdgeCommand, edge_command};
use cluster::registry::Bucket;
use cluster::subjects::{self, NodeId};
use session_core::b2bua::{Effect, Side};
use session_core::leg::LegAction;
use sip::dialog::forking::UacDialogs;
use sip::message::{Message, Method};

use super::{Call, Inbound, Outgoing, index, messages};
use crate::sdp;

impl Call {
    pub(super) async fn execute(&mut self, effects: Vec<Effect>) {
        for Effect { side, action } in effects {
            match action {
                LegAction::SendInvite => self.invite_callee().await,
                LegAction::SendProvisional => {
                    let provisional = self.callee.last_provisional.clone();
                    let status = provisional.as_ref().and_then(Message::status).unwrap_or(180);
                    let body = provisional.as_ref().and_then(|p| self.anchored(p, Side::Caller));
                    self.respond_caller(status, "", body).await;
                }
                LegAction::SendAnswer => self.answer_caller().await,
                LegAction::SendFailure => {
                    let (status, reason) = self.failure.clone();
                    self.respond_caller(status, &reason, None).await;
                }
                LegAction::SendRequestTerminated => self.respond_caller(487, "Request Terminated", None).await,
                LegAction::SendAck => self.send_ack(side).await,
                LegAction::SendCancel => {
                    let cancel =
                        edge_command::Command::Cancel(contracts::CancelRequest { correlation: self.callee.invite_correlation });
                    self.command(&self.callee.edge.clone(), cancel).await;
                }
                LegAction::SendBye => self.send_in_dialog(side, Method::Bye, None).await,
                LegAction::ConfirmBye => self.answer_inbound(200, "OK", None).await,
                LegAction::SendReinvite => {
                    let offer = self.pending_reinvite[index(side.other())].clone();
                    let body = offer.and_then(|o| self.anchored(&o.request, side));
                    self.send_in_dialog(side, Method::Invite, body).await;
                }
                LegAction::AnswerReinvite => self.answer_reinvite(side).await,
                LegAction::RejectReinvite => {
                    let answer = self.update_answer[index(side)].take();
                    let status = answer.as_ref().and_then(Message::status).filter(|s| *s >= 300).unwrap_or(488);
                    self.answer_pending(side, status, answer.as_ref().map(|a| a.reason()).unwrap_or_default()).await;
                }
                LegAction::RejectReinvitePending => self.answer_inbound(491, "Request Pending", None).await,
                LegAction::RejectReinviteGone => self.answer_inbound(481, "Call/Transaction Does Not Exist", None).await,
                LegAction::TerminateReinvite => self.answer_pending(side, 487, "Request Terminated").await,
                // Other legs hear of these through the bridge; the call's end is checked by
                // the run loop.
                LegAction::Notify(_) => {}
            }
        }
    }

    pub(super) async fn command(&self, edge: &NodeId, command: edge_command::Command) {
        let message = EdgeCommand {
            meta: contracts::meta(self.ctx.node.as_str()),
            session_id: self.id.to_string(),
            command: Some(command),
        };
        if let Err(e) = typed::publish(self.ctx.bus.as_ref(), &subjects::edge_commands(edge), &message).await {
            tracing::warn!(session = %self.id, error = %e, "edge command not sent");
        }
    }

    /// `message`'s SDP, pointed at our relay's port for `toward` (the side that receives it).
    pub(super) fn anchored(&self, message: &Message, toward: Side) -> Option<String> {
        let body = std::str::from_utf8(message.body()).ok().filter(|b| !b.is_empty())?;
        let relay = self.media.as_ref()?.legs[index(toward)];
        Some(sdp::anchor(body, relay))
    }

    async fn respond_caller(&mut self, status: u16, reason: &str, sdp: Option<String>) {
        let response = messages::caller_response(self, status, reason, sdp);
        if let Ok(response) = response {
            let respond =
                edge_command::Command::Respond(contracts::Respond { tx: self.caller.tx, response: response.as_bytes().to_vec() });
            self.command(&self.caller.edge.clone(), respond).await;
        }
    }

    async fn answer_caller(&mut self) {
        // The callee's answer, or (a call accepted on a ring timeout) our own copy of the offer.
        let sdp = match &self.callee.answer {
            Some(answer) => self.anchored(answer, Side::Caller),
            None => self.anchored(&self.caller.invite, Side::Caller),
        };
        self.respond_caller(200, "OK", sdp).await;
        if let Ok(dialog) = sip::dialog::Dialog::uas(&self.caller.invite, &self.caller.tag) {
            let mut dialog = dialog;
            dialog.confirm();
            self.caller.dialog = Some(dialog);
        }
    }

    async fn invite_callee(&mut self) {
        let body = self.anchored(&self.caller.invite, Side::Callee);
        let Ok(invite) = messages::callee_invite(self, body) else {
            return self.callee_unreachable("Bad Target").await;
        };
        // The target's own address first (RFC 3261: a registered Contact is where the user is
        // reached); the flow its registration came over when the target cannot be resolved.
        let Some(destination) = messages::destination(&self.callee.target).or_else(|| self.callee.flow.clone()) else {
            return self.callee_unreachable("Target Not Resolvable").await;
        };
        self.callee.dialogs = Some(UacDialogs::new(invite.clone()));
        let send = edge_command::Command::SendRequest(contracts::SendRequest {
            correlation: self.callee.invite_correlation,
            request: invite.as_bytes().to_vec(),
            destination: Some(destination.clone()),
        });
        self.callee.flow = Some(destination);
        self.callee.invite = Some(invite);
        self.command(&self.callee.edge.clone(), send).await;
    }

    /// The target cannot be called: the caller gets 502 (through the leg table).
    async fn callee_unreachable(&mut self, why: &str) {
        tracing::warn!(session = %self.id, target = %self.callee.target, why, "callee not called");
        self.failure = (502, why.to_owned());
        Box::pin(self.input(Side::Callee, session_core::leg::LegInput::Timeout)).await;
    }

    async fn send_ack(&mut self, side: Side) {
        let Some((cseq, dialog)) = (match self.ack_pending[index(side)].take() {
            Some(cseq) => self.dialog(side).map(|d| (cseq, d)),
            None if side == Side::Callee => self.callee.dialog.clone().map(|d| (1, d)),
            None => None,
        }) else {
            return;
        };
        let Ok(ack) = dialog.ack(cseq, None).build() else { return };
        let (edge, destination) = self.route_of(side);
        let command = edge_command::Command::SendAck(contracts::SendAck {
            invite_correlation: if cseq == 1 { self.callee.invite_correlation } else { 0 },
            ack: ack.as_bytes().to_vec(),
            destination: Some(destination),
        });
        self.command(&edge, command).await;
    }

    fn dialog(&self, side: Side) -> Option<sip::dialog::Dialog> {
        match side {
            Side::Caller => self.caller.dialog.clone(),
            Side::Callee => self.callee.dialog.clone(),
        }
    }

    /// The edge and the flow that carry requests to `side`.
    fn route_of(&self, side: Side) -> (NodeId, contracts::Peer) {
        match side {
            Side::Caller => (self.caller.edge.clone(), self.caller.flow.clone()),
            Side::Callee => (self.callee.edge.clone(), self.callee.flow.clone().unwrap_or_default()),
        }
    }

    async fn send_in_dialog(&mut self, side: Side, method: Method, sdp: Option<String>) {
        let contact = self.caller.contact.clone();
        let Some(dialog) = self.dialog_mut(side) else { return };
        let mut b = dialog.request(method.clone(), None);
        let cseq = dialog.local_seq;
        if method == Method::Invite {
            b = b.header(sip::message::HeaderName::Contact, format_args!("<{contact}>"));
        }
        if let Some(sdp) = sdp {
            b = b.body("application/sdp", sdp);
        }
        let Ok(request) = b.build() else { return };
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let outgoing = if method == Method::Bye { Outgoing::Bye(side) } else { Outgoing::Reinvite(side, cseq) };
        self.requests.insert(correlation, outgoing);
        let (edge, destination) = self.route_of(side);
        let send = edge_command::Command::SendRequest(contracts::SendRequest {
            correlation,
            request: request.as_bytes().to_vec(),
            destination: Some(destination),
        });
        self.command(&edge, send).await;
    }

    /// Answers the request being handled right now.
    async fn answer_inbound(&mut self, status: u16, reason: &str, sdp: Option<String>) {
        if let Some(inbound) = self.inbound.clone() {
            self.respond_with(&inbound, status, reason, sdp).await;
        }
    }

    pub(super) async fn respond_to(&self, inbound: &Inbound, status: u16, reason: &str) {
        self.respond_with(inbound, status, reason, None).await;
    }

    async fn respond_with(&self, inbound: &Inbound, status: u16, reason: &str, sdp: Option<String>) {
        let Ok(response) = messages::in_dialog_response(self, inbound, status, reason, sdp) else { return };
        let respond =
            edge_command::Command::Respond(contracts::Respond { tx: inbound.tx, response: response.as_bytes().to_vec() });
        self.command(&inbound.edge, respond).await;
    }

    async fn answer_reinvite(&mut self, side: Side) {
        let answer = self.update_answer[index(side)].take();
        let sdp = answer.and_then(|a| self.anchored(&a, side));
        if let Some(pending) = self.pending_reinvite[index(side)].take() {
            self.respond_with(&pending, 200, "OK", sdp).await;
        }
    }

    async fn answer_pending(&mut self, side: Side, status: u16, reason: &str) {
        if let Some(pending) = self.pending_reinvite[index(side)].take() {
            self.respond_with(&pending, status, reason, None).await;
        }
    }

    pub(super) async fn connect_media(&self, side: Side, addr: SocketAddr) {
        if addr.ip().is_unspecified() {
            return;
        }
        if let Some(m) = &self.media
            && let Err(e) = self.ctx.media.connect(&m.node, &self.id, index(side) as u32, addr).await
        {
            tracing::warn!(session = %self.id, error = %e, "media not connected");
        }
    }

    pub(super) async fn mark_busy(&self) {
        if !self.busy_key.is_empty() {
            let _ = self.ctx.registry.put(Bucket::Agents, &self.busy_key, Bytes::from(self.id.to_string())).await;
        }
    }

    /// Releases what the call held and forgets it.
    pub(super) async fn finish(&mut self) {
        if let Some(m) = self.media.take()
            && let Err(e) = self.ctx.media.release(&m.node, &self.id).await
        {
            tracing::warn!(session = %self.id, error = %e, "media not released");
        }
        if !self.busy_key.is_empty() {
            let _ = self.ctx.registry.delete(Bucket::Agents, &self.busy_key, None).await;
        }
        if let Some(owned) = self.owned.take()
            && let Err(e) = self.ctx.store.remove(owned).await
        {
            tracing::warn!(session = %self.id, error = %e, "session record not removed");
        }
        self.ctx.stats.finished(self.answered_ms > 0);
        tracing::debug!(session = %self.id, caller = ?self.machine.history(Side::Caller), callee = ?self.machine.history(Side::Callee), "call over");
    }
}
