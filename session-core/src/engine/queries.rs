//! What a driver may ask of a call between inputs: whether it is over, its legs' states and
//! partners, INVITEs and targets, the caller's INVITE transaction (stranded if its edge
//! dies), and our INVITEs nothing was heard of (sent again by a node that resumes the call).

use super::leg::Leg;
use super::{CALLER, Engine, LegId, Output, Route, ServerTx};
use crate::leg::LegState;

/// A leg, as a call's record tells it ([`Engine::leg_summaries`]).
#[derive(Debug, Clone, Copy)]
pub struct LegSummary<'a> {
    pub id: LegId,
    /// The caller's leg (a call to us), not one we placed.
    pub uas: bool,
    /// The caller's INVITE as it came, or ours as sent.
    pub invite: Option<&'a sip::message::Message>,
    /// Whom a leg we placed calls.
    pub target: &'a str,
    /// Its dialog was confirmed (answered and acknowledged).
    pub answered: bool,
    /// The status it failed with, if it did.
    pub failure: Option<u16>,
    /// Its dialog's Call-ID, once it has one.
    pub call_id: Option<&'a str>,
}

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

    /// Leg `leg`'s INVITE: the caller's as it came, ours as we sent it.
    pub fn leg_invite(&self, leg: LegId) -> Option<&sip::message::Message> {
        self.legs.get(leg.0 as usize)?.invite.as_ref()
    }

    /// Whom leg `leg` calls (empty for the caller's leg).
    pub fn leg_target(&self, leg: LegId) -> Option<&str> {
        self.legs.get(leg.0 as usize).map(|l| l.target.as_str())
    }

    /// Each leg as a call's record tells it, without copying the engine's state.
    pub fn leg_summaries(&self) -> impl Iterator<Item = LegSummary<'_>> {
        self.legs.iter().map(|l| LegSummary {
            id: l.id,
            uas: l.role == super::leg::LegRole::Uas,
            invite: l.invite.as_ref(),
            target: &l.target,
            answered: l.dialog.as_ref().is_some_and(|d| d.state == sip::dialog::DialogState::Confirmed),
            failure: l.failure.as_ref().map(|(status, _)| *status),
            call_id: l.dialog.as_ref().map(|d| d.id.call_id.as_str()),
        })
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
