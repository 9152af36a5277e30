//! Calls placed for an operator (the API's `Originate`, click-to-call): the session node
//! that takes the request rings the agent, seated in a room of its own (`o-<session>`), and
//! once the agent answers, calls the number, seated in the same room — the two hear each
//! other through the room's mix. Each leg is a session (kind "originate"); when one ends it
//! hangs the other up (`CallControl` on the other's events subject, wherever it runs).
//! Such calls are not taken over when their node dies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::bus::{BusError, typed};
use cluster::contracts::call_control;
use cluster::contracts::{self, ControlHangup, OriginateCall, OriginateReply, Peer};
use cluster::subjects::{self, SessionId, groups};
use session_core::engine::{CallEvent, Command, Engine, EngineConfig, LocalEnd, Outgoing, Route, peer_from_contract};
use sip::endpoint::peer_for_uri;
use sip::message::Uri;
use sip::transaction::TransportKind;

use super::{Call, conference};
use crate::node::Ctx;

/// A leg of a call placed for an operator.
pub(crate) struct Originated {
    /// The agent the call was placed for (named in both legs' records).
    pub agent: String,
    /// Who the far end sees calling.
    pub identity: String,
    /// The other leg's session (the agent's, for the number's leg; the number's once placed).
    pub other: Option<SessionId>,
    /// The agent's leg: what to dial once it answers.
    pub then: Option<Box<OriginateCall>>,
}

/// Takes the API's requests (queue group `sessions`): each answered with the agent leg's
/// session once its call is placed, or why not.
pub(crate) async fn serve(ctx: Arc<Ctx>) -> Result<(), BusError> {
    let mut requests =
        typed::queue_subscribe::<OriginateCall>(ctx.bus.as_ref(), &subjects::originate(), groups::SESSIONS).await?;
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let reply = match start(&ctx, request.message).await {
                    Ok(id) => OriginateReply { session_id: id.to_string(), error: String::new() },
                    Err(error) => OriginateReply { session_id: String::new(), error },
                };
                if let Err(e) = typed::reply(ctx.bus.as_ref(), &request.raw, &reply).await {
                    tracing::warn!(error = %e, "originate request not answered");
                }
            });
        }
    });
    Ok(())
}

fn ring(request: &OriginateCall) -> Duration {
    Duration::from_secs(if request.ring_secs == 0 { 30 } else { u64::from(request.ring_secs) })
}

/// Rings the agent; the number follows once it answers.
async fn start(ctx: &Arc<Ctx>, request: OriginateCall) -> Result<SessionId, String> {
    let id = SessionId::random();
    let contact = request.agent_contacts.first().ok_or("the agent has no contact to ring")?.clone();
    let leg = Originated {
        agent: request.agent.clone(),
        identity: request.target.clone(),
        other: None,
        then: Some(Box::new(request.clone())),
    };
    let room = format!("o-{id}");
    place(ctx, &id, &room, &contact, request.agent_flow.as_ref(), &request, leg).await?;
    Ok(id)
}

/// Places one leg: `target` called with a seat in `room` as its media.
async fn place(
    ctx: &Arc<Ctx>,
    id: &SessionId,
    room: &str,
    target: &str,
    flow: Option<&Peer>,
    request: &OriginateCall,
    leg: Originated,
) -> Result<(), String> {
    let uri = Uri::parse(target).map_err(|e| format!("{target:?}: {e}"))?;
    let peer = peer_for_uri(&uri, TransportKind::Udp)
        .or_else(|| flow.and_then(peer_from_contract))
        .ok_or_else(|| format!("{target} cannot be reached"))?;
    let seat = conference::take_seat(ctx, id, room, None).await.map_err(|e| format!("no seat in {room}: {e}"))?;
    let outgoing =
        Outgoing { target: uri, call_id: format!("{id}@callmesh"), headers: Vec::new(), answer_timeout: Some(ring(request)) };
    let contact = request.edge_uri.replacen("sip:", &format!("sip:{id}@"), 1);
    let config = EngineConfig { session: id.to_string(), contact, sdp_user: "callmesh".into() };
    let end = LocalEnd { identity: leg.identity.clone(), ..conference::local_end(&seat) };
    let route = Route { edge: request.edge_id.clone(), peer };
    let engine = Engine::calling(config, end, outgoing, route, Instant::now());
    let mut call =
        Call::assemble(ctx.clone(), id.clone(), engine, Default::default(), std::net::Ipv4Addr::UNSPECIFIED.into(), None);
    call.seat = Some(conference::Seated::new(seat, room));
    call.originated = Some(leg);
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let _active = ctx.stats.active.begin();
        crate::node::drive(ctx.clone(), call, async {}).await;
    });
    Ok(())
}

impl Call {
    /// The agent answered: the number is called into its room.
    pub(super) async fn on_originated_event(&mut self, event: &CallEvent) {
        let Some(leg) = &mut self.originated else { return };
        if !matches!(event, CallEvent::Answered { .. }) {
            return;
        }
        let Some(request) = leg.then.take() else { return };
        let (id, room) = (SessionId::random(), self.seat.as_ref().map(|s| s.room.clone()).unwrap_or_default());
        let next = Originated {
            agent: request.agent.clone(),
            identity: request.caller_id.clone(),
            other: Some(self.id.clone()),
            then: None,
        };
        match place(&self.ctx, &id, &room, &request.target, request.target_flow.as_ref(), &request, next).await {
            Ok(()) => leg.other = Some(id),
            Err(e) => {
                tracing::warn!(session = %self.id, error = %e, "the number was not called: hanging up the agent");
                self.engine.handle_command(Command::Hangup, Instant::now());
            }
        }
    }

    /// This leg ended: so does the other.
    pub(super) async fn originated_ended(&mut self) {
        let Some(other) = self.originated.as_ref().and_then(|l| l.other.clone()) else { return };
        let hangup = call_control::Action::Hangup(ControlHangup {});
        let event = contracts::control_event(self.ctx.node.as_str(), other.as_str(), hangup);
        if let Err(e) = typed::publish(self.ctx.bus.as_ref(), &subjects::session_events(&other), &event).await {
            tracing::warn!(session = %self.id, %other, error = %e, "the other leg not told to hang up");
        }
    }
}
