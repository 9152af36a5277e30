//! What the registry keeps of a call (its `CallState`): what another node needs to take
//! the call over. It is created once the call has its media, then written before a
//! transition's actions are carried out whenever its durable part changed: the phase
//! (setup, answered), the dialogs once answered, the SDP, the media. Steps that only matter
//! while a call is being set up or torn down (ringing, CSeq numbers moving, BYE) are not
//! written: a call that loses its node then is lost with it, and the record ends with the
//! call. A plain call costs three registry operations (create, answered, delete) instead of
//! one per transition. A write refused because another node took the session over ends this node's part
//! in it.

use cluster::contracts::{CallState, DialogState, MediaLeg};
use cluster::ownership::OwnershipError;
use session_core::b2bua::Side;
use sip::dialog::Dialog;

use super::Call;

fn dialog_state(dialog: Option<&Dialog>, edge: &str, peer: Option<&cluster::contracts::Peer>) -> Option<DialogState> {
    let d = dialog?;
    Some(DialogState {
        call_id: d.id.call_id.clone(),
        local_tag: d.id.local_tag.clone(),
        remote_tag: d.id.remote_tag.clone(),
        local_uri: d.local.to_string(),
        remote_uri: d.remote.to_string(),
        remote_target: d.remote_target.to_string(),
        route_set: d.route_set.iter().map(|r| r.to_string()).collect(),
        local_seq: d.local_seq,
        remote_seq: d.remote_seq.unwrap_or(0),
        edge_id: edge.to_owned(),
        peer: peer.cloned(),
    })
}

const SETUP: &str = "setup";
const ANSWERED: &str = "answered";
const ENDING: &str = "ending";

/// The phase of a call from its legs' states (`caller/callee`, as recorded): answered
/// once the callee's dialog is confirmed and the caller has been sent the 2xx (its ACK may
/// still be on the way: a node taking over then has both dialogs).
fn phase(states: &str) -> &'static str {
    let (caller, callee) = states.split_once('/').unwrap_or((states, ""));
    let up = |s: &str| matches!(s, "Confirmed" | "Updating" | "Updated");
    if [caller, callee].iter().any(|s| s.starts_with("Terminat") || *s == "Cancelling") {
        ENDING
    } else if up(callee) && (up(caller) || caller == "Answered") {
        ANSWERED
    } else {
        SETUP
    }
}

/// The part of a call's state whose change is worth a write: its phase, dialogs once
/// answered (without CSeq numbers: a node taking over moves past them), SDP and media.
fn durable(state: &CallState) -> CallState {
    let mut part = state.clone();
    part.state = phase(&state.state).to_owned();
    if part.state != ANSWERED {
        part.caller = None;
        part.callee = None;
    }
    for dialog in [&mut part.caller, &mut part.callee].into_iter().flatten() {
        dialog.local_seq = 0;
        dialog.remote_seq = 0;
    }
    part
}

impl Call {
    /// Both legs' states, `caller/callee`.
    fn leg_states(&self) -> String {
        format!("{}/{}", self.machine.state(Side::Caller), self.machine.state(Side::Callee))
    }

    pub(super) fn call_state(&self) -> CallState {
        let body =
            |m: Option<&sip::message::Message>| m.map(|m| String::from_utf8_lossy(m.body()).into_owned()).unwrap_or_default();
        CallState {
            state: self.leg_states(),
            caller: dialog_state(self.caller.dialog.as_ref(), self.caller.edge.as_str(), Some(&self.caller.flow)),
            callee: dialog_state(self.callee.dialog.as_ref(), self.callee.edge.as_str(), self.callee.flow.as_ref()),
            caller_sdp: body(Some(&self.caller.invite)),
            callee_sdp: body(self.callee.answer.as_ref()),
            media_node_id: self.media.as_ref().map(|m| m.node.to_string()).unwrap_or_default(),
            media_legs: self
                .media
                .iter()
                .flat_map(|m| m.legs.iter().enumerate().map(|(i, a)| MediaLeg { leg: i as u32, rtp_addr: a.to_string() }))
                .collect(),
            created_at_unix_ms: self.created_ms,
            answered_at_unix_ms: self.answered_ms,
        }
    }

    /// Creates the session record, claiming the session; false (and logged) if it cannot be.
    pub(super) async fn create_record(&mut self) -> bool {
        let state = self.call_state();
        match self.ctx.store.create(&self.id, state.clone()).await {
            Ok(owned) => {
                self.owned = Some(owned);
                self.saved = Some(durable(&state));
                true
            }
            Err(e) => {
                tracing::warn!(session = %self.id, error = %e, "session not recorded");
                false
            }
        }
    }

    pub(super) async fn persist(&mut self) {
        if self.owned.is_none() {
            return;
        }
        // Most transitions change nothing durable: decide on the phase before building the
        // whole state (which prints every URI).
        let now = phase(&self.leg_states());
        let was = self.saved.as_ref().map(|s| s.state.as_str());
        if now == ENDING || (now == SETUP && was == Some(SETUP)) {
            return;
        }
        let state = self.call_state();
        let part = durable(&state);
        if part.state == ENDING || self.saved.as_ref() == Some(&part) {
            return;
        }
        let Some(owned) = self.owned.as_mut() else { return };
        *owned.call_mut() = state;
        match self.ctx.store.save(owned).await {
            Ok(()) => self.saved = Some(part),
            Err(e @ OwnershipError::Fenced { .. }) => {
                tracing::warn!(session = %self.id, error = %e, "fenced: another node owns the session");
                self.owned = None;
            }
            Err(e) => tracing::warn!(session = %self.id, error = %e, "session record not saved"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_both_legs() {
        assert_eq!(phase("Incoming/Idle"), SETUP);
        assert_eq!(phase("Early/Alerting"), SETUP);
        assert_eq!(phase("Answered/Alerting"), SETUP);
        assert_eq!(phase("Answered/Confirmed"), ANSWERED, "both dialogs exist; the caller's ACK is on its way");
        assert_eq!(phase("Confirmed/Confirmed"), ANSWERED);
        assert_eq!(phase("Updated/Updating"), ANSWERED);
        assert_eq!(phase("Confirmed/Terminating"), ENDING);
        assert_eq!(phase("Incoming/Cancelling"), ENDING);
    }

    #[test]
    fn the_durable_part_ignores_setup_dialogs_and_moving_cseqs() {
        let dialog = |seq| DialogState { call_id: "c".into(), local_seq: seq, remote_seq: seq, ..Default::default() };
        let ringing = CallState { state: "Early/Alerting".into(), callee: Some(dialog(1)), ..Default::default() };
        let trying = CallState { state: "Incoming/Calling".into(), ..Default::default() };
        assert_eq!(durable(&ringing), durable(&trying), "an early dialog is not worth a write");
        let up = CallState {
            state: "Confirmed/Confirmed".into(),
            caller: Some(dialog(1)),
            callee: Some(dialog(1)),
            ..Default::default()
        };
        let later = CallState { caller: Some(dialog(7)), ..up.clone() };
        assert_eq!(durable(&up), durable(&later), "a CSeq moving is not worth a write");
        assert_ne!(durable(&up), durable(&trying));
        let held = CallState { caller_sdp: "a=sendonly".into(), ..up.clone() };
        assert_ne!(durable(&up), durable(&held), "an SDP change is written");
    }
}
