//! A caller stranded by its edge's death: that edge held the caller's INVITE transaction —
//! its responses, the retransmissions of the 2xx, the ACK timer — and died before the
//! caller acknowledged a final answer. The responses still to come (the callee's ringing,
//! its answer) go to the caller outside any transaction, through any edge on the same SIP
//! address; a 2xx the dead edge may never have sent goes again the same way, retransmitted
//! as RFC 3261 (13.3.1.4) has the UAS core do, until the caller's ACK comes back through
//! any edge. If none has come within Timer H, nobody is left to say so but the call itself:
//! it ends as if the ACK had timed out (the callee hung up, the relay released) rather than
//! waiting for ever.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::contracts::SendStateless;
use cluster::contracts::edge_command::Command as EdgeCommand;
use cluster::subjects;
use session_core::engine::{CALLER, Command, ServerTx, SipInput, peer_to_contract};
use session_core::leg::LegState;

use super::Call;

/// RFC 3261 Timer H (64 × T1): how long a 2xx waits for its ACK.
pub(super) const TIMER_H: Duration = Duration::from_secs(32);
/// RFC 3261 T1 and T2: a 2xx goes again after T1, then at intervals doubling up to T2.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

/// What a call keeps for the day its caller's edge dies.
#[derive(Default)]
pub(super) struct Stranded {
    /// The 2xx the call gave the caller's INVITE (kept while the caller's leg lives).
    answer: Option<Bytes>,
    /// Since the edge died: the caller's transaction and the end of its wait for an ACK.
    wait: Option<(tokio::time::Instant, ServerTx)>,
    /// When the 2xx goes again, and the interval after that.
    again: Option<(tokio::time::Instant, Duration)>,
}

impl Call {
    /// `command` is going out: a 2xx to the caller's INVITE is kept.
    pub(super) fn remember_answer(&mut self, command: &EdgeCommand) {
        if let (EdgeCommand::Respond(r), Some((tx, _))) = (command, self.engine.caller_invite())
            && tx.id == r.tx
            && r.response.starts_with(b"SIP/2.0 2")
        {
            self.stranded.answer = Some(r.response.clone());
        }
    }

    /// Edge `edge` died: the caller's transaction there, if not acknowledged, is watched,
    /// and its 2xx, if it had one, sent again at once.
    pub(super) fn strand(&mut self, edge: &str) {
        let Some(tx) = self.engine.unacknowledged_at(edge) else { return };
        tracing::info!(session = %self.id, %edge, "the caller's transaction died with its edge: its ACK may come elsewhere");
        let now = tokio::time::Instant::now();
        self.stranded.wait = Some((now + TIMER_H, tx));
        let answered = self.engine.leg_state(CALLER) == Some(LegState::Answered);
        self.stranded.again = (answered && self.stranded.answer.is_some()).then_some((now, T1));
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

    /// When a stranded caller needs looking at again (never without one).
    pub(super) fn stranded_until(&self) -> Option<tokio::time::Instant> {
        let (until, _) = self.stranded.wait.as_ref()?;
        Some(self.stranded.again.map_or(*until, |(at, _)| at.min(*until)))
    }

    /// A stranded caller's time came: nothing when it acknowledged since; its 2xx again
    /// while Timer H runs; the call's end when it has run out.
    pub(super) async fn strand_tick(&mut self) {
        let Some((until, tx)) = self.stranded.wait.clone() else { return };
        if self.engine.unacknowledged_at(&tx.edge).is_none() {
            self.stranded = Stranded::default();
            return;
        }
        let now = tokio::time::Instant::now();
        if now < until {
            let (Some((at, interval)), Some(answer), Some((_, route))) =
                (self.stranded.again, self.stranded.answer.clone(), self.engine.caller_invite())
            else {
                return;
            };
            if at <= now {
                tracing::info!(session = %self.id, "the caller's 2xx sent again through another edge");
                let destination = Some(peer_to_contract(&route.peer));
                let command = EdgeCommand::SendStateless(SendStateless { message: answer, destination });
                self.publish(&subjects::any_edge_commands(), command).await;
                self.stranded.again = Some((now + interval, (interval * 2).min(T2)));
            }
            return;
        }
        self.stranded = Stranded::default();
        tracing::warn!(session = %self.id, "the caller never acknowledged (its edge died): ending the call");
        let now = Instant::now();
        match self.engine.leg_state(CALLER) {
            Some(LegState::Answered) => self.engine.handle_sip(SipInput::AckTimeout { tx }, now),
            _ => self.engine.handle_command(Command::Reject { status: 408, reason: "Request Timeout".into() }, now),
        }
    }
}
