//! A caller stranded by its edge's death: that edge held the caller's INVITE transaction —
//! its responses, the retransmissions of the 2xx, the ACK timer — and died before the
//! caller acknowledged a final answer. The responses still to come (the callee's ringing,
//! its answer) go to the caller outside any transaction, through any edge on the same SIP
//! address; the caller's ACK comes back through any edge too. If none has come within Timer
//! H, nobody is left to say so but the call itself: it ends as if the ACK had timed out
//! (the callee hung up, the relay released) rather than waiting for ever.

use std::time::{Duration, Instant};

use cluster::contracts::SendStateless;
use cluster::contracts::edge_command::Command as EdgeCommand;
use session_core::engine::{CALLER, Command, SipInput, peer_to_contract};
use session_core::leg::LegState;

use super::Call;

/// RFC 3261 Timer H (64 × T1): how long a 2xx waits for its ACK.
pub(super) const TIMER_H: Duration = Duration::from_secs(32);

impl Call {
    /// Edge `edge` died: the caller's transaction there, if not acknowledged, is watched.
    pub(super) fn strand(&mut self, edge: &str) {
        if let Some(tx) = self.engine.unacknowledged_at(edge) {
            tracing::info!(session = %self.id, %edge, "the caller's transaction died with its edge: its ACK may come elsewhere");
            self.stranded = Some((tokio::time::Instant::now() + TIMER_H, tx));
        }
    }

    /// `command` for dead edge `edge`: a response to the caller's INVITE there, sent outside
    /// any transaction; anything else as it is.
    pub(super) fn stranded_response(&self, edge: &str, command: EdgeCommand) -> EdgeCommand {
        match (command, self.engine.caller_invite()) {
            (EdgeCommand::Respond(r), Some((tx, route))) if tx.edge == edge && tx.id == r.tx => {
                tracing::info!(session = %self.id, %edge, "the caller's response sent through another edge");
                let destination = Some(peer_to_contract(&route.peer));
                EdgeCommand::SendStateless(SendStateless { message: r.response, destination })
            }
            (command, _) => command,
        }
    }

    /// When a stranded caller's wait ends (never without one).
    pub(super) fn stranded_until(&self) -> Option<tokio::time::Instant> {
        self.stranded.as_ref().map(|(until, _)| *until)
    }

    /// Timer H ran out for a stranded caller: the call ends unless it was acknowledged.
    pub(super) fn strand_expired(&mut self) {
        let Some((_, tx)) = self.stranded.take() else { return };
        if self.engine.unacknowledged_at(&tx.edge).is_none() {
            return;
        }
        tracing::warn!(session = %self.id, "the caller never acknowledged (its edge died): ending the call");
        let now = Instant::now();
        match self.engine.leg_state(CALLER) {
            Some(LegState::Answered) => self.engine.handle_sip(SipInput::AckTimeout { tx }, now),
            _ => self.engine.handle_command(Command::Reject { status: 408, reason: "Request Timeout".into() }, now),
        }
    }
}
