//! What the registry keeps of a call (its `CallState`), written before each transition's
//! actions are carried out. A write refused because another node took the session over
//! ends this node's part in it.

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

impl Call {
    pub(super) fn call_state(&self) -> CallState {
        let body =
            |m: Option<&sip::message::Message>| m.map(|m| String::from_utf8_lossy(m.body()).into_owned()).unwrap_or_default();
        CallState {
            state: format!("{}/{}", self.machine.state(Side::Caller), self.machine.state(Side::Callee)),
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

    pub(super) async fn persist(&mut self) {
        let state = self.call_state();
        let Some(owned) = self.owned.as_mut() else { return };
        *owned.call_mut() = state;
        match self.ctx.store.save(owned).await {
            Ok(()) => {}
            Err(e @ OwnershipError::Fenced { .. }) => {
                tracing::warn!(session = %self.id, error = %e, "fenced: another node owns the session");
                self.owned = None;
            }
            Err(e) => tracing::warn!(session = %self.id, error = %e, "session record not saved"),
        }
    }
}
