//! The router role: takes new calls from the `routers` queue group, finds the route, lets
//! the route's interceptor decide, and either publishes a routed call to the session nodes
//! or has the caller's edge refuse it with a precise status.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cluster::bus::typed;
use cluster::bus::{Bus, BusError};
use cluster::contracts::{self, CallDecision, EdgeCommand, IncomingCall, RoutedCall, edge_command};
use cluster::drain::Drain;
use cluster::locations;
use cluster::registry::{Bucket, Registry};
use cluster::subjects::{self, NodeId, SessionId, groups};
use session_core::interceptor::{BusyCheck, CallInfo, Decision, PolicyInterceptor, SignalingInterceptor};
use session_core::policy::{IncomingCallPolicy, TimeoutAction};
use sip::message::Message;
use tracing::Instrument;

use crate::acd::service::{AcdSettings, AcdStartError};
use crate::decider::{self, call_info};
use crate::routes::{self, Route, Target};
use crate::stats::RouterStats;

/// Settings of a router.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    pub node_id: NodeId,
    pub routes: Vec<Route>,
    /// How long a `RequireManual` call waits for a deciding application (and a route's
    /// interceptor may take).
    pub decision_timeout: Duration,
    /// Draining, the router leaves the `routers` queue group and finishes the calls it holds.
    pub drain: Drain,
    /// In-process interceptors by name, for routes that name one instead of a policy.
    pub interceptors: Interceptors,
    /// The queues and agents of the ACD (none: no ACD).
    pub acd: AcdSettings,
}

/// Signaling interceptors an embedding program registers by name; a route with
/// `interceptor = "<name>"` lets that one decide its calls instead of the route's policy.
#[derive(Clone, Default)]
pub struct Interceptors(HashMap<String, Arc<dyn SignalingInterceptor>>);

impl Interceptors {
    /// Registers `interceptor` as `name` (replacing one of that name).
    pub fn insert(&mut self, name: &str, interceptor: Arc<dyn SignalingInterceptor>) {
        self.0.insert(name.to_owned(), interceptor);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn SignalingInterceptor>> {
        self.0.get(name)
    }

    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

impl std::fmt::Debug for Interceptors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// Why a router cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("route {route}: no interceptor named {name:?} (registered: {registered:?})")]
    UnknownInterceptor { route: String, name: String, registered: Vec<String> },
    #[error("the ACD: {0}")]
    Acd(#[from] AcdStartError),
}

struct Router {
    config: RouterConfig,
    bus: Arc<dyn Bus>,
    registry: Arc<dyn Registry>,
    stats: Arc<RouterStats>,
}

/// Starts a router.
pub async fn start(config: RouterConfig, bus: Arc<dyn Bus>, registry: Arc<dyn Registry>) -> Result<Arc<RouterStats>, StartError> {
    for route in &config.routes {
        if let Some(name) = route.interceptor.as_deref().filter(|n| config.interceptors.get(n).is_none()) {
            let registered = config.interceptors.names().into_iter().map(str::to_owned).collect();
            return Err(StartError::UnknownInterceptor { route: route.name.clone(), name: name.to_owned(), registered });
        }
    }
    let mut calls = typed::queue_subscribe::<IncomingCall>(bus.as_ref(), &subjects::incoming_calls(), groups::ROUTERS).await?;
    let acd = config.acd.clone();
    crate::acd::service::start(acd, config.node_id.clone(), bus.clone(), registry.clone(), config.drain.clone()).await?;
    let stats = Arc::new(RouterStats::default());
    let drain = config.drain.clone();
    let router = Arc::new(Router { config, bus, registry, stats: stats.clone() });
    tokio::spawn(async move {
        loop {
            let call = tokio::select! {
                call = calls.next() => call,
                _ = drain.started() => None,
            };
            let Some(call) = call else { break };
            let router = router.clone();
            let working = router.stats.in_flight.begin();
            let span = tracing::info_span!("router.route", session = %call.message.session_id, call_id = %call.message.call_id);
            call.follow(&span);
            tokio::spawn(
                async move {
                    router.route(call.message).await;
                    drop(working);
                }
                .instrument(span),
            );
        }
        tracing::info!("router draining: left the routers queue group");
    });
    Ok(stats)
}

/// Busy when the user's busy mark exists in the registry.
struct RegistryBusy(Arc<dyn Registry>);

#[async_trait]
impl BusyCheck for RegistryBusy {
    async fn is_busy(&self, call: &CallInfo) -> bool {
        matches!(self.0.get(Bucket::Agents, &locations::busy_key(&call.target_user)).await, Ok(Some(_)))
    }
}

impl Router {
    async fn route(&self, call: IncomingCall) {
        let Ok(invite) = Message::parse_datagram(call.invite.clone()) else {
            tracing::warn!(call_id = %call.call_id, "routed INVITE does not parse");
            return;
        };
        let info = call_info(&call, &invite);
        let Some(route) = routes::find(&self.config.routes, &info.target_user) else {
            return self.reject(&call, &invite, 404, "Not Found").await;
        };
        let decision = match route.interceptor.as_deref().and_then(|name| self.config.interceptors.get(name)) {
            // An interceptor that does not answer in time is a decider that did not.
            Some(interceptor) => tokio::time::timeout(self.config.decision_timeout, interceptor.on_incoming_call(&info))
                .await
                .unwrap_or_else(|_| Decision::reject(480, "No Call Handler")),
            None => {
                let busy = Arc::new(RegistryBusy(self.registry.clone()));
                PolicyInterceptor::new(route.policy.clone()).with_busy_check(busy).on_incoming_call(&info).await
            }
        };
        let decision = match decision {
            Decision::Defer { timeout: None, .. } => self.ask_decider(&call).await,
            other => other,
        };
        match decision {
            Decision::Reject { status, reason } => self.reject(&call, &invite, status, &reason).await,
            Decision::Route { targets } if targets.is_empty() => self.reject(&call, &invite, 480, "No Route Targets").await,
            Decision::Route { targets } => self.send(call, route, targets, None).await,
            Decision::Accept => self.to_target(call, &invite, route, &info, None).await,
            Decision::Defer { timeout, on_timeout } => {
                self.to_target(call, &invite, route, &info, timeout.map(|t| (t.as_secs() as u32, on_timeout))).await
            }
            // A custom action runs where it was registered: an SDK peer, not the router.
            Decision::Custom { action } => {
                tracing::warn!(call_id = %call.call_id, %action, "no such custom action in the router");
                self.reject(&call, &invite, 500, "No Such Call Action").await
            }
        }
    }

    /// `RequireManual`: a deciding application subscribed to `calls.decide` chooses.
    async fn ask_decider(&self, call: &IncomingCall) -> Decision {
        let reply =
            typed::request::<_, CallDecision>(self.bus.as_ref(), &subjects::call_decisions(), call, self.config.decision_timeout)
                .await;
        decider::from_wire(reply.ok())
    }

    async fn to_target(
        &self,
        call: IncomingCall,
        invite: &Message,
        route: &Route,
        info: &CallInfo,
        queue: Option<(u32, TimeoutAction)>,
    ) {
        match &route.target {
            Target::Uri(_) | Target::Conference(_) | Target::Queue(_) => {
                let target = route.target.expand(&info.target_user).unwrap_or_default();
                self.send(call, route, vec![target], queue).await
            }
            Target::Registered => {
                let now = contracts::unix_ms();
                let mut bindings = locations::lookup(self.registry.as_ref(), &info.target_user, now).await.unwrap_or_default();
                if bindings.is_empty() {
                    return self.reject(&call, invite, 480, "Temporarily Unavailable").await;
                }
                bindings.sort_by_key(|b| std::cmp::Reverse(b.expires_unix_ms));
                let first = bindings[0].clone();
                let targets = bindings.into_iter().map(|b| b.contact).collect();
                let routed = self.routed(call, route, targets, queue);
                self.publish(RoutedCall { target_edge_id: first.edge_id, target_flow: first.source, ..routed }).await
            }
        }
    }

    fn routed(&self, call: IncomingCall, route: &Route, targets: Vec<String>, queue: Option<(u32, TimeoutAction)>) -> RoutedCall {
        let (ring_timeout_secs, on_timeout) = queue.unwrap_or((route.ring_timeout_secs, TimeoutAction::Reject));
        let on_timeout = decider::timeout_to_wire(on_timeout);
        let invite = Message::parse_datagram(call.invite.clone()).ok();
        let callee = invite.as_ref().and_then(|m| m.request_uri().ok().and_then(|u| u.user().map(str::to_owned)));
        let busy_key = match route.policy {
            IncomingCallPolicy::RejectWhenBusy => locations::busy_key(callee.as_deref().unwrap_or_default()),
            _ => String::new(),
        };
        // The queues' agents on this call (calling or called) are busy while it is up.
        let caller = invite.as_ref().map(|m| call_info(&call, m).from_user);
        let is_agent = |user: &String| self.config.acd.agents.iter().any(|(a, _)| a.id.eq_ignore_ascii_case(user));
        let agents_busy = match route.target {
            Target::Queue(_) => Vec::new(),
            _ => [callee, caller].into_iter().flatten().filter(is_agent).map(|u| locations::busy_key(&u)).collect(),
        };
        RoutedCall {
            meta: contracts::meta(self.config.node_id.as_str()),
            call: Some(call),
            targets,
            route: route.name.clone(),
            ring_timeout_secs,
            on_timeout: on_timeout as i32,
            voicemail: route.voicemail.clone().unwrap_or_default(),
            target_edge_id: String::new(),
            target_flow: None,
            busy_key,
            record: route.media.record,
            greeting: route.media.greeting.clone().unwrap_or_default(),
            music_on_hold: route.media.music_on_hold.clone().unwrap_or_default(),
            media_zone: route.media.zone.clone().unwrap_or_default(),
            announce_secs: route.media.announce_secs.unwrap_or(0),
            queue_priority: route.media.priority,
            queue_requires: route.media.requires.clone().unwrap_or_default(),
            agents_busy,
        }
    }

    async fn send(&self, call: IncomingCall, route: &Route, targets: Vec<String>, queue: Option<(u32, TimeoutAction)>) {
        let routed = self.routed(call, route, targets, queue);
        self.publish(routed).await
    }

    async fn publish(&self, routed: RoutedCall) {
        self.stats.routed.inc();
        if let Err(e) = typed::publish(self.bus.as_ref(), &subjects::routed_calls(), &routed).await {
            tracing::warn!(error = %e, "routed call not published");
        }
    }

    async fn reject(&self, call: &IncomingCall, invite: &Message, status: u16, reason: &str) {
        self.stats.rejected.inc();
        // An interceptor's refusal is a final failure status, whatever number it chose.
        let status = if (300..=699).contains(&status) { status } else { 500 };
        let Ok(session) = SessionId::new(call.session_id.clone()) else { return };
        let Ok(edge) = NodeId::new(call.edge_id.clone()) else { return };
        let Ok(response) = session_core::engine::refusal(invite, session.as_str(), status, reason) else { return };
        let command = EdgeCommand {
            meta: contracts::meta(self.config.node_id.as_str()),
            session_id: session.to_string(),
            command: Some(edge_command::Command::Respond(contracts::Respond {
                tx: call.edge_tx,
                response: response.as_bytes().clone(),
            })),
        };
        if let Err(e) = typed::publish(self.bus.as_ref(), &subjects::edge_commands(&edge), &command).await {
            tracing::warn!(error = %e, "rejection not sent to the edge");
        }
    }
}
