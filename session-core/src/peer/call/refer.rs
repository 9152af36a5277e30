//! Transfers (RFC 3515 REFER, RFC 3891 Replaces), the user's part: the engine carries the
//! REFER, its 202 and the NOTIFYs with `message/sipfrag`; here the application or the
//! transfer policy decides on a REFER to us, the call to the target is placed (a call of
//! its own), and our own transfer's progress is reported to whoever waits for it.

use std::time::Duration;

use sip::message::HeaderName;
use tokio::sync::oneshot;

use super::CallCommand;
use super::actor::{Actor, Internal};
use crate::engine::Command;
use crate::peer::error::{PeerError, Result};
use crate::peer::events::{Decider, PeerEvent, TransferDecision, TransferRequest};

/// Longest a REFER waits for a decision: its transaction times out at the far end after 32 s.
const DECISION_LIMIT: Duration = Duration::from_secs(30);

impl Actor {
    /// A REFER in our dialog: ask the application or the policy.
    pub(super) async fn on_transfer_requested(&mut self, target: String, replaces: Option<String>, domain: String) {
        let (decider, rx) = Decider::new();
        let transfer = TransferRequest {
            call: self.call.clone(),
            target: target.clone(),
            replaces: replaces.clone(),
            transferor_domain: domain,
            decider,
        };
        self.ctx.emit(PeerEvent::TransferRequested(transfer)).await;
        let commands = self.call.0.commands.clone();
        tokio::spawn(async move {
            let decision = tokio::time::timeout(DECISION_LIMIT, rx)
                .await
                .ok()
                .and_then(|r| r.ok())
                .unwrap_or(TransferDecision::Reject { status: 480, reason: "Temporarily Unavailable".into() });
            let _ = commands.send(CallCommand::Internal(Internal::TransferDecided { target, replaces, decision }));
        });
    }

    pub(super) fn transfer_decided(&mut self, target: String, replaces: Option<String>, decision: TransferDecision) {
        match decision {
            TransferDecision::Accept => {
                self.command(Command::AcceptTransfer);
                let headers: Vec<_> = replaces.map(|r| (HeaderName::Replaces, r)).into_iter().collect();
                let ctx = self.ctx.clone();
                let commands = self.call.0.commands.clone();
                tokio::spawn(async move {
                    let (status, reason) = match ctx.place_call(&target, headers, Default::default()).await {
                        Ok(_) => (200, "OK".to_owned()),
                        Err(PeerError::CallFailed { status, reason }) => (status, reason),
                        Err(e) => (500, e.to_string()),
                    };
                    let _ = commands.send(CallCommand::Internal(Internal::TransferOutcome(status, reason)));
                });
            }
            TransferDecision::Ignore => self.command(Command::IgnoreTransfer),
            TransferDecision::Reject { status, reason } => self.command(Command::RejectTransfer { status, reason }),
            TransferDecision::Policy => self.command(Command::RejectTransfer { status: 603, reason: "Decline".into() }),
        }
    }

    /// The call to the transfer target got its final answer: the transferor hears it; on
    /// success our part is over (the engine ends our leg).
    pub(super) fn transfer_outcome(&mut self, status: u16, reason: String) {
        if (200..300).contains(&status) {
            self.end_reason = Some("transferred".into());
        }
        self.command(Command::TransferProgress { status, reason });
    }

    /// As transferor: REFER the far end to `refer_to` (a name-addr).
    pub(super) fn send_refer(&mut self, refer_to: String, done: oneshot::Sender<Result<u16>>) {
        // Held or not: a transferor usually holds the transferee while it consults.
        if !self.public_state().is_established() || self.transfer_waiter.is_some() {
            let _ = done.send(Err(PeerError::InvalidState("a transfer needs an answered call with no other transfer under way")));
            return;
        }
        self.transfer_waiter = Some(done);
        self.command(Command::Refer { refer_to });
    }

    /// How our transfer goes: progress, then the final status (a success ends our leg).
    pub(super) async fn on_refer_progress(&mut self, status: u16, reason: String, last: bool) {
        let event = PeerEvent::TransferProgress { call_id: self.call.id().clone(), status, reason: reason.clone() };
        self.ctx.emit(event).await;
        if !last {
            return;
        }
        if (200..300).contains(&status) {
            self.end_reason = Some("transferred".into());
        }
        let Some(waiter) = self.transfer_waiter.take() else { return };
        let outcome = match status {
            200..=299 => Ok(status),
            0..=199 => Err(PeerError::Refused { status, reason: format!("the transfer ended at {status} {reason}") }),
            _ => Err(PeerError::Refused { status, reason }),
        };
        let _ = waiter.send(outcome);
    }
}
