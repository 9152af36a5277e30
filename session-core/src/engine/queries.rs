//! What a driver may ask of a call between inputs: whether it is over, its legs' states and
//! partners, the caller's INVITE transaction (stranded if its edge dies), and our INVITEs
//! nothing was heard of (sent again by a node that resumes the call).

use super::leg::Leg;
use super::{CALLER, Engine, LegId, Output, Route, ServerTx};
use crate::leg::LegState;

impl Engine {
    /// Every leg ended.
    pub fn is_over(&self) -> bool {
        self.ended
    }

    /// The state of leg `leg` (for tests and records).
    pub fn leg_state(&self, leg: LegId) -> Option<crate::leg::LegState> {
        self.legs.get(leg.0 as usize).map(Leg::state)
    }

    /// The caller's INVITE transaction when edge `edge` holds it and the caller has not
    /// acknowledged a final answer yet (what is stranded if that edge dies).
    pub fn unacknowledged_at(&self, edge: &str) -> Option<ServerTx> {
        let (tx, _) = self.caller_invite().filter(|(tx, _)| tx.edge == edge)?;
        let waiting = matches!(self.leg(CALLER).state(), LegState::Incoming | LegState::Early | LegState::Answered);
        waiting.then(|| tx.clone())
    }

    /// Our INVITEs nothing was heard of yet (their legs still `Calling`), as they were sent:
    /// a node resuming the call sends them again (the edge ignores a request it has), as
    /// the dead owner may have recorded one and died before it left.
    pub fn unheard_invites(&self) -> Vec<Output> {
        let calling = self.legs.iter().filter(|l| l.state() == LegState::Calling);
        calling
            .filter_map(|l| Some(Output::Send { key: l.invite_key?, request: l.invite.clone()?, route: l.route.clone() }))
            .collect()
    }

    /// The caller's INVITE transaction and where its messages go.
    pub fn caller_invite(&self) -> Option<(&ServerTx, &Route)> {
        let caller = self.legs.first()?;
        Some((caller.invite_tx.as_ref()?, &caller.route))
    }

    /// How many legs the call has had.
    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }

    /// The leg `leg` talks to, if any.
    pub fn partner(&self, leg: LegId) -> Option<LegId> {
        self.partner.get(&leg).copied()
    }
}
