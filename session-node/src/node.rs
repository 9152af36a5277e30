//! The session node role: takes routed calls from the `sessions` queue group and runs each
//! as a call task; the task subscribes to its session's events while it owns the session.
//! Draining, the node leaves the queue group and lets its calls finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cluster::bus::typed;
use cluster::bus::{Bus, BusError};
use cluster::contracts::{EdgeEvent, MediaEvent, RoutedCall};
use cluster::drain::{Drain, InFlight};
use cluster::journal::Journal;
use cluster::metrics::{Histogram, RecoveryHistogram};
use cluster::ownership::SessionStore;
use cluster::registry::Registry;
use cluster::subjects::{self, NodeId, SessionId, groups};
use media_node::{MediaClient, Placement};
use tracing::Instrument;

use crate::call::Call;
use crate::gone::Gone;

/// A node whose heartbeat (every second) is older than this is gone, for media placement.
const MEMBER_TTL: Duration = Duration::from_secs(15);

/// Settings of a session node.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub node_id: NodeId,
    /// How long a session record stays owned without being written.
    pub lease: Duration,
    /// How long to wait for a media node's answer.
    pub media_timeout: Duration,
    pub drain: Drain,
}

/// Counters of a session node.
#[derive(Debug, Default)]
pub struct SessionStats {
    pub started: AtomicU64,
    /// Calls in progress.
    pub active: Arc<InFlight>,
    pub answered: AtomicU64,
    pub unanswered: AtomicU64,
    /// How long a call waits for its media allocation (the bus round trip included).
    pub media_allocation: Arc<Histogram>,
    /// Queue callers: from joining the queue to the first agent's offer, and to an agent
    /// put through (the speed of answer).
    pub acd_offer_wait: Histogram,
    pub acd_answer_wait: Histogram,
    /// Milliseconds queue callers and agents talked (agent occupancy is this over the
    /// agents' staffed time).
    pub acd_talk_ms: AtomicU64,
    /// Calls taken over from session nodes that died, and for each, the time from its
    /// owner's last heartbeat seen to the call resumed here.
    pub taken_over: AtomicU64,
    pub takeover: RecoveryHistogram,
    /// Edges seen to die (and not back since).
    pub edges_gone: AtomicU64,
}

impl SessionStats {
    pub(crate) fn finished(&self, answered: bool) {
        let counter = if answered { &self.answered } else { &self.unanswered };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What every call of a node shares.
pub(crate) struct Ctx {
    pub node: NodeId,
    pub bus: Arc<dyn Bus>,
    pub registry: Arc<dyn Registry>,
    pub store: SessionStore,
    pub media: MediaClient,
    pub stats: Arc<SessionStats>,
    /// Media nodes seen to die: their relays' calls move to another.
    pub media_gone: Gone,
    /// Edges seen to die: requests for them go through any edge (those in flight again).
    pub edges_gone: Gone,
    /// Where call detail records go.
    pub journal: Arc<dyn Journal>,
}

/// Starts a session node.
pub async fn start(
    config: SessionConfig,
    bus: Arc<dyn Bus>,
    registry: Arc<dyn Registry>,
    journal: Arc<dyn Journal>,
) -> Result<Arc<SessionStats>, BusError> {
    let mut routed = typed::queue_subscribe::<RoutedCall>(bus.as_ref(), &subjects::routed_calls(), groups::SESSIONS).await?;
    // Media nodes are chosen by the headroom their heartbeats announce (any node answers
    // while none is known).
    let mut media = MediaClient::new(bus.clone(), &config.node_id, config.media_timeout);
    match Placement::watch(registry.clone(), MEMBER_TTL).await {
        Ok(placement) => media = media.with_placement(placement),
        Err(e) => tracing::warn!(error = %e, "no view of the media nodes: any node takes each call"),
    }
    let stats = Arc::new(SessionStats { media_allocation: media.allocation_time(), ..Default::default() });
    let drain = config.drain.clone();
    let takeover_drain = drain.clone();
    let ctx = Arc::new(Ctx {
        store: SessionStore::new(registry.clone(), config.node_id.clone(), config.lease),
        media,
        node: config.node_id,
        bus,
        registry,
        stats: stats.clone(),
        media_gone: Gone::new(),
        edges_gone: Gone::new(),
        journal,
    });
    crate::call::originate::serve(ctx.clone()).await?;
    if let Err(e) = crate::takeover::start(ctx.clone(), takeover_drain).await {
        tracing::warn!(error = %e, "no membership watch: calls of dead session nodes are not taken over");
    }
    tokio::spawn(async move {
        loop {
            let call = tokio::select! {
                call = routed.next() => call,
                _ = drain.started() => None,
            };
            let Some(call) = call else { break };
            let ctx = ctx.clone();
            let session = call.message.call.as_ref().map(|c| c.session_id.clone()).unwrap_or_default();
            let span = tracing::info_span!("session.call", %session);
            call.follow(&span);
            tokio::spawn(take(ctx, call.message).instrument(span));
        }
        tracing::info!("session node draining: left the sessions queue group");
    });
    Ok(stats)
}

async fn take(ctx: Arc<Ctx>, routed: RoutedCall) {
    let _active = ctx.stats.active.begin();
    let target = routed.targets.first().cloned().unwrap_or_default();
    let call = if let Some(room) = target.strip_prefix(crate::call::conference::PREFIX) {
        Call::conference(ctx.clone(), routed, room).await
    } else if let Some(queue) = target.strip_prefix(crate::call::queue::PREFIX) {
        Call::queue(ctx.clone(), routed, queue).await
    } else {
        Call::new(ctx.clone(), routed)
    };
    let Some(call) = call else {
        tracing::warn!("routed call without a usable INVITE or target");
        return;
    };
    drive(ctx, call, async {}).await;
}

/// Runs `call` to its end: its session's events subscribed first (so no answer can arrive
/// unheard), then `subscribed` done, then the call driven.
pub(crate) async fn drive(ctx: Arc<Ctx>, call: Call, subscribed: impl std::future::Future<Output = ()>) {
    let id: SessionId = call.id.clone();
    // Subscribe before anything is sent, so no answer can arrive unheard.
    let events = typed::subscribe::<EdgeEvent>(ctx.bus.as_ref(), &subjects::session_events(&id)).await;
    let media = typed::subscribe::<MediaEvent>(ctx.bus.as_ref(), &subjects::session_media_events(&id)).await;
    let (Ok(events), Ok(media)) = (events, media) else {
        tracing::warn!(session = %id, "cannot subscribe to the session's events");
        return;
    };
    if ctx.bus.flush().await.is_err() {
        tracing::warn!(session = %id, "bus flush failed");
    }
    subscribed.await;
    ctx.stats.started.fetch_add(1, Ordering::Relaxed);
    call.run(events, media).await;
}
