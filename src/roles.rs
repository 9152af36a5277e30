//! Starting a node: one role or all of them, on NATS or (for `all` without a NATS URL) on
//! the in-process bus and registry; plus its membership heartbeat. Every role shares one
//! [`Drain`]: when it starts, each leaves its queue groups and finishes its work
//! (`crate::health` waits for that and says whether the node is ready).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use cluster::bus::{Bus, LocalBus, NatsBus};
use cluster::contracts::{self, NodeHeartbeat, NodeLoad};
use cluster::drain::Drain;
use cluster::journal::{JetStreamJournal, Journal, JournalConfig, MemoryJournal};
use cluster::membership::Heartbeat;
use cluster::registry::{JetStreamRegistry, MemoryRegistry, Registry, RegistryConfig};
use cluster::subjects::NodeId;
use edge_proxy::{EdgeConfig, EdgeHandle, RegistrarConfig};
use media_node::{MediaConfig, MediaNode};
use router::stats::RouterStats;
use router::{Interceptors, RouterConfig};
use session_node::{SessionConfig, SessionStats};
use sip::transaction::TransportKind;

use crate::advertise::{self, Advertised};
use crate::config::Validated;

/// What a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every role in one process.
    All,
    Edge,
    Router,
    Session,
    Media,
    /// The integrator's API (gRPC).
    Api,
}

impl Role {
    fn runs(self, role: Role) -> bool {
        self == Role::All || self == role
    }

    /// The role's name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Edge => "edge",
            Role::Router => "router",
            Role::Session => "session",
            Role::Media => "media",
            Role::Api => "api",
        }
    }

    fn wire(self) -> contracts::Role {
        match self {
            Role::All => contracts::Role::All,
            Role::Edge => contracts::Role::Edge,
            Role::Router => contracts::Role::Router,
            Role::Session => contracts::Role::Session,
            Role::Media => contracts::Role::Media,
            Role::Api => contracts::Role::Api,
        }
    }
}

/// A running node.
pub struct Node {
    pub role: Role,
    pub id: NodeId,
    /// `in-process`, or the NATS URL.
    pub bus_name: String,
    pub edge: Option<EdgeHandle>,
    pub router: Option<Arc<RouterStats>>,
    pub session: Option<Arc<SessionStats>>,
    pub media: Option<MediaNode>,
    /// The API, when this node serves it.
    pub api: Option<crate::api_role::RunningApi>,
    pub config: Validated,
    /// What the node puts in Via, Contact and SDP.
    pub advertised: Advertised,
    pub drain: Drain,
    pub(crate) bus: Arc<dyn Bus>,
    /// Taken by [`Node::stop`].
    pub(crate) heartbeat: Mutex<Option<Heartbeat>>,
}

impl Node {
    /// Stops the node (its heartbeat is removed, so others see it leave).
    pub async fn stop(&self) {
        let heartbeat = self.heartbeat.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(hb) = heartbeat {
            let _ = hb.leave().await;
        }
        if let Some(edge) = &self.edge {
            edge.stop();
        }
    }
}

/// This process's node id: `node.id`, else the role and the process id.
pub fn node_id(role: Role, config: &Validated) -> anyhow::Result<NodeId> {
    let id = config.node_id.clone().unwrap_or_else(|| format!("{}-{}", role.name(), std::process::id()));
    Ok(NodeId::new(id)?)
}

/// What a node stands on: the bus, the registry and the journals, and the bus's name.
pub(crate) struct Backend {
    pub bus: Arc<dyn Bus>,
    pub registry: Arc<dyn Registry>,
    pub journal: Arc<dyn Journal>,
    pub name: String,
}

async fn backend(role: Role, config: &Validated, id: &NodeId) -> anyhow::Result<Backend> {
    match (&config.nats_url, role) {
        (None, Role::All) => {
            let (bus, journal) = (LocalBus::default(), MemoryJournal::default());
            journal.capture(&bus).await.context("keeping the event feed")?;
            let (bus, registry, journal) = (Arc::new(bus), Arc::new(MemoryRegistry::default()), Arc::new(journal));
            Ok(Backend { bus, registry, journal, name: "in-process".into() })
        }
        (None, _) => bail!("nats.url (or --nats) is required to run one role of a cluster"),
        (Some(url), _) => {
            let bus = NatsBus::connect(url, id.as_str()).await.with_context(|| format!("connecting to NATS at {url}"))?;
            let registry = JetStreamRegistry::connect(bus.client().clone(), &RegistryConfig::with_replicas(config.replicas))
                .await
                .context("opening the JetStream registry")?;
            let journal = JetStreamJournal::connect(bus.client().clone(), &JournalConfig::with_replicas(config.replicas))
                .await
                .context("opening the JetStream journals")?;
            Ok(Backend { bus: Arc::new(bus), registry: Arc::new(registry), journal: Arc::new(journal), name: url.clone() })
        }
    }
}

/// What a program embedding Callmesh adds to a node.
#[derive(Debug, Clone, Default)]
pub struct Extensions {
    /// Interceptors by name, for routes with `interceptor = "<name>"` (router role).
    pub interceptors: Interceptors,
}

/// Starts `role` with `config` as node `id`.
pub async fn start(role: Role, id: NodeId, config: Validated) -> anyhow::Result<Node> {
    start_with(role, id, config, Extensions::default()).await
}

/// Starts `role` with `config` as node `id`, with what an embedding program adds.
pub async fn start_with(role: Role, id: NodeId, config: Validated, extensions: Extensions) -> anyhow::Result<Node> {
    let Backend { bus, registry, journal, name: bus_name } = backend(role, &config, &id).await?;
    let advertised = advertise::resolve(&config).await;
    let drain = Drain::default();
    let mut node = Node {
        role,
        id: id.clone(),
        bus_name,
        edge: None,
        router: None,
        session: None,
        media: None,
        api: None,
        config: config.clone(),
        advertised: advertised.clone(),
        drain: drain.clone(),
        bus: bus.clone(),
        heartbeat: Mutex::new(None),
    };
    if role.runs(Role::Media) {
        let media = MediaConfig {
            node_id: id.clone(),
            bind_ip: config.media_bind,
            advertise_ip: advertised.media,
            zone: config.media_zone.clone(),
            port_min: config.rtp_ports.min,
            port_max: config.rtp_ports.max,
            no_rtp_timeout: config.no_rtp_timeout,
            prompts_dir: config.prompts_dir.clone(),
            recordings_dir: config.recordings_dir.clone(),
            limits: config.media_limits,
            drain: drain.clone(),
        };
        let media = MediaNode::start(media, bus.clone()).await?;
        media.reap_with(registry.clone(), media_node::reaper::SWEEP_INTERVAL);
        node.media = Some(media);
    }
    if role.runs(Role::Session) {
        let session = SessionConfig {
            node_id: id.clone(),
            lease: config.lease,
            media_timeout: Duration::from_secs(2),
            drain: drain.clone(),
        };
        node.session = Some(session_node::start(session, bus.clone(), registry.clone(), journal.clone()).await?);
    }
    if role.runs(Role::Router) {
        let router = RouterConfig {
            node_id: id.clone(),
            routes: config.routes.clone(),
            decision_timeout: Duration::from_secs(5),
            drain: drain.clone(),
            interceptors: extensions.interceptors,
            acd: router::acd::service::AcdSettings { queues: config.acd.queues.clone(), agents: config.acd.agents.clone() },
        };
        node.router = Some(router::start(router, bus.clone(), registry.clone()).await?);
    }
    if role.runs(Role::Edge) {
        let registrar = RegistrarConfig {
            realm: config.realm.clone(),
            users: config.users.clone(),
            secret: config.secret.clone(),
            ..Default::default()
        };
        let edge = EdgeConfig {
            node_id: id.clone(),
            listen: config.sip_listen,
            advertise: Some(advertised.sip.clone()),
            registrar,
            orphan_timeout: config.orphan_timeout,
            reuse_port: config.reuse_port,
            drain: drain.clone(),
        };
        node.edge = Some(
            edge_proxy::start(edge, bus.clone(), registry.clone())
                .await
                .with_context(|| format!("starting the SIP edge on {}", config.sip_listen))?,
        );
    }
    if role.runs(Role::Api)
        && let Some(listen) = config.api.listen
    {
        node.api = Some(crate::api_role::start(listen, &node, registry.clone(), journal.clone()).await?);
    }
    serve_drain(&node).await.context("subscribing to drain requests")?;
    // Every role's subscriptions reach the server before the node says it is ready: a peer
    // that starts sending at once (a call right after start) finds them there.
    bus.flush().await.context("flushing the bus subscriptions")?;
    node.heartbeat = Mutex::new(Some(heartbeat(&node, registry)));
    crate::kube::spawn_deletion_watch(&config.kube, drain);
    Ok(node)
}

/// Drains the node when the API asks (`DrainNode` on `callmesh.node.<id>.drain`), as
/// SIGTERM does, without stopping it.
async fn serve_drain(node: &Node) -> Result<(), cluster::bus::BusError> {
    let subject = cluster::subjects::node_drain(&node.id);
    let mut asked = cluster::bus::typed::subscribe::<contracts::DrainNode>(node.bus.as_ref(), &subject).await?;
    let (bus, drain) = (node.bus.clone(), node.drain.clone());
    tokio::spawn(async move {
        while let Some(request) = asked.next().await {
            tracing::warn!(by = ?request.message.meta.map(|m| m.sender), "drain asked through the API");
            drain.start();
            let _ = cluster::bus::typed::reply(bus.as_ref(), &request.raw, &contracts::DrainNodeReply { draining: true }).await;
        }
    });
    Ok(())
}

fn heartbeat(node: &Node, registry: Arc<dyn Registry>) -> Heartbeat {
    let (id, role, started) = (node.id.to_string(), node.role.wire(), contracts::unix_ms());
    let mut addresses = Vec::new();
    if let Some(edge) = &node.edge {
        addresses.push(format!("sip:{}", edge.sent_by(TransportKind::Udp)));
    }
    if let Some(http) = node.config.http_listen {
        addresses.push(format!("http://{http}"));
    }
    let (session, media, drain) = (node.session.clone(), node.media.clone(), node.drain.clone());
    let zone = if node.media.is_some() { node.config.media_zone.clone() } else { String::new() };
    // Each second: a session node silent for three is dead to the others, who take its
    // calls over (`session_node::takeover`).
    Heartbeat::start(registry, Duration::from_secs(1), move || NodeHeartbeat {
        node_id: id.clone(),
        role: role as i32,
        addresses: addresses.clone(),
        load: Some(NodeLoad {
            active_calls: session.as_ref().map(|s| s.active.count() as u32).unwrap_or(0),
            cpu_percent: media.as_ref().map_or(0.0, |m| m.cpu_percent()),
            free_rtp_ports: media.as_ref().map(|m| m.free_port_pairs() as u32 * 2).unwrap_or(0),
            declining: media.as_ref().is_some_and(|m| m.declines().is_some()),
        }),
        started_at_unix_ms: started,
        version: env!("CARGO_PKG_VERSION").into(),
        draining: drain.is_draining(),
        zone: zone.clone(),
        ..Default::default()
    })
}
