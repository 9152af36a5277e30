//! One call on the session node: the call engine (session-core), driven. The driver feeds
//! it what the edges and the media node report and the time, and carries out its outputs in
//! order: SIP to the edges, requests to the media node, the call's record written to the
//! registry when the engine says its durable state changed (before what follows is sent).

mod agent_leg;
mod cdr;
pub(crate) mod conference;
mod control;
mod in_flight;
mod media_out;
pub(crate) mod originate;
pub(crate) mod queue;
mod record;
mod reseat;
mod routed;
mod stranded;
mod waiting;
mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cluster::bus::typed::{self, TypedSubscription};
use cluster::contracts::{self, EdgeCommand, EdgeEvent, MediaEvent, RoutedCall};
use cluster::ownership::OwnedSession;
use cluster::registry::Bucket;
use cluster::subjects::{self, NodeId, SessionId};
use session_core::engine::{CALLER, CallEvent, Command, Engine, MediaInput, Output};

use media_node::Seat;

use crate::node::Ctx;
use routed::{caller, dial_plan};

/// A call being driven.
pub(crate) struct Call {
    ctx: Arc<Ctx>,
    pub id: SessionId,
    engine: Engine,
    owned: Option<OwnedSession>,
    /// The media node holding the call's relay.
    media_node: Option<NodeId>,
    /// A call to a conference: its seat in its room (the engine answers it itself), and
    /// what the route asks of it once the seat has its stream (then `None`).
    seat: Option<conference::Seated>,
    seat_options: Option<RoutedCall>,
    /// Where the caller's SIP comes from (its RTP too, behind NAT).
    caller_ip: IpAddr,
    /// The media nodes the route allows (empty: any).
    media_zone: String,
    /// The route records its calls; the recording's segments started (one per relay).
    record: bool,
    segment: u32,
    /// The edge each request went through, by key (a CANCEL follows its INVITE).
    edges: HashMap<u64, String>,
    /// Keys marking users busy while the call is up (`RejectWhenBusy`, agents of queues).
    busy_keys: Vec<String>,
    answered: bool,
    /// The engine's clock starts here; the wall clock read then.
    started: Instant,
    started_ms: u64,
    /// A caller in a queue, or an agent's leg for one (`queue.rs`).
    acd: Option<queue::Role>,
    /// Media nodes that died (the call's relay may have been on one).
    media_gone: tokio::sync::broadcast::Receiver<String>,
    /// Edges that died, and the requests sent through one not answered yet.
    edge_died: tokio::sync::broadcast::Receiver<String>,
    in_flight: in_flight::InFlight,
    /// The requests the edges gave the call (each taken once).
    requests: wire::Requests,
    /// The caller's 2xx, and its transaction once its edge died (`stranded.rs`).
    stranded: stranded::Stranded,
    /// What the call's detail record needs (`cdr.rs`).
    notes: cdr::Notes,
    /// A leg of a call placed for an operator (`originate.rs`).
    originated: Option<originate::Originated>,
}

impl Call {
    /// The engine for a routed call, with its dial plan; `None` when the INVITE is unusable.
    pub fn new(ctx: Arc<Ctx>, routed: RoutedCall) -> Option<Call> {
        let c = caller(&routed)?;
        let caller_ip = c.route.peer.addr.ip();
        let now = Instant::now();
        let plan = dial_plan(&routed, &c.tx.edge);
        let mut engine = Engine::incoming(c.config, c.invite, c.tx, c.route, now);
        engine.handle_command(plan, now);
        Some(Call::assemble(ctx, c.id, engine, routed, caller_ip, None))
    }

    /// A routed call to conference room `room`: a seat there, and the engine answering with
    /// it (refusing the caller when no seat can be had).
    pub async fn conference(ctx: Arc<Ctx>, routed: RoutedCall, room: &str) -> Option<Call> {
        let c = caller(&routed)?;
        let caller_ip = c.route.peer.addr.ip();
        let seat = match media_node::rooms::valid_room(room) {
            true => {
                let zone = Some(routed.media_zone.as_str()).filter(|z| !z.is_empty());
                conference::take_seat(&ctx, &c.id, room, zone).await.map_err(|e| (503, e.to_string()))
            }
            false => Err((404, format!("no conference room {room:?}"))),
        };
        let (engine, seat) = match seat {
            Ok(seat) => (conference::engine(c.config, &seat, c.invite, c.tx, c.route), Some(conference::Seated::new(seat, room))),
            Err((status, why)) => {
                tracing::warn!(session = %c.id, %room, %why, "no seat in the conference");
                let nowhere = Seat { node: ctx.node.clone(), rtp: SocketAddr::from(([0, 0, 0, 0], 0)) };
                let mut engine = conference::engine(c.config, &nowhere, c.invite, c.tx, c.route);
                let reason = if status == 404 { "Not Found" } else { "Service Unavailable" };
                engine.handle_command(Command::Reject { status, reason: reason.into() }, Instant::now());
                (engine, None)
            }
        };
        Some(Call::assemble(ctx, c.id, engine, routed, caller_ip, seat))
    }

    fn assemble(
        ctx: Arc<Ctx>,
        id: SessionId,
        engine: Engine,
        routed: RoutedCall,
        caller_ip: IpAddr,
        seat: Option<conference::Seated>,
    ) -> Call {
        let conference = seat.is_some();
        Call {
            media_gone: ctx.media_gone.subscribe(),
            edge_died: ctx.edges_gone.subscribe(),
            in_flight: Default::default(),
            requests: Default::default(),
            stranded: Default::default(),
            notes: cdr::Notes { start_ms: contracts::unix_ms(), ..Default::default() },
            originated: None,
            ctx,
            id,
            engine,
            owned: None,
            media_node: None,
            media_zone: routed.media_zone.clone(),
            // A conference's recording is its room's, asked for once it has its seat.
            record: routed.record && !conference,
            segment: 0,
            seat,
            caller_ip,
            edges: HashMap::new(),
            busy_keys: std::iter::once(routed.busy_key.clone())
                .chain(routed.agents_busy.clone())
                .filter(|k| !k.is_empty())
                .collect(),
            seat_options: conference.then_some(routed),
            answered: false,
            started: Instant::now(),
            started_ms: contracts::unix_ms(),
            acd: None,
        }
    }

    /// A routed call to queue `queue`: answered with a seat in a room of its own, then queued.
    pub async fn queue(ctx: Arc<Ctx>, routed: RoutedCall, queue: &str) -> Option<Call> {
        let incoming = routed.call.as_ref()?;
        let (edge_id, edge_uri, invite) = (incoming.edge_id.clone(), incoming.edge_uri.clone(), incoming.invite.clone());
        let announce = routed.announce_secs;
        let (routed_priority, routed_requires) = (routed.queue_priority, routed.queue_requires.clone());
        let id = SessionId::new(routed.call.as_ref()?.session_id.clone()).ok()?;
        let mut call = Call::conference(ctx, routed, &queue::room_of(&id)).await?;
        if call.seat.is_some() {
            let mut waiting = queue::Waiting::new(queue, &edge_id, &edge_uri, invite).announcing(announce);
            waiting.needs(routed_priority, routed_requires);
            call.acd = Some(queue::Role::Caller(Box::new(waiting)));
        }
        Some(call)
    }

    /// An agent's leg for a queue caller: `engine` calls the agent with `seat` as its media.
    pub(crate) fn agent(
        ctx: Arc<Ctx>,
        id: SessionId,
        engine: Engine,
        seat: conference::Seated,
        leg: agent_leg::AgentLeg,
    ) -> Call {
        let caller_ip = std::net::Ipv4Addr::UNSPECIFIED.into();
        let mut call = Call::assemble(ctx, id, engine, RoutedCall::default(), caller_ip, Some(seat));
        call.seat_options = None;
        call.acd = Some(queue::Role::agent(leg));
        call
    }

    /// Runs the call to its end (or until another node takes it over). Boxed: a queue
    /// caller's call starts its agents' legs, calls run by this same function.
    pub fn run(
        self,
        events: TypedSubscription<EdgeEvent>,
        media: TypedSubscription<MediaEvent>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(self.drive(events, media))
    }

    async fn drive(mut self, mut events: TypedSubscription<EdgeEvent>, mut media: TypedSubscription<MediaEvent>) {
        if !self.notes.taken_over {
            self.notify_started().await;
        }
        loop {
            if !self.carry_out().await {
                tracing::warn!(session = %self.id, "session taken over by another node: leaving it");
                return;
            }
            if self.engine.is_over() {
                break;
            }
            let deadline = self.engine.poll_timeout().map(tokio::time::Instant::from_std);
            let stranded = self.stranded_until();
            let no_news = self.in_flight.next_look();
            tokio::select! {
                Some(e) = events.next() => {
                    if wire::disowned(&e.message) {
                        tracing::info!(session = %self.id, "the edge gave the call to another copy of it: letting go");
                        return self.release().await;
                    }
                    if let Some(c) = control::control(&e.message) {
                        self.on_control(c).await;
                        continue;
                    }
                    self.in_flight.heard(&e.message);
                    if self.requests.is_new(&e.message) && let Some(input) = wire::sip_input(e.message) {
                        self.engine.handle_sip(input, Instant::now());
                    }
                }
                Some(m) = media.next() => match (self.notes.heard(&m.message), &mut self.seat, wire::media_input(&self.id, m.message)) {
                    // A seat's keys: the room's controls (`*6`: mute), a queue's exit key.
                    (_, Some(_), Some(MediaInput::Dtmf { digit, .. })) => self.on_key(digit).await,
                    (_, _, Some(input)) => self.engine.handle_media(input, Instant::now()),
                    (_, _, None) => {}
                },
                Some(input) = queue::next(&mut self.acd) => self.on_acd(input).await,
                Ok(edge) = self.edge_died.recv() => {
                    for command in self.in_flight.through(&edge, tokio::time::Instant::now()) {
                        tracing::info!(session = %self.id, %edge, "request sent again through another edge");
                        self.publish(&subjects::any_edge_commands(), command).await;
                    }
                    self.strand(&edge);
                }
                _ = tokio::time::sleep_until(stranded.unwrap_or_else(tokio::time::Instant::now)), if stranded.is_some() => {
                    self.strand_tick().await;
                }
                _ = tokio::time::sleep_until(no_news.unwrap_or_else(tokio::time::Instant::now)), if no_news.is_some() => {
                    self.send_without_news().await;
                }
                Ok(node) = self.media_gone.recv() => {
                    if self.media_node.as_ref().is_some_and(|n| n.as_str() == node) {
                        self.media_node = None;
                        self.engine.handle_command(Command::Reanchor, Instant::now());
                    } else if self.seat.as_ref().is_some_and(|s| s.seat.node.as_str() == node) {
                        self.reseat().await;
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                    self.engine.handle_timeout(Instant::now());
                }
            }
        }
        self.finish().await;
    }

    /// Carries out every output, in order. False when another node owns the call now.
    async fn carry_out(&mut self) -> bool {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Persist => {
                    if !self.persist().await {
                        return false;
                    }
                }
                Output::Media(m) => self.media(m).await,
                Output::Event(e) => self.on_event(e).await,
                Output::FindReplaced(named) => {
                    let found = self.find_replaced(&named).await;
                    self.engine.handle_command(Command::Replacement { found }, Instant::now());
                }
                sip => {
                    tracing::trace!(session = %self.id, ?sip, "SIP out");
                    if let Output::Send { key, route, .. } = &sip {
                        self.edges.insert(*key, route.edge.clone());
                    }
                    let edges = &self.edges;
                    if let Some((edge, command)) = wire::edge_command(sip, |k| edges.get(&k).cloned()) {
                        self.command(&edge, command).await;
                    }
                }
            }
        }
        true
    }

    async fn command(&mut self, edge: &str, command: cluster::contracts::edge_command::Command) {
        let Ok(edge) = NodeId::new(edge) else {
            tracing::warn!(session = %self.id, edge, "no edge to carry the message");
            return;
        };
        use cluster::contracts::edge_command::Command as C;
        // A request (or a 2xx's ACK) for an edge that died goes through any other: it only
        // needs to reach the far end; so does a response to the caller's INVITE, sent outside
        // any transaction (`stranded.rs`). Other responses and CANCELs belong to the dead
        // edge's transactions, and are lost with it (the far end sends its request again).
        self.remember_answer(&command);
        let gone = self.ctx.edges_gone.contains(edge.as_str());
        let command = if gone { self.stranded_response(edge.as_str(), command) } else { command };
        let subject = match &command {
            C::SendRequest(_) | C::SendAck(_) | C::SendStateless(_) if gone => subjects::any_edge_commands(),
            _ => subjects::edge_commands(&edge),
        };
        self.in_flight.sent(if gone { "" } else { edge.as_str() }, &command, tokio::time::Instant::now());
        self.publish(&subject, command).await;
    }

    async fn publish(&self, subject: &subjects::Subject, command: cluster::contracts::edge_command::Command) {
        let message = EdgeCommand {
            meta: contracts::meta(self.ctx.node.as_str()),
            session_id: self.id.to_string(),
            command: Some(command),
        };
        if let Err(e) = typed::publish(self.ctx.bus.as_ref(), subject, &message).await {
            tracing::warn!(session = %self.id, error = %e, "edge command not sent");
        }
    }

    async fn on_event(&mut self, event: CallEvent) {
        self.note(&event).await;
        self.on_originated_event(&event).await;
        self.on_agent_event(&event);
        if self.seat.is_some() {
            // The conference takes the call, and whatever the caller re-offers (hold); it
            // transfers nobody.
            let command = match event {
                CallEvent::Offered { .. } => Some(Command::Answer),
                CallEvent::Reoffered { .. } => Some(Command::AcceptReoffer),
                CallEvent::TransferRequested { .. } => Some(Command::RejectTransfer { status: 603, reason: "Decline".into() }),
                CallEvent::Answered { .. } => {
                    self.answered = true;
                    None
                }
                _ => None,
            };
            if let Some(command) = command {
                self.engine.handle_command(command, Instant::now());
            }
            return;
        }
        if let CallEvent::Bridged { a, .. } = event
            && a == CALLER
            && !self.answered
        {
            self.answered = true;
            for key in &self.busy_keys {
                let _ = self.ctx.registry.put(Bucket::Agents, key, Bytes::from(self.id.to_string())).await;
            }
        }
    }

    /// Writes the call's detail record, then forgets the call: its record, its busy mark,
    /// its place in a queue.
    async fn finish(&mut self) {
        let agent_leg = matches!(self.acd, Some(queue::Role::Agent(_)));
        self.write_cdr().await;
        self.originated_ended().await;
        self.release().await;
        for key in &self.busy_keys {
            let _ = self.ctx.registry.delete(Bucket::Agents, key, None).await;
        }
        if let Some(owned) = self.owned.take()
            && let Err(e) = self.ctx.store.remove(owned).await
        {
            tracing::warn!(session = %self.id, error = %e, "session record not removed");
        }
        if !agent_leg {
            self.ctx.stats.finished(self.answered);
        }
    }

    /// Gives back what the call took under its session id: its place in a queue, its relay,
    /// its seat (all of a disowned call: busy marks and records are its winner's).
    async fn release(&mut self) {
        self.leave_acd().await;
        if let Some(node) = self.media_node.take() {
            let _ = self.ctx.media.release(&node, &self.id).await;
        }
        if let Some(seated) = self.seat.take() {
            conference::leave_seat(&self.ctx, &seated.seat, &self.id, &seated.room).await;
        }
    }
}
