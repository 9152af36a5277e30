//! Carrying out the leg's actions as SIP: requests and responses built for this call's
//! dialog, sent through the agent; and the media configured from each offer/answer.

use media::sdp::{self, Direction, Negotiated};
use sip::auth::Credentials;
use sip::dialog::Dialog;
use sip::endpoint::peer_for_uri;
use sip::message::{Builder, HeaderName, Message, Method};
use sip::transaction::{Peer, TxId};

use super::actor::Actor;
use super::{DialogInfo, lock};
use crate::leg::LegAction;
use crate::peer::agent::{ALLOW, Purpose};

const USER_AGENT: &str = "callmesh-peer";

impl Actor {
    pub(super) async fn execute(&mut self, action: LegAction) {
        match action {
            LegAction::SendInvite => self.send_invite(None).await,
            LegAction::SendProvisional => self.respond_invite(180, "", None),
            LegAction::SendAnswer => self.send_answer(),
            LegAction::SendFailure => {
                let (status, reason, contact) = self.failure.clone();
                let contact = contact.map(|c| (HeaderName::Contact, format!("<{c}>")));
                self.respond_invite_with(status, &reason, None, contact);
            }
            LegAction::SendRequestTerminated => self.respond_invite(487, "", None),
            LegAction::SendAck => self.send_ack(),
            LegAction::SendCancel => {
                if let Some(tx) = self.invite_tx {
                    let _ = self.ctx.agent.endpoint.cancel(tx).await;
                }
            }
            LegAction::SendBye => {
                self.end_reason.get_or_insert_with(|| "hung up by us".into());
                self.send_in_dialog(Method::Bye, Purpose::Bye, None, &[]).await;
            }
            LegAction::ConfirmBye => {
                self.end_reason.get_or_insert_with(|| "hung up by the far end (BYE)".into());
                self.respond_inbound(200, "");
            }
            LegAction::SendReinvite => {
                let body = self.offer.as_ref().map(|o| ("application/sdp", o.to_string()));
                self.send_in_dialog(Method::Invite, Purpose::Reinvite, body, &[]).await;
            }
            LegAction::AnswerReinvite => {
                if let Some((tx, request, Some((body, negotiated)))) = self.pending_reinvite.take() {
                    self.respond(tx, &request, 200, "", Some(body), None);
                    self.configure_media(negotiated);
                }
            }
            LegAction::RejectReinvite => {
                if let Some((tx, request, _)) = self.pending_reinvite.take() {
                    self.respond(tx, &request, 488, "", None, None);
                }
            }
            LegAction::RejectReinvitePending => self.respond_inbound(491, ""),
            LegAction::RejectReinviteGone => self.respond_inbound(481, ""),
            LegAction::TerminateReinvite => {
                if let Some((tx, request, _)) = self.pending_reinvite.take() {
                    self.respond(tx, &request, 487, "", None, None);
                }
            }
            LegAction::Notify(event) => self.on_leg_event(event).await,
        }
    }

    pub(super) fn credentials(&self) -> Option<Credentials> {
        self.ctx.config.credentials.as_ref().map(|(u, p)| Credentials::new(u, p))
    }

    /// Our INVITE (again with `auth` after a challenge, with the next CSeq).
    pub(super) async fn send_invite(&mut self, auth: Option<(HeaderName, String)>) {
        let Some((target, headers)) = self.uac.clone() else { return };
        let seq = self.invite.as_ref().and_then(|i| i.cseq()).map_or(1, |(s, _)| s + 1);
        let offer = self.offer.get_or_insert_with(|| {
            sdp::build_offer(&self.local, &self.ctx.config.negotiation).expect("the configuration was validated")
        });
        let body = offer.to_string();
        let via = self.ctx.agent.endpoint.via(self.remote_peer.transport);
        let display = self.ctx.config.display_name.as_ref().map(|d| format!("\"{d}\" ")).unwrap_or_default();
        let mut b = Builder::request(&Method::Invite, &target)
            .header(HeaderName::Via, &via)
            .header(HeaderName::MaxForwards, 70)
            .header(HeaderName::From, format_args!("{display}<{}>;tag={}", self.ctx.local_uri(), self.local_tag))
            .header(HeaderName::To, format_args!("<{target}>"))
            .header(HeaderName::CallId, self.call.id())
            .header(HeaderName::CSeq, format_args!("{seq} INVITE"))
            .header(HeaderName::Contact, self.ctx.contact())
            .header(HeaderName::Allow, ALLOW)
            .header(HeaderName::Supported, "replaces")
            .header(HeaderName::UserAgent, USER_AGENT);
        for (name, value) in headers.iter().chain(auth.iter()) {
            b = b.header(*name, value);
        }
        let Ok(invite) = b.body("application/sdp", body).build() else { return };
        self.invite = Some(invite.clone());
        match self.ctx.agent.send(invite, self.remote_peer, Purpose::Invite, self.inbox_tx.clone()).await {
            Ok(tx) => self.invite_tx = Some(tx),
            Err(_) => self.failure = (503, "Service Unavailable".into(), None),
        }
    }

    pub(super) fn respond(
        &self,
        tx: TxId,
        request: &Message,
        status: u16,
        reason: &str,
        sdp: Option<String>,
        extra: Option<(HeaderName, String)>,
    ) {
        let mut b = Builder::response_to(request, status, reason, Some(&self.local_tag));
        if request.method() == Some(&Method::Invite) && status < 300 {
            b = b.header(HeaderName::Contact, self.ctx.contact()).header(HeaderName::Allow, ALLOW);
        }
        if let Some((name, value)) = extra {
            b = b.header(name, value);
        }
        b = b.header(HeaderName::Server, USER_AGENT);
        if let Some(body) = sdp {
            b = b.body("application/sdp", body);
        }
        match b.build() {
            Ok(response) => {
                let _ = self.ctx.agent.endpoint.respond(tx, response);
            }
            Err(e) => tracing::warn!(call = %self.call.id(), error = %e, "response not built"),
        }
    }

    fn respond_invite_with(&self, status: u16, reason: &str, sdp: Option<String>, extra: Option<(HeaderName, String)>) {
        if let (Some(tx), Some(invite)) = (self.invite_tx, &self.invite) {
            self.respond(tx, invite, status, reason, sdp, extra);
        }
    }

    fn respond_invite(&self, status: u16, reason: &str, sdp: Option<String>) {
        self.respond_invite_with(status, reason, sdp, None);
    }

    fn respond_inbound(&mut self, status: u16, reason: &str) {
        if let Some((tx, request)) = self.inbound.take() {
            self.respond(tx, &request, status, reason, None, None);
        }
    }

    /// UAS: the 2xx with our answer; the dialog exists from now on.
    fn send_answer(&mut self) {
        let Some((body, negotiated)) = self.answer.take() else {
            self.respond_invite(488, "", None);
            return;
        };
        self.respond_invite(200, "", Some(body));
        if let Some(invite) = &self.invite
            && let Ok(dialog) = Dialog::uas(invite, &self.local_tag)
        {
            self.set_dialog(dialog);
        }
        self.configure_media(negotiated);
    }

    pub(super) fn set_dialog(&mut self, dialog: Dialog) {
        *lock(&self.call.0.dialog) = Some(DialogInfo {
            local_tag: dialog.id.local_tag.clone(),
            remote_tag: dialog.id.remote_tag.clone(),
            remote_target: dialog.remote_target.to_string(),
        });
        self.dialog = Some(dialog);
    }

    pub(super) fn configure_media(&mut self, negotiated: Negotiated) {
        let _ = self.call.0.media.configure(negotiated);
    }

    /// Where in-dialog requests go: the next hop if it is an address, else where the far end
    /// last sent from.
    fn in_dialog_peer(&self) -> Peer {
        self.dialog.as_ref().and_then(|d| peer_for_uri(d.next_hop(), self.remote_peer.transport)).unwrap_or(self.remote_peer)
    }

    /// The ACK for the 2xx to the INVITE with CSeq `ack_seq`.
    fn send_ack(&mut self) {
        let Some(dialog) = &self.dialog else { return };
        let via = self.ctx.agent.endpoint.via(self.remote_peer.transport);
        if let Ok(ack) = dialog.ack(self.ack_seq, Some(&via)).build() {
            let peer = self.in_dialog_peer();
            let _ = self.ctx.agent.endpoint.send_ack(None, ack.clone(), peer);
            self.last_ack = Some((ack, peer));
        }
    }

    /// The far end retransmits its 2xx: our ACK was lost.
    pub(super) fn resend_ack(&self) {
        if let Some((ack, peer)) = &self.last_ack {
            let _ = self.ctx.agent.endpoint.send_ack(None, ack.clone(), *peer);
        }
    }

    /// Sends a request in the dialog; `None` when there is no dialog yet.
    pub(super) async fn send_in_dialog(
        &mut self,
        method: Method,
        purpose: Purpose,
        body: Option<(&str, String)>,
        headers: &[(HeaderName, String)],
    ) -> Option<TxId> {
        let peer = self.in_dialog_peer();
        let via = self.ctx.agent.endpoint.via(peer.transport);
        let dialog = self.dialog.as_mut()?;
        let mut b = dialog.request(method.clone(), Some(&via)).header(HeaderName::UserAgent, USER_AGENT);
        if matches!(method, Method::Invite | Method::Refer | Method::Notify) {
            b = b.header(HeaderName::Contact, self.ctx.contact());
        }
        for (name, value) in headers {
            b = b.header(*name, value);
        }
        if let Some((content_type, body)) = body {
            b = b.body(content_type, body);
        }
        let request = b.build().ok()?;
        if method == Method::Invite {
            self.ack_seq = request.cseq().map_or(0, |(s, _)| s);
        }
        let tx = self.ctx.agent.send(request.clone(), peer, purpose, self.inbox_tx.clone()).await.ok()?;
        if purpose == Purpose::Refer {
            self.transfer_refer = Some((tx, request));
        }
        Some(tx)
    }

    /// A new offer for a re-INVITE: same codecs, the direction for `hold`.
    pub(super) fn reoffer(&mut self, hold: bool) -> Option<String> {
        self.local.session_version += 1;
        self.local.direction = if hold { Direction::SendOnly } else { Direction::SendRecv };
        let offer = sdp::build_offer(&self.local, &self.ctx.config.negotiation).ok()?;
        let text = offer.to_string();
        self.offer = Some(offer);
        Some(text)
    }
}
