//! A back-to-back call: the caller's leg (we are its UAS) and the callee's leg (we are its
//! UAC), joined by the bridge table: what one leg reports becomes an input to the other.
//! [`B2bCall::handle`] runs both leg tables and the bridge until nothing is left to do, and
//! returns every action for the executor, in order.

use crate::leg::{LegAction, LegEvent, LegInput, LegMachine, LegState, Step};

/// Which leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Caller,
    Callee,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Caller => Side::Callee,
            Side::Callee => Side::Caller,
        }
    }
}

/// One row of the bridge: when `from` reports `event`, give the other leg `input`.
#[derive(Debug, Clone, Copy)]
pub struct Bridge {
    pub from: Side,
    pub event: LegEvent,
    pub input: LegInput,
}

const fn bridge(from: Side, event: LegEvent, input: LegInput) -> Bridge {
    Bridge { from, event, input }
}

/// Every bridge rule. Events not listed concern only their own leg.
pub static BRIDGE: &[Bridge] = &[
    bridge(Side::Callee, LegEvent::Ringing, LegInput::Ring),
    bridge(Side::Callee, LegEvent::Answered, LegInput::Answer),
    bridge(Side::Callee, LegEvent::Failed, LegInput::Reject),
    bridge(Side::Caller, LegEvent::Cancelled, LegInput::Cancel),
    bridge(Side::Caller, LegEvent::Ending, LegInput::Hangup),
    bridge(Side::Caller, LegEvent::Ended, LegInput::Hangup),
    bridge(Side::Callee, LegEvent::Ending, LegInput::Hangup),
    bridge(Side::Callee, LegEvent::Ended, LegInput::Hangup),
    bridge(Side::Caller, LegEvent::UpdateRequested, LegInput::Update),
    bridge(Side::Callee, LegEvent::UpdateRequested, LegInput::Update),
    bridge(Side::Callee, LegEvent::UpdateDone, LegInput::AcceptUpdate),
    bridge(Side::Callee, LegEvent::UpdateFailed, LegInput::RejectUpdate),
    bridge(Side::Caller, LegEvent::UpdateDone, LegInput::AcceptUpdate),
    bridge(Side::Caller, LegEvent::UpdateFailed, LegInput::RejectUpdate),
];

/// An action for one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    pub side: Side,
    pub action: LegAction,
}

/// The two legs of a call.
#[derive(Debug, Clone, Default)]
pub struct B2bCall {
    caller: LegMachine,
    callee: LegMachine,
}

/// Inputs processed for one outside input, at most (a safety bound: the bridge cannot
/// loop, but a table edit could make it).
const MAX_STEPS: usize = 32;

impl B2bCall {
    pub fn new() -> Self {
        B2bCall::default()
    }

    /// Continues a call from stored leg states.
    pub fn resume(caller: LegState, callee: LegState) -> Self {
        B2bCall { caller: LegMachine::resume(caller), callee: LegMachine::resume(callee) }
    }

    fn leg(&mut self, side: Side) -> &mut LegMachine {
        match side {
            Side::Caller => &mut self.caller,
            Side::Callee => &mut self.callee,
        }
    }

    pub fn state(&self, side: Side) -> LegState {
        match side {
            Side::Caller => self.caller.state(),
            Side::Callee => self.callee.state(),
        }
    }

    /// Both legs ended.
    pub fn is_over(&self) -> bool {
        self.caller.state().is_terminal() && self.callee.state().is_terminal()
    }

    /// Gives `input` to leg `side`, follows the bridge, and returns every action.
    pub fn handle(&mut self, side: Side, input: LegInput) -> Vec<Effect> {
        let mut queue = std::collections::VecDeque::from([(side, input)]);
        let mut effects = Vec::new();
        let mut steps = 0;
        while let Some((side, input)) = queue.pop_front() {
            steps += 1;
            if steps > MAX_STEPS {
                break;
            }
            let Some(actions) = self.leg(side).handle(input) else { continue };
            for action in actions {
                effects.push(Effect { side, action: *action });
                if let LegAction::Notify(event) = action {
                    for b in BRIDGE.iter().filter(|b| b.from == side && b.event == *event) {
                        queue.push_back((side.other(), b.input));
                    }
                }
            }
        }
        effects
    }

    /// Starts a new callee leg (the old one is being cancelled, and its responses are no
    /// longer this leg's): how a call is sent on to another target, e.g. voicemail.
    pub fn restart_callee(&mut self) {
        self.callee = LegMachine::new();
    }

    /// The transitions each leg took.
    pub fn history(&self, side: Side) -> &[Step] {
        match side {
            Side::Caller => self.caller.history(),
            Side::Callee => self.callee.history(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leg::LegAction::*;
    use crate::leg::LegInput::*;
    use Side::*;

    fn started() -> B2bCall {
        let mut call = B2bCall::new();
        call.handle(Caller, InviteReceived);
        call.handle(Callee, Dial);
        call
    }

    fn actions(effects: &[Effect], side: Side) -> Vec<LegAction> {
        effects.iter().filter(|e| e.side == side).map(|e| e.action).filter(|a| !matches!(a, Notify(_))).collect()
    }

    #[test]
    fn answered_call_hung_up_by_the_caller() {
        let mut call = started();
        let e = call.handle(Callee, Provisional);
        assert_eq!(actions(&e, Caller), [SendProvisional]);
        let e = call.handle(Callee, Success);
        assert_eq!((actions(&e, Callee), actions(&e, Caller)), (vec![SendAck], vec![SendAnswer]));
        call.handle(Caller, Ack);
        let e = call.handle(Caller, ByeReceived);
        assert_eq!((actions(&e, Caller), actions(&e, Callee)), (vec![ConfirmBye], vec![SendBye]));
        assert!(!call.is_over());
        call.handle(Callee, ByeResponse);
        assert!(call.is_over());
    }

    #[test]
    fn callee_hangs_up() {
        let mut call = started();
        call.handle(Callee, Success);
        call.handle(Caller, Ack);
        let e = call.handle(Callee, ByeReceived);
        assert_eq!((actions(&e, Callee), actions(&e, Caller)), (vec![ConfirmBye], vec![SendBye]));
        call.handle(Caller, ByeResponse);
        assert!(call.is_over());
    }

    #[test]
    fn busy_callee_is_relayed_and_cancel_reaches_the_callee() {
        let mut call = started();
        let e = call.handle(Callee, Failure);
        assert_eq!(actions(&e, Caller), [SendFailure]);
        assert!(call.is_over());

        let mut call = started();
        call.handle(Callee, Provisional);
        let e = call.handle(Caller, CancelReceived);
        assert_eq!((actions(&e, Caller), actions(&e, Callee)), (vec![SendRequestTerminated], vec![SendCancel]));
        call.handle(Callee, Failure);
        assert!(call.is_over());
    }

    #[test]
    fn reinvite_from_the_caller_is_carried_across_and_answered() {
        let mut call = started();
        call.handle(Callee, Success);
        call.handle(Caller, Ack);
        let e = call.handle(Caller, ReinviteReceived);
        assert_eq!(actions(&e, Callee), [SendReinvite]);
        let e = call.handle(Callee, UpdateSuccess);
        assert_eq!((actions(&e, Callee), actions(&e, Caller)), (vec![SendAck], vec![AnswerReinvite]));
        assert_eq!((call.state(Caller), call.state(Callee)), (LegState::Confirmed, LegState::Confirmed));
    }

    #[test]
    fn a_missing_ack_ends_both_legs() {
        let mut call = started();
        call.handle(Callee, Success);
        let e = call.handle(Caller, Timeout);
        assert_eq!((actions(&e, Caller), actions(&e, Callee)), (vec![SendBye], vec![SendBye]));
        call.handle(Caller, ByeResponse);
        call.handle(Callee, ByeResponse);
        assert!(call.is_over());
    }

    #[test]
    fn every_bridge_input_exists_in_the_leg_table() {
        for b in BRIDGE {
            assert!(
                crate::leg::table::TRANSITIONS.iter().any(|t| t.input == b.input),
                "bridge input {:?} is never handled",
                b.input
            );
        }
    }
}
