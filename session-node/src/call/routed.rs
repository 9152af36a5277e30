//! What a routed call gives its engine: the caller's INVITE, transaction and route, and
//! the dial plan to the route's targets.

use std::time::Duration;

use cluster::contracts::{RoutedCall, TimeoutAction};
use cluster::subjects::SessionId;
use session_core::engine::{Command, EngineConfig, OnTimeout, RingPolicy, Route, ServerTx, Target, peer_from_contract};
use sip::endpoint::peer_for_uri;
use sip::message::Uri;
use sip::transaction::TransportKind;

use super::wire;

/// The engine's dial plan for a routed call: every target at once (a registered user's
/// devices ring together), through the edge the router chose, with the route's ring policy.
pub(super) fn dial_plan(routed: &RoutedCall, caller_edge: &str) -> Command {
    let edge = if routed.target_edge_id.is_empty() { caller_edge.to_owned() } else { routed.target_edge_id.clone() };
    let flow = routed.target_flow.as_ref().and_then(peer_from_contract);
    let targets = routed
        .targets
        .iter()
        .enumerate()
        .map(|(i, uri)| {
            // The target's own address first (a registered Contact is where the user is
            // reached); the flow its registration came over when it cannot be resolved.
            let resolved = Uri::parse(uri).ok().and_then(|u| peer_for_uri(&u, TransportKind::Udp));
            let peer = resolved.or(if i == 0 { flow } else { None });
            Target { uri: uri.clone(), route: peer.map(|peer| Route { edge: edge.clone(), peer }) }
        })
        .collect();
    let on_timeout = match TimeoutAction::try_from(routed.on_timeout).unwrap_or(TimeoutAction::Reject) {
        TimeoutAction::Accept => OnTimeout::Accept,
        TimeoutAction::Voicemail if !routed.voicemail.is_empty() => {
            OnTimeout::Divert(Target { uri: routed.voicemail.clone(), route: None })
        }
        _ => OnTimeout::Reject,
    };
    let timeout = (routed.ring_timeout_secs > 0).then(|| Duration::from_secs(u64::from(routed.ring_timeout_secs)));
    Command::Dial { targets, parallel: true, ring: RingPolicy { timeout, on_timeout } }
}

/// What a routed call's INVITE gives its engine.
pub(super) struct Caller {
    pub id: SessionId,
    pub invite: sip::message::Message,
    pub route: Route,
    pub config: EngineConfig,
    /// The INVITE's server transaction, on the edge it came through.
    pub tx: ServerTx,
}

pub(super) fn caller(routed: &RoutedCall) -> Option<Caller> {
    let incoming = routed.call.as_ref()?;
    let id = SessionId::new(incoming.session_id.clone()).ok()?;
    let invite = wire::parse(incoming.invite.clone())?;
    let route = Route { edge: incoming.edge_id.clone(), peer: peer_from_contract(incoming.source.as_ref()?)? };
    let contact = incoming.edge_uri.replacen("sip:", &format!("sip:{id}@"), 1);
    let config = EngineConfig { session: id.to_string(), contact, sdp_user: "callmesh".into() };
    let tx = ServerTx { edge: incoming.edge_id.clone(), id: incoming.edge_tx };
    Some(Caller { id, invite, route, config, tx })
}
