//! The edge role: a SIP endpoint whose transaction user is the cluster. New INVITEs get a
//! session id and go to the routers; REGISTER goes to the registrar; in-dialog requests,
//! ACKs and CANCELs go to the session named by our tag; responses to the requests a session
//! asked us to send go back to it. Commands from sessions (respond, send, ACK, cancel)
//! arrive on this edge's subject, new outgoing requests on the shared queue group.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cluster::bus::typed::{self, TypedSubscription};
use cluster::bus::{Bus, BusError};
use cluster::contracts::{self, EdgeCommand, EdgeEvent, FailureReason, IncomingCall, edge_event};
use cluster::registry::Registry;
use cluster::subjects::{self, NodeId, SessionId, groups};
use cluster::tags;
use sip::endpoint::{Endpoint, EndpointConfig, EndpointHandle, EndpointStats};
use sip::message::{Builder, Message, Method};
use sip::shard_map::ShardedMap;
use sip::transaction::{Event, Peer, TransportKind, TxId, new_tag};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::commands;
use crate::registrar::{Registrar, RegistrarConfig};
use crate::stats::EdgeStats;

/// Settings of an edge.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub node_id: NodeId,
    /// UDP and TCP on this address.
    pub listen: SocketAddr,
    pub registrar: RegistrarConfig,
    /// A new call nobody took (no router, no session node) is refused with 503 after this
    /// long; an in-dialog request nobody answered gets 481.
    pub orphan_timeout: Duration,
}

/// A running edge.
#[derive(Clone)]
pub struct EdgeHandle {
    pub node_id: NodeId,
    endpoint: EndpointHandle,
    pub stats: Arc<EdgeStats>,
    stop: watch::Sender<bool>,
}

impl EdgeHandle {
    pub fn local_addr(&self, transport: TransportKind) -> Option<SocketAddr> {
        self.endpoint.local_addr(transport)
    }

    pub async fn endpoint_stats(&self) -> Option<EndpointStats> {
        self.endpoint.stats().await.ok()
    }

    /// Stops the edge's loop (and with it the endpoint).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
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
    /// Client transactions started for sessions → (session, correlation, is INVITE). Kept
    /// 32 s after a 2xx, so large at high call rates: sharded.
    pub clients: ShardedMap<TxId, (SessionId, u64, bool)>,
    pub correlations: ShardedMap<(SessionId, u64), TxId>,
    /// New calls no node has acted on yet: the INVITE, its transaction, the deadline.
    pub unclaimed: HashMap<SessionId, (TxId, Message, Instant)>,
    /// In-dialog requests forwarded and not yet answered.
    pub unanswered: HashMap<TxId, (Message, Instant)>,
    /// INVITE client transactions to forget once their 2xx retransmissions are over.
    pub forget_later: VecDeque<(Instant, TxId)>,
}

/// Starts an edge on `bus`, with registrations in `registry`.
pub async fn start(config: EdgeConfig, bus: Arc<dyn Bus>, registry: Arc<dyn Registry>) -> Result<EdgeHandle, EdgeError> {
    let endpoint = Endpoint::bind(EndpointConfig::udp_and_tcp(config.listen)).await.map_err(EdgeError::Bind)?;
    let handle = endpoint.handle();
    let own: TypedSubscription<EdgeCommand> = typed::subscribe(bus.as_ref(), &subjects::edge_commands(&config.node_id)).await?;
    let shared: TypedSubscription<EdgeCommand> =
        typed::queue_subscribe(bus.as_ref(), &subjects::any_edge_commands(), groups::EDGES).await?;
    let stats = Arc::new(EdgeStats::default());
    let (stop, stopped) = watch::channel(false);
    let edge = Edge {
        id: config.node_id.clone(),
        handle: handle.clone(),
        registrar: Arc::new(Registrar::new(config.registrar, registry, config.node_id.as_str())),
        bus,
        stats: stats.clone(),
        orphan_timeout: config.orphan_timeout,
        server_invites: HashMap::new(),
        clients: ShardedMap::new(),
        correlations: ShardedMap::new(),
        unclaimed: HashMap::new(),
        unanswered: HashMap::new(),
        forget_later: VecDeque::new(),
    };
    tokio::spawn(edge.run(endpoint, own, shared, stopped));
    Ok(EdgeHandle { node_id: config.node_id, endpoint: handle, stats, stop })
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
        mut own: TypedSubscription<EdgeCommand>,
        mut shared: TypedSubscription<EdgeCommand>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                event = endpoint.next_event() => match event {
                    Some(e) => self.on_event(e).await,
                    None => return,
                },
                Some(cmd) = own.next() => commands::execute(&mut self, cmd.message).await,
                Some(cmd) = shared.next() => commands::execute(&mut self, cmd.message).await,
                _ = tick.tick() => self.expire(),
                _ = stopped.changed() => return,
            }
        }
    }

    /// This edge's SIP URI on `transport`, for Contact headers.
    pub fn uri(&self, transport: TransportKind) -> String {
        let addr = self.handle.local_addr(transport).or(self.handle.local_addr(TransportKind::Udp));
        let addr = addr.map(|a| a.to_string()).unwrap_or_default();
        format!("sip:{addr};transport={}", transport.via_name().to_ascii_lowercase())
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

    pub fn respond(&self, tx: TxId, request: &Message, status: u16, reason: &str) {
        if let Ok(response) = Builder::response_to(request, status, reason, Some(&new_tag())).build() {
            let _ = self.handle.respond(tx, response);
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Request { tx, request, peer } => self.on_request(tx, request, peer).await,
            Event::Ack { tx, request, .. } => {
                if let Some(tx) = tx {
                    self.server_invites.remove(&tx);
                }
                if let Some((session, _)) = request.to_tag().and_then(tags::session_of) {
                    let ack = edge_event::Event::Ack(contracts::AckReceived {
                        tx: tx.map(TxId::as_u64).unwrap_or(0),
                        ack: request.as_bytes().to_vec(),
                    });
                    self.publish_event(&session, ack).await;
                }
            }
            Event::Cancelled { tx } => {
                if let Some(session) = self.server_invites.get(&tx).cloned() {
                    self.publish_event(&session, edge_event::Event::Cancelled(contracts::RequestCancelled { tx: tx.as_u64() }))
                        .await;
                }
            }
            Event::Response { tx, response } => self.on_response(tx, response).await,
            Event::StrayResponse { response, .. } => {
                if let Some((session, _)) = response.from_tag().and_then(tags::session_of) {
                    let r = contracts::ResponseReceived { correlation: 0, response: response.as_bytes().to_vec() };
                    self.publish_event(&session, edge_event::Event::Response(r)).await;
                }
            }
            Event::Timeout { tx } | Event::TransportError { tx } => {
                self.server_invites.remove(&tx);
                if let Some((session, correlation, _)) = self.clients.remove(&tx) {
                    self.correlations.remove(&(session.clone(), correlation));
                    let failed = contracts::RequestFailed { correlation, tx: tx.as_u64(), reason: FailureReason::Timeout as i32 };
                    self.publish_event(&session, edge_event::Event::Failed(failed)).await;
                }
            }
            Event::AckTimeout { tx } => {
                if let Some(session) = self.server_invites.remove(&tx) {
                    let failed =
                        contracts::RequestFailed { correlation: 0, tx: tx.as_u64(), reason: FailureReason::NoAck as i32 };
                    self.publish_event(&session, edge_event::Event::Failed(failed)).await;
                }
            }
        }
    }

    async fn on_request(&mut self, tx: TxId, request: Message, peer: Peer) {
        let method = request.method().cloned().unwrap_or(Method::Options);
        let in_dialog = request.to_tag().map(str::to_owned);
        match (&method, in_dialog) {
            (Method::Register, _) => {
                self.stats.registrations.inc();
                let (registrar, handle) = (self.registrar.clone(), self.handle.clone());
                tokio::spawn(async move {
                    if let Ok(response) = registrar.handle(&request, peer).await {
                        let _ = handle.respond(tx, response);
                    }
                });
            }
            (Method::Invite, None) => self.new_call(tx, request, peer).await,
            (Method::Options, None) => {
                let ok = Builder::response_to(&request, 200, "", Some(&new_tag()))
                    .header(sip::message::HeaderName::Allow, "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, INFO")
                    .header(sip::message::HeaderName::Accept, "application/sdp")
                    .build();
                if let Ok(ok) = ok {
                    let _ = self.handle.respond(tx, ok);
                }
            }
            (_, Some(tag)) => match tags::session_of(&tag) {
                Some((session, _)) => {
                    self.stats.in_dialog.inc();
                    if method == Method::Invite {
                        self.server_invites.insert(tx, session.clone());
                    }
                    self.unanswered.insert(tx, (request.clone(), Instant::now() + self.orphan_timeout));
                    let forwarded = contracts::RequestReceived {
                        tx: tx.as_u64(),
                        request: request.as_bytes().to_vec(),
                        source: Some(crate::peers::to_contract(peer)),
                    };
                    self.publish_event(&session, edge_event::Event::Request(forwarded)).await;
                }
                None => self.respond(tx, &request, 481, "Call/Transaction Does Not Exist"),
            },
            (Method::Bye | Method::Info | Method::Update | Method::Prack, None) => {
                self.respond(tx, &request, 481, "Call/Transaction Does Not Exist")
            }
            _ => self.respond(tx, &request, 405, "Method Not Allowed"),
        }
    }

    async fn new_call(&mut self, tx: TxId, request: Message, peer: Peer) {
        self.stats.calls.inc();
        let session = SessionId::random();
        self.server_invites.insert(tx, session.clone());
        self.unclaimed.insert(session.clone(), (tx, request.clone(), Instant::now() + self.orphan_timeout));
        let call = IncomingCall {
            meta: contracts::meta(self.id.as_str()),
            edge_id: self.id.to_string(),
            edge_tx: tx.as_u64(),
            source: Some(crate::peers::to_contract(peer)),
            call_id: request.call_id().unwrap_or_default().to_owned(),
            request_uri: request.request_uri_str().unwrap_or_default().to_owned(),
            authenticated_user: String::new(),
            edge_uri: self.uri(peer.transport),
            session_id: session.to_string(),
            invite: request.as_bytes().to_vec(),
        };
        if let Err(e) = typed::publish(self.bus.as_ref(), &subjects::incoming_calls(), &call).await {
            tracing::warn!(error = %e, "new call not published");
            self.unclaimed.remove(&session);
            self.respond(tx, &request, 503, "Service Unavailable");
        }
    }

    async fn on_response(&mut self, tx: TxId, response: Message) {
        let Some((session, correlation, invite)) = self.clients.get(&tx).cloned() else { return };
        let status = response.status().unwrap_or(0);
        let forwarded = contracts::ResponseReceived { correlation, response: response.as_bytes().to_vec() };
        self.publish_event(&session, edge_event::Event::Response(forwarded)).await;
        if status >= 200 {
            if invite && status < 300 {
                // Keep it while 2xx retransmissions and forks may still arrive (Timer M).
                self.forget_later.push_back((Instant::now() + Duration::from_secs(32), tx));
            } else {
                self.clients.remove(&tx);
                self.correlations.remove(&(session, correlation));
            }
        }
    }

    /// Refuses calls and requests nobody acted on; forgets finished INVITE transactions.
    fn expire(&mut self) {
        let now = Instant::now();
        let lost: Vec<SessionId> = self.unclaimed.iter().filter(|(_, (_, _, d))| *d <= now).map(|(s, _)| s.clone()).collect();
        for session in lost {
            if let Some((tx, request, _)) = self.unclaimed.remove(&session) {
                self.stats.unclaimed.inc();
                tracing::warn!(%session, "no router or session node took the call");
                self.server_invites.remove(&tx);
                self.respond(tx, &request, 503, "Service Unavailable");
            }
        }
        let unanswered: Vec<TxId> = self.unanswered.iter().filter(|(_, (_, d))| *d <= now).map(|(t, _)| *t).collect();
        for tx in unanswered {
            if let Some((request, _)) = self.unanswered.remove(&tx) {
                self.stats.unanswered.inc();
                self.respond(tx, &request, 481, "Call/Transaction Does Not Exist");
            }
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
