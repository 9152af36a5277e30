//! An agent's leg for a queue caller: a call this session node places to the agent, whose
//! media is a seat in the caller's room — muted and deaf while it rings, so the caller
//! still hears the queue's music, opened when the routers put the two through. What
//! becomes of it (answered, declined, ended) goes to the caller's call. Once put through
//! it is recorded (kind "agent"), so that when its node dies the node that takes it over
//! goes on with it; the two calls then tell each other their end over the bus
//! (`AcdInstruction.cancel` on the other's ACD subject), as they may be on two nodes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::bus::typed::{self, TypedSubscription};
use cluster::contracts::{self, AcdCancel, AcdInstruction, AcdOffer, AgentLegRecord, EdgeEvent, MediaEvent, acd_instruction};
use cluster::subjects::{self, SessionId};
use session_core::engine::{Engine, EngineConfig, LocalEnd, Outgoing, Route, peer_from_contract};
use sip::endpoint::peer_for_uri;
use sip::message::Uri;
use sip::transaction::TransportKind;
use tokio::sync::mpsc;

use super::queue::{Note, Role, ToAgent};
use super::{Call, conference};
use crate::node::Ctx;

/// An agent's leg for a caller.
pub(crate) struct AgentLeg {
    pub(super) agent: String,
    /// The caller's call, on this node (`None`: taken over, it may be on another).
    pub(super) caller: Option<mpsc::UnboundedSender<(String, Note)>>,
    pub(super) caller_session: String,
    pub(super) commands: Option<mpsc::UnboundedReceiver<ToAgent>>,
    /// What the caller's call tells a leg taken over (its end).
    pub(super) instructions: Option<TypedSubscription<AcdInstruction>>,
    pub(super) answered: bool,
    pub(super) bridged: bool,
    pub(super) told: bool,
}

impl AgentLeg {
    /// What the record keeps of the leg.
    pub(super) fn to_record(&self) -> AgentLegRecord {
        AgentLegRecord { agent: self.agent.clone(), caller_session: self.caller_session.clone() }
    }

    /// A leg put through, taken over from its record: its caller is told over the bus.
    pub(super) fn from_record(r: &AgentLegRecord) -> AgentLeg {
        AgentLeg {
            agent: r.agent.clone(),
            caller: None,
            caller_session: r.caller_session.clone(),
            commands: None,
            instructions: None,
            answered: true,
            bridged: true,
            told: false,
        }
    }

    /// Tells the caller's call `note`: on this node, or over the bus when the leg was taken
    /// over (only its end: `Cancel` of this agent).
    pub(super) async fn tell(&self, ctx: &Ctx, note: Note) {
        if let Some(caller) = &self.caller {
            let _ = caller.send((self.agent.clone(), note));
            return;
        }
        if let (Note::Ended, Ok(caller)) = (note, SessionId::new(self.caller_session.clone())) {
            cancel(ctx, &caller, &self.agent).await;
        }
    }
}

/// Tells the session `to` (a queue caller, or an agent's leg) that the queue call with
/// `agent` is over: `AcdInstruction.cancel`, as the routers send it.
pub(super) async fn cancel(ctx: &Ctx, to: &SessionId, agent: &str) {
    let instruction = AcdInstruction {
        meta: contracts::meta(ctx.node.as_str()),
        session_id: to.to_string(),
        instruction: Some(acd_instruction::Instruction::Cancel(AcdCancel { agent: agent.to_owned() })),
    };
    if let Err(e) = typed::publish(ctx.bus.as_ref(), &subjects::session_acd(to), &instruction).await {
        tracing::warn!(session = %to, error = %e, "the other side of a queue call not told of its end");
    }
}

/// How an agent's leg goes out: the edge (when the offer names none), our URI there, and
/// who it says is calling.
pub(super) struct Via {
    pub(super) edge_id: String,
    pub(super) edge_uri: String,
    pub(super) identity: String,
}

/// Starts a leg to `offer`'s agent for the caller `caller_session`, seated (muted, deaf) in
/// the caller's room; its commands' sender and its session.
pub(super) async fn spawn_agent_leg(
    ctx: Arc<Ctx>,
    offer: AcdOffer,
    caller_session: &SessionId,
    via: Via,
    caller: mpsc::UnboundedSender<(String, Note)>,
) -> Result<(mpsc::UnboundedSender<ToAgent>, SessionId), String> {
    let room = &super::queue::room_of(caller_session);
    let target = offer.contacts.first().and_then(|c| Uri::parse(c).ok()).ok_or("no contact to ring")?;
    let flow = offer.flow.as_ref().and_then(peer_from_contract);
    let peer = peer_for_uri(&target, TransportKind::Udp).or(flow).ok_or_else(|| format!("{target} cannot be reached"))?;
    let edge = if offer.edge_id.is_empty() { via.edge_id.clone() } else { offer.edge_id.clone() };
    let id = SessionId::random();
    let seat = conference::take_seat(&ctx, &id, room, None).await.map_err(|e| format!("no seat in {room}: {e}"))?;
    if let Err(e) = ctx.media.seat_control(&seat, &id, true, true).await {
        tracing::warn!(session = %id, error = %e, "agent's seat not closed while ringing");
    }
    let ring = Duration::from_millis(offer.until_ms.saturating_sub(contracts::unix_ms()).max(1000));
    let outgoing = Outgoing { target, call_id: format!("{id}@callmesh"), headers: Vec::new(), answer_timeout: Some(ring) };
    let contact = via.edge_uri.replacen("sip:", &format!("sip:{id}@"), 1);
    let config = EngineConfig { session: id.to_string(), contact, sdp_user: "callmesh".into() };
    let end = LocalEnd { identity: via.identity, ..conference::local_end(&seat) };
    let engine = Engine::calling(config, end, outgoing, Route { edge, peer }, Instant::now());
    let (tx, commands) = mpsc::unbounded_channel();
    let leg = AgentLeg {
        agent: offer.agent,
        caller: Some(caller),
        caller_session: caller_session.to_string(),
        commands: Some(commands),
        instructions: None,
        answered: false,
        bridged: false,
        told: false,
    };
    let call = Call::agent(ctx.clone(), id.clone(), engine, conference::Seated::new(seat, room), leg);
    let events = typed::subscribe::<EdgeEvent>(ctx.bus.as_ref(), &subjects::session_events(&id)).await;
    let media = typed::subscribe::<MediaEvent>(ctx.bus.as_ref(), &subjects::session_media_events(&id)).await;
    let (events, media) = (events.map_err(|e| e.to_string())?, media.map_err(|e| e.to_string())?);
    let _ = ctx.bus.flush().await;
    tracing::debug!(session = %id, %room, "agent leg started");
    tokio::spawn(call.run(events, media));
    Ok((tx, id))
}

impl Role {
    pub fn agent(leg: AgentLeg) -> Role {
        Role::Agent(leg)
    }
}
