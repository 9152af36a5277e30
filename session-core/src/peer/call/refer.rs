//! Transfers (RFC 3515 REFER, RFC 3891 Replaces): as transferee we decide on a REFER (the
//! application or the transfer policy), call the target and report its progress in NOTIFYs
//! carrying `message/sipfrag`; as transferor we send the REFER and follow those NOTIFYs.

use std::time::Duration;

use sip::message::{HeaderName, Message, Method};
use sip::transaction::TxId;
use tokio::sync::oneshot;

use super::actor::{Actor, Internal};
use super::{CallCommand, CallState};
use crate::engine::parse_refer_to;
use crate::leg::{LegInput, LegState};
use crate::peer::agent::{Purpose, TxReply};
use crate::peer::error::{PeerError, Result};
use crate::peer::events::{Decider, PeerEvent, TransferDecision, TransferRequest};

/// Longest a REFER waits for a decision: its transaction times out at the far end after 32 s.
const DECISION_LIMIT: Duration = Duration::from_secs(30);

impl Actor {
    /// A REFER in our dialog: ask the application or the policy, answer when decided.
    pub(super) async fn on_refer(&mut self, tx: TxId, request: Message) {
        let parsed = request.header(HeaderName::ReferTo).and_then(parse_refer_to);
        let Some((target, replaces)) = parsed else {
            self.respond(tx, &request, 400, "Missing or bad Refer-To", None, None);
            return;
        };
        if self.leg.state() != LegState::Confirmed {
            self.respond(tx, &request, 481, "", None, None);
            return;
        }
        let transferor_domain =
            request.from().ok().and_then(|f| f.uri.as_sip().map(|s| s.host_port.host.to_string())).unwrap_or_default();
        let (decider, rx) = Decider::new();
        let transfer = TransferRequest { call: self.call.clone(), target, replaces, transferor_domain, decider };
        self.ctx.emit(PeerEvent::TransferRequested(transfer)).await;
        let commands = self.call.0.commands.clone();
        tokio::spawn(async move {
            let decision = tokio::time::timeout(DECISION_LIMIT, rx)
                .await
                .ok()
                .and_then(|r| r.ok())
                .unwrap_or(TransferDecision::Reject { status: 480, reason: "Temporarily Unavailable".into() });
            let _ = commands.send(CallCommand::Internal(Internal::TransferDecided { tx, request, decision }));
        });
    }

    pub(super) async fn transfer_decided(&mut self, tx: TxId, request: Message, decision: TransferDecision) {
        match decision {
            TransferDecision::Accept => {
                self.respond(tx, &request, 202, "Accepted", None, None);
                self.notify_progress(100, "Trying", false).await;
                let Some((target, replaces)) = request.header(HeaderName::ReferTo).and_then(parse_refer_to) else { return };
                let headers: Vec<_> = replaces.map(|r| (HeaderName::Replaces, r)).into_iter().collect();
                let ctx = self.ctx.clone();
                let commands = self.call.0.commands.clone();
                tokio::spawn(async move {
                    let (status, reason) = match ctx.place_call(&target, headers).await {
                        Ok(_) => (200, "OK".to_owned()),
                        Err(PeerError::CallFailed { status, reason }) => (status, reason),
                        Err(e) => (500, e.to_string()),
                    };
                    let _ = commands.send(CallCommand::Internal(Internal::TransferOutcome(status, reason)));
                });
            }
            TransferDecision::Ignore => {
                self.respond(tx, &request, 202, "Accepted", None, None);
                self.notify_progress(100, "Trying", true).await;
            }
            TransferDecision::Reject { status, reason } => self.respond(tx, &request, status, &reason, None, None),
            TransferDecision::Policy => self.respond(tx, &request, 603, "Decline", None, None),
        }
    }

    /// The call to the transfer target got its final answer: tell the transferor; on
    /// success our part is over.
    pub(super) async fn transfer_outcome(&mut self, status: u16, reason: String) {
        self.notify_progress(status, &reason, true).await;
        if (200..300).contains(&status) {
            self.end_reason = Some("transferred".into());
            self.step(LegInput::Hangup).await;
        }
    }

    async fn notify_progress(&mut self, status: u16, reason: &str, last: bool) {
        let state = if last { "terminated;reason=noresource" } else { "active;expires=60" };
        let headers = [(HeaderName::Event, "refer".to_owned()), (HeaderName::SubscriptionState, state.to_owned())];
        let body = ("message/sipfrag;version=2.0", format!("SIP/2.0 {status} {reason}\r\n"));
        self.send_in_dialog(Method::Notify, Purpose::Notify, Some(body), &headers).await;
    }

    /// As transferor: REFER the far end to `refer_to` (a name-addr).
    pub(super) async fn send_refer(&mut self, refer_to: String, done: oneshot::Sender<Result<u16>>) {
        if self.public_state() != CallState::Active || self.transfer_waiter.is_some() {
            let _ = done.send(Err(PeerError::InvalidState("a transfer needs an active call with no other transfer under way")));
            return;
        }
        let headers = [(HeaderName::ReferTo, refer_to), (HeaderName::ReferredBy, format!("<{}>", self.ctx.local_uri()))];
        match self.send_in_dialog(Method::Refer, Purpose::Refer, None, &headers).await {
            Some(_) => self.transfer_waiter = Some(done),
            None => {
                let _ = done.send(Err(PeerError::InvalidState("no dialog to send the REFER in")));
            }
        }
    }

    pub(super) async fn on_refer_reply(&mut self, tx: TxId, reply: TxReply) {
        if self.transfer_refer.as_ref().is_none_or(|(t, _)| *t != tx) {
            return;
        }
        let outcome = match reply {
            TxReply::Response(r) if r.status().unwrap_or(0) < 300 => return,
            TxReply::Response(r) => Err(PeerError::Refused { status: r.status().unwrap_or(0), reason: r.reason().to_owned() }),
            TxReply::Timeout | TxReply::TransportError => Err(PeerError::Timeout),
        };
        self.transfer_refer = None;
        if let Some(w) = self.transfer_waiter.take() {
            let _ = w.send(outcome);
        }
    }

    /// A NOTIFY about our REFER: progress, then the final status.
    pub(super) async fn on_notify(&mut self, tx: TxId, request: Message) {
        self.respond(tx, &request, 200, "", None, None);
        if !request.header(HeaderName::Event).is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("refer")) {
            return;
        }
        let line = std::str::from_utf8(request.body()).ok().and_then(|b| b.lines().next()).unwrap_or_default().to_owned();
        let mut parts = line.splitn(3, ' ');
        let status = parts.nth(1).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
        let reason = parts.next().unwrap_or_default().to_owned();
        let event = PeerEvent::TransferProgress { call_id: self.call.id().clone(), status, reason: reason.clone() };
        self.ctx.emit(event).await;
        let terminated = request.header(HeaderName::SubscriptionState).is_some_and(|s| s.trim().starts_with("terminated"));
        if status < 200 && !terminated {
            return;
        }
        if status < 200 {
            // The subscription ended without a final status: the far end did not transfer.
            self.transfer_refer = None;
            if let Some(w) = self.transfer_waiter.take() {
                let reason = format!("the transfer ended at {status} {reason}");
                let _ = w.send(Err(PeerError::Refused { status, reason }));
            }
            return;
        }
        self.transfer_refer = None;
        if let Some(w) = self.transfer_waiter.take() {
            let _ = w.send(if status < 300 { Ok(status) } else { Err(PeerError::Refused { status, reason }) });
        }
        if (200..300).contains(&status) {
            self.end_reason = Some("transferred".into());
            self.step(LegInput::Hangup).await;
        }
    }
}
