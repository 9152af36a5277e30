//! The session node role: takes routed calls from the `sessions` queue group and runs each
//! as a call task; the task subscribes to its session's events while it owns the session.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cluster::bus::typed;
use cluster::bus::{Bus, BusError};
use cluster::contracts::{EdgeEvent, MediaEvent, RoutedCall};
use cluster::ownership::SessionStore;
use cluster::registry::Registry;
use cluster::subjects::{self, NodeId, SessionId, groups};
use media_node::MediaClient;

use crate::call::Call;

/// Settings of a session node.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub node_id: NodeId,
    /// How long a session record stays owned without being written.
    pub lease: Duration,
    /// How long to wait for a media node's answer.
    pub media_timeout: Duration,
}

/// Counters of a session node.
#[derive(Debug, Default)]
pub struct SessionStats {
    pub started: AtomicU64,
    pub active: AtomicU64,
    pub answered: AtomicU64,
    pub unanswered: AtomicU64,
}

impl SessionStats {
    pub(crate) fn finished(&self, answered: bool) {
        self.active.fetch_sub(1, Ordering::Relaxed);
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
}

/// Starts a session node.
pub async fn start(config: SessionConfig, bus: Arc<dyn Bus>, registry: Arc<dyn Registry>) -> Result<Arc<SessionStats>, BusError> {
    let mut routed = typed::queue_subscribe::<RoutedCall>(bus.as_ref(), &subjects::routed_calls(), groups::SESSIONS).await?;
    let stats = Arc::new(SessionStats::default());
    let ctx = Arc::new(Ctx {
        store: SessionStore::new(registry.clone(), config.node_id.clone(), config.lease),
        media: MediaClient::new(bus.clone(), &config.node_id, config.media_timeout),
        node: config.node_id,
        bus,
        registry,
        stats: stats.clone(),
    });
    tokio::spawn(async move {
        while let Some(call) = routed.next().await {
            let ctx = ctx.clone();
            tokio::spawn(async move { take(ctx, call.message).await });
        }
    });
    Ok(stats)
}

async fn take(ctx: Arc<Ctx>, routed: RoutedCall) {
    let Some(call) = Call::new(ctx.clone(), routed) else {
        tracing::warn!("routed call without a usable INVITE or target");
        return;
    };
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
    ctx.stats.started.fetch_add(1, Ordering::Relaxed);
    ctx.stats.active.fetch_add(1, Ordering::Relaxed);
    call.run(events, media).await;
}
