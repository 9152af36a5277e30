//! The call-leg state table. Each row: in state `from`, on `input`, do `actions` and move
//! to `to`. An input with no row in the current state is ignored (and logged by the
//! executor). Invariants checked by the tests below: one row per (state, input); every state
//! reachable from `Idle`; `Terminated` reachable from every state and left by nothing; each
//! row into `Terminated` tells the owner exactly once how the leg ended (`Failed`,
//! `Cancelled` or `Ended`); the owner can always hang up; every live state survives a
//! timeout.

use super::LegAction::{self, *};
use super::LegEvent;
use super::LegInput::{self, *};
use super::LegState::{self, *};

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Transition {
    pub from: LegState,
    pub input: LegInput,
    pub to: LegState,
    pub actions: &'static [LegAction],
}

const fn row(from: LegState, input: LegInput, to: LegState, actions: &'static [LegAction]) -> Transition {
    Transition { from, input, to, actions }
}

const RINGING: LegAction = Notify(LegEvent::Ringing);
const ANSWERED: LegAction = Notify(LegEvent::Answered);
const FAILED: LegAction = Notify(LegEvent::Failed);
const ENDED: LegAction = Notify(LegEvent::Ended);

/// Every transition of a call leg.
pub static TRANSITIONS: &[Transition] = &[
    // A call we place (UAC).
    row(Idle, Dial, Calling, &[SendInvite]),
    row(Idle, Hangup, Terminated, &[ENDED]),
    row(Calling, Provisional, Alerting, &[RINGING]),
    row(Calling, Success, Confirmed, &[SendAck, ANSWERED]),
    row(Calling, Failure, Terminated, &[FAILED]),
    row(Calling, Timeout, Terminated, &[FAILED]),
    row(Calling, Cancel, Cancelling, &[SendCancel]),
    row(Calling, Hangup, Cancelling, &[SendCancel]),
    row(Alerting, Provisional, Alerting, &[RINGING]),
    row(Alerting, Success, Confirmed, &[SendAck, ANSWERED]),
    row(Alerting, Failure, Terminated, &[FAILED]),
    row(Alerting, Timeout, Terminated, &[FAILED]),
    row(Alerting, Cancel, Cancelling, &[SendCancel]),
    row(Alerting, Hangup, Cancelling, &[SendCancel]),
    row(Cancelling, Provisional, Cancelling, &[]),
    row(Cancelling, Cancel, Cancelling, &[]),
    row(Cancelling, Hangup, Cancelling, &[]),
    row(Cancelling, Failure, Terminated, &[ENDED]),
    row(Cancelling, Timeout, Terminated, &[ENDED]),
    // The answer crossed our CANCEL: acknowledge it, then end it.
    row(Cancelling, Success, Terminating, &[SendAck, SendBye]),
    // A call we receive (UAS).
    row(Idle, InviteReceived, Incoming, &[Notify(LegEvent::Incoming)]),
    row(Incoming, Ring, Early, &[SendProvisional]),
    row(Incoming, Answer, Answered, &[SendAnswer]),
    row(Incoming, Reject, Terminated, &[SendFailure, ENDED]),
    row(Incoming, Hangup, Terminated, &[SendFailure, ENDED]),
    row(Incoming, CancelReceived, Terminated, &[SendRequestTerminated, Notify(LegEvent::Cancelled)]),
    row(Incoming, Timeout, Terminated, &[ENDED]),
    row(Early, Ring, Early, &[SendProvisional]),
    row(Early, Answer, Answered, &[SendAnswer]),
    row(Early, Reject, Terminated, &[SendFailure, ENDED]),
    row(Early, Hangup, Terminated, &[SendFailure, ENDED]),
    row(Early, CancelReceived, Terminated, &[SendRequestTerminated, Notify(LegEvent::Cancelled)]),
    // A BYE on the early dialog: end the INVITE with 487 and confirm the BYE.
    row(Early, ByeReceived, Terminated, &[SendRequestTerminated, ConfirmBye, ENDED]),
    row(Early, Timeout, Terminated, &[ENDED]),
    row(Answered, Ack, Confirmed, &[Notify(LegEvent::Confirmed)]),
    row(Answered, ByeReceived, Terminated, &[ConfirmBye, ENDED]),
    row(Answered, Hangup, Terminating, &[SendBye]),
    row(Answered, ReinviteReceived, Answered, &[RejectReinvitePending]),
    // Our 2xx was never acknowledged: the call is dead.
    row(Answered, Timeout, Terminating, &[SendBye, Notify(LegEvent::Ending)]),
    // A confirmed dialog, either side.
    row(Confirmed, Hangup, Terminating, &[SendBye]),
    row(Confirmed, ByeReceived, Terminated, &[ConfirmBye, ENDED]),
    row(Confirmed, Update, Updating, &[SendReinvite]),
    row(Confirmed, ReinviteReceived, Updated, &[Notify(LegEvent::UpdateRequested)]),
    row(Confirmed, Ack, Confirmed, &[]),
    row(Confirmed, Timeout, Terminating, &[SendBye, Notify(LegEvent::Ending)]),
    row(Updating, UpdateSuccess, Confirmed, &[SendAck, Notify(LegEvent::UpdateDone)]),
    row(Updating, UpdateFailure, Confirmed, &[Notify(LegEvent::UpdateFailed)]),
    row(Updating, ReinviteReceived, Updating, &[RejectReinvitePending]),
    row(Updating, ByeReceived, Terminated, &[ConfirmBye, ENDED]),
    row(Updating, Hangup, Terminating, &[SendBye]),
    row(Updating, Ack, Updating, &[]),
    row(Updating, Timeout, Terminating, &[SendBye, Notify(LegEvent::Ending)]),
    row(Updated, AcceptUpdate, Confirmed, &[AnswerReinvite]),
    row(Updated, RejectUpdate, Confirmed, &[RejectReinvite]),
    row(Updated, ReinviteReceived, Updated, &[RejectReinvitePending]),
    row(Updated, ByeReceived, Terminated, &[ConfirmBye, ENDED]),
    row(Updated, Hangup, Terminating, &[TerminateReinvite, SendBye]),
    row(Updated, Ack, Updated, &[]),
    row(Updated, Timeout, Terminating, &[TerminateReinvite, SendBye, Notify(LegEvent::Ending)]),
    // Going away.
    row(Terminating, ByeResponse, Terminated, &[ENDED]),
    row(Terminating, Timeout, Terminated, &[ENDED]),
    row(Terminating, ByeReceived, Terminating, &[ConfirmBye]),
    row(Terminating, ReinviteReceived, Terminating, &[RejectReinviteGone]),
    row(Terminating, Hangup, Terminating, &[]),
    row(Terminating, Ack, Terminating, &[]),
    // Our re-INVITE answered after our BYE went (its timer ran out first): a 2xx still
    // gets its ACK (RFC 3261 13.2.2.4).
    row(Terminating, UpdateSuccess, Terminating, &[SendAck]),
    row(Terminating, UpdateFailure, Terminating, &[]),
];

/// The row for `input` in `state`, if any.
pub fn lookup(state: LegState, input: LegInput) -> Option<&'static Transition> {
    TRANSITIONS.iter().find(|t| t.from == state && t.input == input)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use super::*;

    #[test]
    fn one_row_per_state_and_input() {
        let mut seen = HashSet::new();
        for t in TRANSITIONS {
            assert!(seen.insert((t.from, t.input)), "two rows for {:?} + {:?}", t.from, t.input);
        }
    }

    fn reachable_from(start: LegState) -> BTreeSet<LegState> {
        let mut seen = BTreeSet::from([start]);
        let mut frontier = vec![start];
        while let Some(s) = frontier.pop() {
            for t in TRANSITIONS.iter().filter(|t| t.from == s) {
                if seen.insert(t.to) {
                    frontier.push(t.to);
                }
            }
        }
        seen
    }

    #[test]
    fn every_state_is_reachable_and_can_end() {
        let from_idle = reachable_from(Idle);
        for s in LegState::ALL {
            assert!(from_idle.contains(&s), "{s} is unreachable");
            assert!(reachable_from(s).contains(&Terminated), "{s} can never end");
        }
        assert!(TRANSITIONS.iter().all(|t| t.from != Terminated), "nothing leaves Terminated");
    }

    #[test]
    fn each_way_into_terminated_notifies_the_end_exactly_once() {
        let terminal = |a: &&LegAction| matches!(a, Notify(LegEvent::Failed | LegEvent::Cancelled | LegEvent::Ended));
        for t in TRANSITIONS {
            let n = t.actions.iter().filter(terminal).count();
            let expected = usize::from(t.to == Terminated);
            assert_eq!(n, expected, "{:?} + {:?} -> {:?}: {} end notifications", t.from, t.input, t.to, n);
        }
    }

    #[test]
    fn the_owner_can_always_hang_up_and_live_states_survive_timeouts() {
        for s in LegState::ALL.into_iter().filter(|s| !s.is_terminal()) {
            assert!(lookup(s, Hangup).is_some(), "no Hangup in {s}");
            if s != Idle {
                assert!(lookup(s, Timeout).is_some(), "no Timeout in {s}");
            }
        }
    }

    #[test]
    fn requests_are_always_answered() {
        // A received BYE or re-INVITE is answered in every state that can receive one.
        for t in TRANSITIONS {
            if t.input == ByeReceived {
                assert!(t.actions.contains(&ConfirmBye), "BYE unanswered in {:?}", t.from);
            }
            if t.input == ReinviteReceived {
                let answered = t
                    .actions
                    .iter()
                    .any(|a| matches!(a, RejectReinvitePending | RejectReinviteGone | Notify(LegEvent::UpdateRequested)));
                assert!(answered, "re-INVITE unanswered in {:?}", t.from);
            }
        }
    }
}
