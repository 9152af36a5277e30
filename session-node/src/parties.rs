//! Who a call is between, from its engine's state: the caller's and the called address
//! (from the caller's INVITE), and each leg's SIP Call-ID and far end — for the call's
//! detail record and for the API's view of calls in progress.

use cluster::contracts::{CdrLeg, EngineLeg, EngineState};
use session_core::engine::CALLER;
use sip::message::Message;

/// A leg's SIP Call-ID and far end, from its INVITE (received or sent).
pub fn leg_of(state: &EngineLeg) -> CdrLeg {
    let invite = Message::parse_datagram(state.invite.clone()).ok();
    let dialog = state.dialog.as_ref();
    let call_id = dialog.map(|d| d.call_id.clone()).or_else(|| invite.as_ref().and_then(|m| m.call_id().map(str::to_owned)));
    let far = match (state.uas, &invite) {
        (true, Some(m)) => m.from().ok().map(|f| f.uri.to_string()),
        _ => Some(state.target.clone()).filter(|t| !t.is_empty()),
    };
    CdrLeg {
        role: if state.id == CALLER.0 { "caller" } else { "callee" }.into(),
        call_id: call_id.unwrap_or_default(),
        uri: far.or_else(|| dialog.map(|d| d.remote_uri.clone())).unwrap_or_default(),
        answered: dialog.is_some_and(|d| d.confirmed),
        status: state.failure_status,
    }
}

/// The caller's address and the address it called, from its INVITE.
pub fn parties(state: &EngineState) -> (String, String) {
    let caller = state.legs.iter().find(|l| l.id == CALLER.0 && l.uas);
    let Some(invite) = caller.and_then(|l| Message::parse_datagram(l.invite.clone()).ok()) else {
        return Default::default();
    };
    let from = invite.from().map(|f| f.uri.to_string()).unwrap_or_default();
    let to = invite.to().map(|t| t.uri.to_string()).unwrap_or_default();
    (from, to)
}

/// Whether the caller's leg is answered and acknowledged in `state`.
pub fn caller_confirmed(state: &EngineState) -> bool {
    state.legs.iter().find(|l| l.id == CALLER.0).and_then(|l| l.dialog.as_ref()).is_some_and(|d| d.confirmed)
}
