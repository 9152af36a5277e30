//! A leg's current state and its transition history (for debugging and call records).

use super::table::lookup;
use super::{LegAction, LegInput, LegState};

/// One transition taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub from: LegState,
    pub input: LegInput,
    pub to: LegState,
}

/// Runs the table for one leg.
#[derive(Debug, Clone)]
pub struct LegMachine {
    state: LegState,
    history: Vec<Step>,
}

impl Default for LegMachine {
    fn default() -> Self {
        LegMachine::new()
    }
}

impl LegMachine {
    pub fn new() -> Self {
        LegMachine::resume(LegState::Idle)
    }

    /// A leg continued from a stored state (after a takeover).
    pub fn resume(state: LegState) -> Self {
        LegMachine { state, history: Vec::new() }
    }

    pub fn state(&self) -> LegState {
        self.state
    }

    /// Applies `input`: the actions to carry out, or `None` when the table has no row for
    /// it in the current state (the input is ignored).
    pub fn handle(&mut self, input: LegInput) -> Option<&'static [LegAction]> {
        let t = lookup(self.state, input)?;
        self.history.push(Step { from: self.state, input, to: t.to });
        self.state = t.to;
        Some(t.actions)
    }

    pub fn history(&self) -> &[Step] {
        &self.history
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leg::{LegAction::*, LegEvent, LegInput::*, LegState::*};

    fn run(inputs: &[LegInput]) -> (LegMachine, Vec<LegAction>) {
        let mut m = LegMachine::new();
        let mut actions = Vec::new();
        for i in inputs {
            actions.extend(m.handle(*i).unwrap_or(&[]));
        }
        (m, actions)
    }

    #[test]
    fn outgoing_call_answered_then_hung_up() {
        let (m, actions) = run(&[Dial, Provisional, Success, Hangup, ByeResponse]);
        assert_eq!(m.state(), Terminated);
        assert_eq!(
            actions,
            [SendInvite, Notify(LegEvent::Ringing), SendAck, Notify(LegEvent::Answered), SendBye, Notify(LegEvent::Ended)]
        );
        assert_eq!(m.history().len(), 5);
    }

    #[test]
    fn incoming_call_cancelled_while_ringing() {
        let (m, actions) = run(&[InviteReceived, Ring, CancelReceived]);
        assert_eq!(m.state(), Terminated);
        assert_eq!(actions, [Notify(LegEvent::Incoming), SendProvisional, SendRequestTerminated, Notify(LegEvent::Cancelled)]);
    }

    #[test]
    fn hold_from_the_far_end_and_glare() {
        let (mut m, _) = run(&[InviteReceived, Answer, Ack]);
        assert_eq!(m.handle(Update), Some(&[SendReinvite][..]));
        assert_eq!(m.handle(ReinviteReceived), Some(&[RejectReinvitePending][..]));
        assert_eq!(m.handle(UpdateSuccess), Some(&[SendAck, Notify(LegEvent::UpdateDone)][..]));
        assert_eq!(m.handle(ReinviteReceived), Some(&[Notify(LegEvent::UpdateRequested)][..]));
        assert_eq!(m.handle(AcceptUpdate), Some(&[AnswerReinvite][..]));
        assert_eq!(m.state(), Confirmed);
    }

    #[test]
    fn inputs_without_a_row_are_ignored() {
        let mut m = LegMachine::new();
        assert_eq!(m.handle(Success), None);
        assert_eq!(m.state(), Idle);
        assert!(m.history().is_empty());
    }
}
