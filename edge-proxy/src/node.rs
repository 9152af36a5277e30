//! The edge role: a SIP endpoint whose transaction user is the cluster. New INVITEs get a
//! session id and go to the routers; REGISTER goes to the registrar; in-dialog requests,
//! ACKs and CANCELs go to the session named by our tag; responses to the requests a session
//! asked us to send go back to it. Commands from sessions (respond, send, ACK, cancel)
//! arrive on this edge's subject, new outgoing requests on the shared queue group.
//!
//! Draining, the edge refuses new calls (503 with Retry-After, and OPTIONS too, so SIP-aware
//! balancers take it out), leaves the shared queue group, and keeps serving in-dialog traffic
//! and its transactions until they end; [`EdgeHandle::in_flight`] counts them.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cluster::bus::typed::{self, Received, TypedSubscription};
use cluster::bus::{Bus, BusError};
use cluster::contracts::{self, EdgeCommand, EdgeEvent, edge_event};
use cluster::drain::{Drain, InFlight};
use cluster::registry::Registry;
use cluster::subjects::{self, NodeId, SessionId, groups};
use sip::endpoint::{Endpoint, EndpointConfig, EndpointHandle, EndpointStats};
use sip::message::{Builder, Host, HostPort, Message};
use sip::shard_map::ShardedMap;
use sip::transaction::{Peer, TransportKind, TxId, new_tag};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use crate::commands;
use crate::registrar::{Registrar, RegistrarConfig};
use crate::stats::EdgeStats;
use crate::unclaimed::Unclaimed;

/// Settings of an edge.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub node_id: NodeId,
    /// UDP and TCP on this address.
    pub listen: SocketAddr,
    /// The host Via and Contact carry (see [`EndpointConfig::advertise`]).
    pub advertise: Option<Host>,
    pub registrar: RegistrarConfig,
    /// A new call nobody took (no router, no session node) is refused with 503 after this
    /// long; an in-dialog request nobody answered gets 481.
    pub orphan_timeout: Duration,
    pub drain: Drain,
    /// Share `listen` with other edges (SO_REUSEPORT; `shared.rs`).
    pub reuse_port: bool,
}

/// A running edge.
#[derive(Clone)]
pub struct EdgeHandle {
    pub node_id: NodeId,
    endpoint: EndpointHandle,
    pub stats: Arc<EdgeStats>,
    /// Transactions in progress (see `count_in_flight`), counted by the edge after each event
    /// while it drains; 1 until then, so nobody takes the edge for idle before it looked.
    pub in_flight: Arc<InFlight>,
    stop: watch::Sender<bool>,
    /// Set when the edge's loop ends (the endpoint shut down, or `stop`).
    stopped: watch::Receiver<bool>,
}

impl EdgeHandle {
    pub fn local_addr(&self, transport: TransportKind) -> Option<SocketAddr> {
        self.endpoint.local_addr(transport)
    }

    /// Where phones reach this edge (the advertised host and the bound port).
    pub fn sent_by(&self, transport: TransportKind) -> HostPort {
        self.endpoint.sent_by(transport)
    }

    pub async fn endpoint_stats(&self) -> Option<EndpointStats> {
        self.endpoint.stats().await.ok()
    }

    /// Stops the edge's loop (and with it the endpoint).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Whether the edge's loop still runs.
    pub fn is_running(&self) -> bool {
        !*self.stopped.borrow()
    }
}

/// What the edge remembers about its transactions.
pub(crate) struct Edge {
    pub id: NodeId,
    pub handle: EndpointHandle,
    pub bus: Arc<dyn Bus>,
    pub registrar: Arc<Registrar>,
    pub stats: Arc<EdgeStats>,
    pub orphan_timeout: Duration,
    /// INVITE server transactions → their session (for CANCEL, ACK timeouts).
    pub server_invites: HashMap<TxId, SessionId>,
    /// New calls not yet ringing or answered: when their INVITE arrived.
    pub setup_started: HashMap<TxId, Instant>,
    /// Client transactions started for sessions → (session, correlation, is INVITE). Kept
    /// 32 s after a 2xx, so large at high call rates: sharded.
    pub clients: ShardedMap<TxId, (SessionId, u64, bool)>,
    pub correlations: ShardedMap<(SessionId, u64), TxId>,
    /// New calls no node has acted on yet (published again while they wait).
    pub unclaimed: Unclaimed,
    /// In-dialog requests forwarded and not yet answered.
    pub unanswered: HashMap<TxId, Unanswered>,
    /// INVITE client transactions to forget once their 2xx retransmissions are over.
    pub forget_later: VecDeque<(Instant, TxId)>,
    /// ACKs forwarded in the last `orphan_timeout`, until when: the session that took one
    /// may die before it recorded it, and its new owner asks for them again.
    pub recent_acks: VecDeque<(Instant, SessionId, contracts::AckReceived)>,
    pub drain: Drain,
    pub in_flight: Arc<InFlight>,
}

/// An in-dialog request forwarded to its session and not answered yet.
pub struct Unanswered {
    pub request: Message,
    pub peer: Peer,
    /// Refused with 481 then.
    pub until: Instant,
    /// Published again then (its session's node may have missed it: a NATS server died).
    pub again_at: Instant,
}

/// How often a request not answered yet is published again to its session.
pub const PUBLISH_AGAIN: Duration = Duration::from_secs(1);

/// Starts an edge on `bus`, with registrations in `registry`.
pub async fn start(config: EdgeConfig, bus: Arc<dyn Bus>, registry: Arc<dyn Registry>) -> Result<EdgeHandle, EdgeError> {
    let endpoint_config = EndpointConfig {
        advertise: config.advertise.clone(),
        reuse_port: config.reuse_port,
        ..EndpointConfig::udp_and_tcp(config.listen)
    };
    let endpoint = Endpoint::bind(endpoint_config).await.map_err(EdgeError::Bind)?;
    let handle = endpoint.handle();
    let own: TypedSubscription<EdgeCommand> = typed::subscribe(bus.as_ref(), &subjects::edge_commands(&config.node_id)).await?;
    let shared: TypedSubscription<EdgeCommand> =
        typed::queue_subscribe(bus.as_ref(), &subjects::any_edge_commands(), groups::EDGES).await?;
    let all: TypedSubscription<EdgeCommand> = typed::subscribe(bus.as_ref(), &subjects::all_edge_commands()).await?;
    let stats = Arc::new(EdgeStats::default());
    let in_flight = Arc::new(InFlight::default());
    in_flight.set(1);
    let (stop, stop_rx) = watch::channel(false);
    let (ended, ended_rx) = watch::channel(false);
    let edge = Edge {
        id: config.node_id.clone(),
        handle: handle.clone(),
        registrar: Arc::new(Registrar::new(config.registrar, registry, config.node_id.as_str())),
        bus,
        stats: stats.clone(),
        orphan_timeout: config.orphan_timeout,
        server_invites: HashMap::new(),
        setup_started: HashMap::new(),
        clients: ShardedMap::new(),
        correlations: ShardedMap::new(),
        unclaimed: Unclaimed::default(),
        unanswered: HashMap::new(),
        forget_later: VecDeque::new(),
        recent_acks: VecDeque::new(),
        drain: config.drain,
        in_flight: in_flight.clone(),
    };
    tokio::spawn(async move {
        edge.run(endpoint, [own, all], shared, stop_rx).await;
        let _ = ended.send(true);
    });
    Ok(EdgeHandle { node_id: config.node_id, endpoint: handle, stats, in_flight, stop, stopped: ended_rx })
}

/// The next command of a subscription that may have been dropped (pending forever then).
async fn next_command(sub: &mut Option<TypedSubscription<EdgeCommand>>) -> Option<Received<EdgeCommand>> {
    match sub {
        Some(sub) => sub.next().await,
        None => std::future::pending().await,
    }
}

/// Why an edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("cannot bind the SIP address: {0}")]
    Bind(std::io::Error),
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl Edge {
    async fn run(
        mut self,
        mut endpoint: Endpoint,
        [mut own, mut all]: [TypedSubscription<EdgeCommand>; 2],
        shared: TypedSubscription<EdgeCommand>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        // Dropped when draining starts: leaving the queue group sends new work elsewhere.
        let mut shared = Some(shared);
        let drain = self.drain.clone();
        loop {
            tokio::select! {
                event = endpoint.next_event() => match event {
                    Some(e) => self.on_event(e).await,
                    None => return,
                },
                Some(cmd) = own.next() => self.command(cmd).await,
                Some(cmd) = all.next() => self.command(cmd).await,
                Some(cmd) = next_command(&mut shared) => self.command(cmd).await,
                _ = drain.started(), if shared.is_some() => {
                    tracing::info!(edge = %self.id, "draining: refusing new calls, serving transactions in progress");
                    shared = None;
                }
                _ = tick.tick() => self.expire().await,
                _ = stopped.changed() => return,
            }
            // Draining, the count is fresh after every event: whoever waits for it to reach
            // zero never sees a count from before the last answer was sent.
            if shared.is_none() {
                self.count_in_flight();
            }
        }
    }

    /// Carries out a session's command, in a span that continues the session's trace.
    async fn command(&mut self, cmd: Received<EdgeCommand>) {
        let span = tracing::info_span!("edge.command", session = %cmd.message.session_id);
        cmd.follow(&span);
        commands::execute(self, cmd.message).instrument(span).await
    }

    /// Work still open: new calls no session took yet, requests waiting for a session's
    /// answer, INVITEs waiting for their final response or ACK, requests we sent that have
    /// no final response. Transactions that only absorb retransmissions (RFC 3261 Timer J,
    /// K, RFC 6026 Timer L, M) do not count: OPTIONS pings would keep a draining edge busy.
    fn count_in_flight(&self) {
        let lingering = self.forget_later.len();
        let waiting = self.clients.len().saturating_sub(lingering);
        self.in_flight.set(self.unclaimed.len() + self.unanswered.len() + self.server_invites.len() + waiting);
    }

    /// This edge's SIP URI on `transport`, for Contact headers.
    pub fn uri(&self, transport: TransportKind) -> String {
        let sent_by = self.handle.sent_by(transport);
        format!("sip:{sent_by};transport={}", transport.via_name().to_ascii_lowercase())
    }

    pub async fn publish_event(&self, session: &SessionId, event: edge_event::Event) {
        let message = EdgeEvent {
            meta: contracts::meta(self.id.as_str()),
            session_id: session.to_string(),
            edge_id: self.id.to_string(),
            event: Some(event),
        };
        if let Err(e) = typed::publish(self.bus.as_ref(), &subjects::session_events(session), &message).await {
            tracing::warn!(%session, error = %e, "edge event not published");
        }
    }

    /// Publishes in-dialog `request` (server transaction `tx`, from `peer`) to the session
    /// its To tag names.
    pub async fn publish_request(&self, tx: TxId, request: &Message, peer: Peer) {
        let Some((session, _)) = request.to_tag().and_then(cluster::tags::session_of) else { return };
        let forwarded = contracts::RequestReceived {
            tx: tx.as_u64(),
            request: request.as_bytes().clone(),
            source: Some(crate::peers::to_contract(peer)),
        };
        self.publish_event(&session, edge_event::Event::Request(forwarded)).await;
    }

    pub fn respond(&self, tx: TxId, request: &Message, status: u16, reason: &str) {
        if let Ok(response) = Builder::response_to(request, status, reason, Some(&new_tag())).build() {
            let _ = self.handle.respond(tx, response);
        }
    }

    /// Refuses calls and requests nobody acted on, publishes again requests not answered
    /// yet; forgets finished INVITE transactions.
    async fn expire(&mut self) {
        let now = Instant::now();
        for (tx, request) in self.unclaimed.expired(now) {
            self.stats.unclaimed.inc();
            tracing::warn!(call_id = request.call_id().unwrap_or_default(), "no router or session node took the call");
            self.server_invites.remove(&tx);
            self.setup_started.remove(&tx);
            self.respond(tx, &request, 503, "Service Unavailable");
        }
        for (tx, call) in self.unclaimed.due_again(now) {
            self.stats.published_again.inc();
            tracing::info!(session = %call.session_id, attempt = call.attempt, "no node acted on the call: published again");
            if let Err(e) = typed::publish(self.bus.as_ref(), &subjects::incoming_calls(), &call).await {
                tracing::warn!(tx = tx.as_u64(), error = %e, "new call not published again");
            }
        }
        let unanswered: Vec<TxId> = self.unanswered.iter().filter(|(_, u)| u.until <= now).map(|(t, _)| *t).collect();
        for tx in unanswered {
            if let Some(u) = self.unanswered.remove(&tx) {
                self.stats.unanswered.inc();
                self.respond(tx, &u.request, 481, "Call/Transaction Does Not Exist");
            }
        }
        let mut again = Vec::new();
        for (tx, u) in self.unanswered.iter_mut().filter(|(_, u)| u.again_at <= now) {
            u.again_at = now + PUBLISH_AGAIN;
            again.push((*tx, u.request.clone(), u.peer));
        }
        for (tx, request, peer) in again {
            self.publish_request(tx, &request, peer).await;
        }
        while self.recent_acks.front().is_some_and(|(until, _, _)| *until <= now) {
            self.recent_acks.pop_front();
        }
        while self.forget_later.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, tx)) = self.forget_later.pop_front()
                && let Some((session, correlation, _)) = self.clients.remove(&tx)
            {
                self.correlations.remove(&(session, correlation));
            }
        }
    }
}
