//! The engine's whole state as a value (`contracts::EngineState`), and the engine rebuilt
//! from it: what a session node writes when a durable part of the call changes and what a
//! surviving node resumes the call from. Messages travel as their bytes, dialogs as their
//! fields, instants as Unix milliseconds (the driver says what `now` is on the wall clock).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use contracts::{
    DialogState, EngineLeg, EnginePending, EnginePlan, EngineState, EngineTarget, EngineTimer, LegPhase, Peer as WirePeer,
    ServerTxRef, engine_pending::Kind,
};
use media::sdp::AnchorOrigin;
use sip::dialog::forking::UacDialogs;
use sip::dialog::{Dialog, DialogId, DialogState as SipDialogState};
use sip::message::{HeaderName, Message, NameAddr, Uri};
use sip::transaction::Peer;

use super::clock::{from_wall, to_wall};
use super::flows::{peer_from_contract, peer_to_contract};
use super::io::{LegId, OnTimeout, RingPolicy, Route, ServerTx, Target};
use super::leg::{Inbound, Leg, LegRole, Pending};
use super::{Engine, EngineConfig, FarSdp, Plan, Timer};
use crate::leg::{LegMachine, LegState};

/// Why a stored state cannot be resumed.
#[derive(Debug, thiserror::Error)]
#[error("stored call state unusable: {0}")]
pub struct RestoreError(String);

fn bad(what: impl std::fmt::Display) -> RestoreError {
    RestoreError(what.to_string())
}

impl Engine {
    /// The whole state, with instants read on the wall clock (`now` reads `wall_ms`).
    pub fn snapshot(&self, now: Instant, wall_ms: u64) -> EngineState {
        EngineState {
            session: self.config.session.clone(),
            contact: self.config.contact.clone(),
            sdp_user: self.config.sdp_user.clone(),
            legs: self.legs.iter().map(leg_out).collect(),
            partner: self.partner.iter().map(|(a, b)| (a.0, b.0)).collect(),
            ringing_for: self.ringing_for.iter().map(|(a, b)| (a.0, b.0)).collect(),
            referred_by: self.referred_by.iter().map(|(a, b)| (a.0, b.0)).collect(),
            plan: self.plan.as_ref().map(plan_out),
            media_node: self.media_node.clone().unwrap_or_default(),
            slots: self.slots.iter().map(ToString::to_string).collect(),
            connected: self.connected.iter().map(|(slot, (a, _))| (*slot, a.to_string())).collect(),
            connected_codecs: self.connected.iter().map(|(slot, (_, print))| (*slot, *print)).collect(),
            allocating: self.allocating,
            timers: self
                .timers
                .iter()
                .map(|(t, at)| {
                    let (kind, leg) = match t {
                        Timer::Ring => (0, 0),
                        Timer::Glare(l) => (1, l.0),
                        Timer::Refresh(l) => (2, l.0),
                        Timer::Expire(l) => (3, l.0),
                    };
                    EngineTimer { kind, leg, at_unix_ms: to_wall(*at, now, wall_ms) }
                })
                .collect(),
            best_failure_status: self.best_failure.as_ref().map_or(0, |(s, _)| u32::from(*s)),
            best_failure_reason: self.best_failure.as_ref().map(|(_, r)| r.clone()).unwrap_or_default(),
            next_key: self.next_key,
            ended: self.ended,
            created_at_unix_ms: 0,
        }
    }

    /// The media node holding the call's relay, once allocated (what a node resuming the
    /// call commands and releases).
    pub fn media_node(&self) -> Option<&str> {
        self.media_node.as_deref()
    }

    /// The engine `state` describes, going on at `now` (which reads `wall_ms`). Its next
    /// outputs are the ones the engine it was taken from would have produced.
    pub fn restore(state: EngineState, now: Instant, wall_ms: u64) -> Result<Engine, RestoreError> {
        let config = EngineConfig { session: state.session, contact: state.contact, sdp_user: state.sdp_user };
        let legs = state.legs.into_iter().map(|l| leg_in(l, &config)).collect::<Result<Vec<_>, _>>()?;
        let ids = |m: std::collections::HashMap<u32, u32>| m.into_iter().map(|(a, b)| (LegId(a), LegId(b))).collect();
        let slots = state.slots.iter().map(|s| s.parse::<SocketAddr>().map_err(bad)).collect::<Result<Vec<_>, _>>()?;
        let connected = state.connected.iter().map(|(slot, a)| {
            let print = state.connected_codecs.get(slot).copied().unwrap_or_default();
            Ok((*slot, (a.parse().map_err(bad)?, print)))
        });
        let connected = connected.collect::<Result<_, RestoreError>>()?;
        let mut timers = BTreeMap::new();
        for t in state.timers {
            let timer = match t.kind {
                0 => Timer::Ring,
                1 => Timer::Glare(LegId(t.leg)),
                2 => Timer::Refresh(LegId(t.leg)),
                3 => Timer::Expire(LegId(t.leg)),
                other => return Err(bad(format!("timer kind {other}"))),
            };
            timers.insert(timer, from_wall(t.at_unix_ms, now, wall_ms));
        }
        Ok(Engine {
            local: None,
            replacing: None,
            legs,
            partner: ids(state.partner),
            ringing_for: ids(state.ringing_for),
            referred_by: ids(state.referred_by),
            plan: state.plan.map(plan_in).transpose()?,
            media_node: Some(state.media_node).filter(|n| !n.is_empty()),
            slots,
            connected,
            allocating: state.allocating,
            reanchor: None,
            timers,
            best_failure: (state.best_failure_status > 0)
                .then_some((state.best_failure_status as u16, state.best_failure_reason)),
            work: VecDeque::new(),
            out: VecDeque::new(),
            next_key: state.next_key,
            ended: state.ended,
            now,
            config,
        })
    }
}

// ---- legs ----

const PHASES: [(LegState, LegPhase); 12] = [
    (LegState::Idle, LegPhase::Idle),
    (LegState::Calling, LegPhase::Calling),
    (LegState::Alerting, LegPhase::Alerting),
    (LegState::Incoming, LegPhase::Incoming),
    (LegState::Early, LegPhase::Early),
    (LegState::Answered, LegPhase::Answered),
    (LegState::Confirmed, LegPhase::Confirmed),
    (LegState::Updating, LegPhase::Updating),
    (LegState::Updated, LegPhase::Updated),
    (LegState::Cancelling, LegPhase::Cancelling),
    (LegState::Terminating, LegPhase::Terminating),
    (LegState::Terminated, LegPhase::Terminated),
];

fn phase_of(state: LegState) -> LegPhase {
    PHASES.iter().find(|(s, _)| *s == state).map_or(LegPhase::Idle, |(_, p)| *p)
}

fn state_of(phase: LegPhase) -> LegState {
    PHASES.iter().find(|(_, p)| *p == phase).map_or(LegState::Idle, |(s, _)| *s)
}

fn bytes_of(m: Option<&Message>) -> Bytes {
    m.map(|m| m.as_bytes().clone()).unwrap_or_default()
}

fn message(raw: Bytes) -> Result<Option<Message>, RestoreError> {
    if raw.is_empty() {
        return Ok(None);
    }
    Message::parse_stream_message(raw.clone()).or_else(|_| Message::parse_datagram(raw)).map(Some).map_err(bad)
}

fn tx_out(tx: &ServerTx) -> ServerTxRef {
    ServerTxRef { edge: tx.edge.clone(), id: tx.id }
}

fn tx_in(tx: Option<ServerTxRef>) -> Option<ServerTx> {
    tx.map(|t| ServerTx { edge: t.edge, id: t.id })
}

fn peer_in(p: Option<WirePeer>) -> Result<Peer, RestoreError> {
    let p = p.ok_or_else(|| bad("a leg without a route"))?;
    peer_from_contract(&p).ok_or_else(|| bad(format!("a route to {:?}", p.addr)))
}

fn dialog_out(d: &Dialog) -> DialogState {
    DialogState {
        call_id: d.id.call_id.clone(),
        local_tag: d.id.local_tag.clone(),
        remote_tag: d.id.remote_tag.clone(),
        local_uri: d.local.to_string(),
        remote_uri: d.remote.to_string(),
        remote_target: d.remote_target.to_string(),
        route_set: d.route_set.iter().map(ToString::to_string).collect(),
        local_seq: d.local_seq,
        remote_seq: d.remote_seq.unwrap_or(0),
        has_remote_seq: d.remote_seq.is_some(),
        confirmed: d.state == SipDialogState::Confirmed,
        secure: d.secure,
        ..Default::default()
    }
}

fn dialog_in(d: DialogState) -> Result<Dialog, RestoreError> {
    let name = |s: &str| NameAddr::parse_for(s, HeaderName::From).map_err(bad);
    Ok(Dialog {
        id: DialogId { call_id: d.call_id, local_tag: d.local_tag, remote_tag: d.remote_tag },
        state: if d.confirmed { SipDialogState::Confirmed } else { SipDialogState::Early },
        local_seq: d.local_seq,
        remote_seq: d.has_remote_seq.then_some(d.remote_seq),
        local: name(&d.local_uri)?,
        remote: name(&d.remote_uri)?,
        remote_target: Uri::parse(&d.remote_target).map_err(bad)?,
        route_set: d
            .route_set
            .iter()
            .map(|r| NameAddr::parse_for(r, HeaderName::Route).map_err(bad))
            .collect::<Result<_, _>>()?,
        secure: d.secure,
    })
}

fn pending_out(key: u64, p: &Pending) -> EnginePending {
    let mut out = EnginePending { key, ..Default::default() };
    match p {
        Pending::Invite => out.kind = Kind::Invite as i32,
        Pending::Reinvite(seq) => {
            out.kind = Kind::Reinvite as i32;
            out.cseq = *seq;
        }
        Pending::Bye => out.kind = Kind::Bye as i32,
        Pending::Relayed { tx, request } => {
            out.kind = Kind::Relayed as i32;
            out.tx = Some(tx_out(tx));
            out.request = request.as_bytes().clone();
        }
        Pending::Notify => out.kind = Kind::Notify as i32,
        Pending::Refer => out.kind = Kind::Refer as i32,
        Pending::Prack => out.kind = Kind::Prack as i32,
        Pending::Refresh => out.kind = Kind::Refresh as i32,
        Pending::Info => out.kind = Kind::Info as i32,
    }
    out
}

fn pending_in(p: EnginePending) -> Result<(u64, Pending), RestoreError> {
    let pending = match Kind::try_from(p.kind).map_err(bad)? {
        Kind::Invite => Pending::Invite,
        Kind::Reinvite => Pending::Reinvite(p.cseq),
        Kind::Bye => Pending::Bye,
        Kind::Notify => Pending::Notify,
        Kind::Refer => Pending::Refer,
        Kind::Prack => Pending::Prack,
        Kind::Refresh => Pending::Refresh,
        Kind::Info => Pending::Info,
        Kind::Relayed => Pending::Relayed {
            tx: tx_in(p.tx).ok_or_else(|| bad("a relayed request without its transaction"))?,
            request: Box::new(message(p.request)?.ok_or_else(|| bad("a relayed request without its message"))?),
        },
    };
    Ok((p.key, pending))
}

fn inbound_out(i: Option<&Inbound>) -> (Option<ServerTxRef>, Bytes) {
    match i {
        Some(i) => (Some(tx_out(&i.tx)), i.request.as_bytes().clone()),
        None => (None, Bytes::new()),
    }
}

fn inbound_in(tx: Option<ServerTxRef>, request: Bytes) -> Result<Option<Inbound>, RestoreError> {
    Ok(match (tx_in(tx), message(request)?) {
        (Some(tx), Some(request)) => Some(Inbound { tx, request }),
        _ => None,
    })
}

fn leg_out(l: &Leg) -> EngineLeg {
    let (inbound_tx, inbound) = inbound_out(l.inbound.as_ref());
    let (reinvite_tx, reinvite) = inbound_out(l.reinvite.as_ref());
    EngineLeg {
        id: l.id.0,
        uas: l.role == LegRole::Uas,
        phase: phase_of(l.state()) as i32,
        tag: l.tag.clone(),
        route_edge: l.route.edge.clone(),
        route_peer: Some(peer_to_contract(&l.route.peer)),
        slot: l.slot,
        invite: bytes_of(l.invite.as_ref()),
        invite_tx: l.invite_tx.as_ref().map(tx_out),
        target: l.target.clone(),
        invite_key: l.invite_key.unwrap_or(0),
        early_responses: l.early_responses.iter().map(|m| m.as_bytes().clone()).collect(),
        dialog: l.dialog.as_ref().map(dialog_out),
        remote_sdp: l.remote_sdp.as_ref().map(|s| s.raw.clone()).unwrap_or_default(),
        provisional: bytes_of(l.provisional.as_ref()),
        origin_session_id: l.origin.session_id,
        origin_version: l.origin.version,
        origin_last: l.origin.last_sent().unwrap_or_default().to_owned(),
        pending: l.pending.iter().map(|(k, p)| pending_out(*k, p)).collect(),
        inbound_tx,
        inbound,
        reinvite_tx,
        reinvite,
        ack_seq: l.ack_seq,
        last_ack: bytes_of(l.last_ack.as_ref()),
        failure_status: l.failure.as_ref().map_or(0, |(s, _)| u32::from(*s)),
        failure_reason: l.failure.as_ref().map(|(_, r)| r.clone()).unwrap_or_default(),
        glare: l.glare,
        answer: bytes_of(l.answer.as_ref()),
        refusal: l.refusal.map_or(0, u32::from),
        session_expires: l.session_expires,
        we_refresh: l.we_refresh,
        hangup_after_update: l.hangup_after_update,
    }
}

fn leg_in(l: EngineLeg, config: &EngineConfig) -> Result<Leg, RestoreError> {
    let route = Route { edge: l.route_edge, peer: peer_in(l.route_peer)? };
    let last = Some(l.origin_last).filter(|s| !s.is_empty());
    let origin = AnchorOrigin::resume(&config.sdp_user, l.origin_session_id, l.origin_version, last);
    let role = if l.uas { LegRole::Uas } else { LegRole::Uac };
    let mut leg = Leg::new(LegId(l.id), role, l.tag, route, l.slot, origin);
    leg.machine = LegMachine::resume(state_of(LegPhase::try_from(l.phase).map_err(bad)?));
    leg.invite = message(l.invite)?;
    leg.invite_tx = tx_in(l.invite_tx);
    leg.target = l.target;
    leg.invite_key = (l.invite_key > 0).then_some(l.invite_key);
    leg.early_responses =
        l.early_responses.into_iter().map(message).collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect();
    leg.answer = message(l.answer)?;
    // The early dialogs are rebuilt by replaying the responses that made them.
    if let (LegRole::Uac, Some(invite)) = (role, &leg.invite) {
        let mut early = UacDialogs::new(invite.clone());
        for response in leg.early_responses.iter().chain(leg.answer.iter()) {
            let _ = early.on_response(response);
        }
        leg.early = Some(early);
    }
    leg.dialog = l.dialog.map(dialog_in).transpose()?;
    leg.remote_sdp = match l.remote_sdp.is_empty() {
        true => None,
        false => Some(FarSdp::parse(l.remote_sdp).ok_or_else(|| bad("a stored description that does not parse"))?),
    };
    leg.provisional = message(l.provisional)?;
    leg.pending = l.pending.into_iter().map(pending_in).collect::<Result<_, _>>()?;
    leg.inbound = inbound_in(l.inbound_tx, l.inbound)?;
    leg.reinvite = inbound_in(l.reinvite_tx, l.reinvite)?;
    leg.ack_seq = l.ack_seq;
    leg.last_ack = message(l.last_ack)?;
    leg.failure = (l.failure_status > 0).then_some((l.failure_status as u16, l.failure_reason));
    leg.glare = l.glare;
    leg.refusal = (l.refusal > 0).then_some(l.refusal as u16);
    leg.session_expires = l.session_expires;
    leg.we_refresh = l.we_refresh;
    leg.hangup_after_update = l.hangup_after_update;
    Ok(leg)
}

// ---- the dial plan ----

fn target_out(t: &Target) -> EngineTarget {
    EngineTarget {
        uri: t.uri.clone(),
        route_edge: t.route.as_ref().map(|r| r.edge.clone()).unwrap_or_default(),
        route_peer: t.route.as_ref().map(|r| peer_to_contract(&r.peer)),
    }
}

fn target_in(t: EngineTarget) -> Result<Target, RestoreError> {
    let route = match t.route_peer {
        Some(p) => Some(Route { edge: t.route_edge, peer: peer_in(Some(p))? }),
        None => None,
    };
    Ok(Target { uri: t.uri, route })
}

fn plan_out(p: &Plan) -> EnginePlan {
    let (on_timeout, divert) = match &p.ring.on_timeout {
        OnTimeout::Reject => (0, None),
        OnTimeout::Accept => (1, None),
        OnTimeout::Divert(t) => (2, Some(target_out(t))),
    };
    EnginePlan {
        waiting: p.waiting.iter().map(target_out).collect(),
        parallel: p.parallel,
        ring_timeout_ms: p.ring.timeout.map_or(0, |t| t.as_millis() as u64),
        on_timeout,
        divert,
    }
}

fn plan_in(p: EnginePlan) -> Result<Plan, RestoreError> {
    let on_timeout = match (p.on_timeout, p.divert) {
        (1, _) => OnTimeout::Accept,
        (2, Some(t)) => OnTimeout::Divert(target_in(t)?),
        _ => OnTimeout::Reject,
    };
    let timeout = (p.ring_timeout_ms > 0).then(|| Duration::from_millis(p.ring_timeout_ms));
    Ok(Plan {
        waiting: p.waiting.into_iter().map(target_in).collect::<Result<_, _>>()?,
        parallel: p.parallel,
        ring: RingPolicy { timeout, on_timeout },
    })
}
