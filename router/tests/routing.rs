//! The router on the in-process bus: each policy and each kind of target, observed as a
//! routed call to the session nodes or a refusal sent to the caller's edge; named in-process
//! interceptors, and an interceptor served on the bus as the deciders of `RequireManual`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cluster::bus::typed::{self, TypedSubscription};
use cluster::bus::{Bus, LocalBus};
use cluster::contracts::{self, Binding, EdgeCommand, IncomingCall, RoutedCall, edge_command};
use cluster::locations;
use cluster::registry::{Bucket, MemoryRegistry, Registry};
use cluster::subjects::{self, NodeId, SessionId};
use regex::Regex;
use router::{Interceptors, Route, RouterConfig, Target};
use session_core::interceptor::{CallInfo, Decision, SignalingInterceptor};
use session_core::policy::{IncomingCallPolicy, TimeoutAction};
use sip::message::{Builder, HeaderName, Message, Method};
use tokio::time::timeout;

struct Harness {
    bus: LocalBus,
    registry: Arc<MemoryRegistry>,
    routed: TypedSubscription<RoutedCall>,
    edge: TypedSubscription<EdgeCommand>,
}

fn route(user: &str, target: Target, policy: IncomingCallPolicy) -> Route {
    let user_re = Regex::new(user).unwrap();
    Route {
        name: user.into(),
        user: user_re,
        target,
        policy,
        ring_timeout_secs: 0,
        voicemail: None,
        interceptor: None,
        media: Default::default(),
    }
}

fn config(routes: Vec<Route>, interceptors: Interceptors) -> RouterConfig {
    RouterConfig {
        node_id: NodeId::new("router-1").unwrap(),
        routes,
        decision_timeout: Duration::from_millis(300),
        drain: Default::default(),
        interceptors,
        acd: Default::default(),
    }
}

async fn harness(routes: Vec<Route>) -> Harness {
    harness_with(routes, Interceptors::default()).await
}

async fn harness_with(routes: Vec<Route>, interceptors: Interceptors) -> Harness {
    let bus = LocalBus::default();
    let registry = Arc::new(MemoryRegistry::default());
    router::start(config(routes, interceptors), Arc::new(bus.clone()), registry.clone()).await.unwrap();
    let routed = typed::subscribe(&bus as &dyn Bus, &subjects::routed_calls()).await.unwrap();
    let edge = typed::subscribe(&bus as &dyn Bus, &subjects::edge_commands(&NodeId::new("edge-1").unwrap())).await.unwrap();
    Harness { bus, registry, routed, edge }
}

fn invite(to_user: &str, from: &str) -> Message {
    Builder::request(&Method::Invite, format!("sip:{to_user}@127.0.0.1:5060"))
        .header(HeaderName::Via, "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-1")
        .header(HeaderName::From, format!("<sip:{from}>;tag=caller"))
        .header(HeaderName::To, format!("<sip:{to_user}@127.0.0.1>"))
        .header(HeaderName::CallId, "call-1")
        .header(HeaderName::CSeq, "1 INVITE")
        .build()
        .unwrap()
}

impl Harness {
    async fn call(&self, to_user: &str, from: &str) {
        let invite = invite(to_user, from);
        let call = IncomingCall {
            edge_id: "edge-1".into(),
            edge_tx: 42,
            call_id: "call-1".into(),
            request_uri: invite.request_uri_str().unwrap().into(),
            session_id: SessionId::random().to_string(),
            invite: invite.as_bytes().clone(),
            ..Default::default()
        };
        typed::publish(&self.bus as &dyn Bus, &subjects::incoming_calls(), &call).await.unwrap();
    }

    async fn routed(&mut self) -> RoutedCall {
        timeout(Duration::from_secs(5), self.routed.next()).await.expect("waiting for a routed call").unwrap().message
    }

    async fn refused(&mut self) -> (u16, String) {
        let cmd = timeout(Duration::from_secs(5), self.edge.next()).await.expect("waiting for a refusal").unwrap().message;
        let Some(edge_command::Command::Respond(r)) = cmd.command else { panic!("expected a response command") };
        assert_eq!(r.tx, 42);
        let m = Message::parse_stream_message(r.response).unwrap();
        let tag = m.to_tag().unwrap();
        assert_eq!(cluster::tags::session_of(tag).map(|t| t.0.to_string()), Some(cmd.session_id), "our tag names the session");
        (m.status().unwrap(), m.reason().to_owned())
    }
}

#[tokio::test]
async fn a_uri_route_expands_its_template_and_unmatched_users_get_404() {
    let mut h =
        harness(vec![route(r"^1\d{3}$", Target::Uri("sip:${user}@127.0.0.1:5090".into()), IncomingCallPolicy::AcceptAll)]).await;
    h.call("1234", "alice@example.com").await;
    let routed = h.routed().await;
    assert_eq!((routed.targets, routed.route), (vec!["sip:1234@127.0.0.1:5090".to_owned()], r"^1\d{3}$".to_owned()));
    h.call("999", "alice@example.com").await;
    assert_eq!(h.refused().await, (404, "Not Found".into()));
}

#[tokio::test]
async fn reject_all_whitelist_and_busy_policies() {
    let target = || Target::Uri("sip:x@127.0.0.1".into());
    let whitelist = IncomingCallPolicy::AcceptWhitelist { allowed_domains: vec!["good.example".into()], allowed_users: vec![] };
    let mut h = harness(vec![
        route("^reject$", target(), IncomingCallPolicy::RejectAll),
        route("^white$", target(), whitelist),
        route("^busy$", target(), IncomingCallPolicy::RejectWhenBusy),
    ])
    .await;
    h.call("reject", "a@b").await;
    assert_eq!(h.refused().await.0, 603);
    h.call("white", "a@bad.example").await;
    assert_eq!(h.refused().await.0, 403);
    h.call("white", "a@good.example").await;
    assert_eq!(h.routed().await.targets.len(), 1);
    h.call("busy", "a@b").await;
    let routed = h.routed().await;
    assert_eq!(routed.busy_key, locations::busy_key("busy"), "the session marks the callee busy");
    h.registry.put(Bucket::Agents, &routed.busy_key, Bytes::from_static(b"s")).await.unwrap();
    h.call("busy", "a@b").await;
    assert_eq!(h.refused().await, (486, "Busy Here".into()));
}

#[tokio::test]
async fn registered_targets_use_the_binding_and_its_flow() {
    let mut h = harness(vec![route(".*", Target::Registered, IncomingCallPolicy::AcceptAll)]).await;
    h.call("bob", "a@b").await;
    assert_eq!(h.refused().await, (480, "Temporarily Unavailable".into()));
    let flow = contracts::Peer { transport: contracts::Transport::Udp as i32, addr: "127.0.0.1:6060".into() };
    locations::update(h.registry.as_ref() as &dyn Registry, "bob", "edge-2", contracts::unix_ms(), |b| {
        b.push(Binding {
            contact: "sip:bob@10.1.1.1:5062".into(),
            expires_unix_ms: contracts::unix_ms() + 60_000,
            source: Some(flow.clone()),
            edge_id: "edge-2".into(),
            ..Default::default()
        })
    })
    .await
    .unwrap();
    h.call("bob", "a@b").await;
    let routed = h.routed().await;
    assert_eq!(routed.targets, ["sip:bob@10.1.1.1:5062"]);
    assert_eq!((routed.target_edge_id.as_str(), routed.target_flow.unwrap().addr.as_str()), ("edge-2", "127.0.0.1:6060"));
}

#[tokio::test]
async fn manual_decisions_go_to_an_application_or_fail_with_480() {
    let target = Target::Uri("sip:agent@127.0.0.1".into());
    let queue = IncomingCallPolicy::QueueWithTimeout { timeout_secs: 7, on_timeout: TimeoutAction::SendToVoicemail };
    let mut h =
        harness(vec![route("^manual$", target.clone(), IncomingCallPolicy::RequireManual), route("^queue$", target, queue)])
            .await;
    h.call("manual", "a@b").await;
    assert_eq!(h.refused().await, (480, "No Call Handler".into()));

    let _decider = router::decider::serve(Arc::new(h.bus.clone()), Arc::new(ByCaller)).await.unwrap();
    h.call("manual", "vip@b").await;
    assert_eq!(h.routed().await.targets, ["sip:chosen@127.0.0.1"]);
    h.call("manual", "mallory@b").await;
    assert_eq!(h.refused().await, (403, "Not You".into()));
    h.call("manual", "patient@b").await;
    let routed = h.routed().await;
    assert_eq!((routed.ring_timeout_secs, routed.on_timeout), (9, contracts::TimeoutAction::Accept as i32));
    h.call("manual", "a@b").await;
    assert_eq!(h.routed().await.targets, ["sip:agent@127.0.0.1"], "accepted: the route's own target");

    h.call("queue", "a@b").await;
    let routed = h.routed().await;
    assert_eq!((routed.ring_timeout_secs, routed.on_timeout), (7, contracts::TimeoutAction::Voicemail as i32));
}

/// Decides by the caller: routes `vip`, refuses `mallory`, lets `patient` ring 9 s, takes
/// `slow` longer than the router waits, accepts the rest.
struct ByCaller;

#[async_trait]
impl SignalingInterceptor for ByCaller {
    async fn on_incoming_call(&self, call: &CallInfo) -> Decision {
        match call.from_user.as_str() {
            "vip" => Decision::Route { targets: vec!["sip:chosen@127.0.0.1".into()] },
            "mallory" => Decision::reject(403, "Not You"),
            "patient" => Decision::Defer { timeout: Some(Duration::from_secs(9)), on_timeout: TimeoutAction::Accept },
            "slow" => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Decision::Accept
            }
            "nobody" => Decision::Route { targets: vec![] },
            "weird" => Decision::reject(200, "OK?"),
            "manual" => Decision::Defer { timeout: None, on_timeout: TimeoutAction::Reject },
            _ => Decision::Accept,
        }
    }
}

#[tokio::test]
async fn a_route_naming_an_interceptor_lets_it_decide_instead_of_the_policy() {
    let mut interceptors = Interceptors::default();
    interceptors.insert("by-caller", Arc::new(ByCaller));
    let target = Target::Uri("sip:${user}@127.0.0.1:5090".into());
    let mut decided = route("^1", target.clone(), IncomingCallPolicy::RejectAll);
    decided.interceptor = Some("by-caller".into());
    let mut h = harness_with(vec![decided, route("^2", target, IncomingCallPolicy::RejectAll)], interceptors).await;

    h.call("100", "vip@b").await;
    assert_eq!(h.routed().await.targets, ["sip:chosen@127.0.0.1"]);
    h.call("100", "anyone@b").await;
    assert_eq!(h.routed().await.targets, ["sip:100@127.0.0.1:5090"], "accept: the route's target, the policy not asked");
    h.call("200", "vip@b").await;
    assert_eq!(h.refused().await.0, 603, "a route without the interceptor keeps its policy");
    h.call("100", "mallory@b").await;
    assert_eq!(h.refused().await, (403, "Not You".into()));
    h.call("100", "slow@b").await;
    assert_eq!(h.refused().await, (480, "No Call Handler".into()), "an interceptor's time is bounded");
    h.call("100", "nobody@b").await;
    assert_eq!(h.refused().await, (480, "No Route Targets".into()));
    h.call("100", "weird@b").await;
    assert_eq!(h.refused().await.0, 500, "a refusal is a failure status whatever the interceptor said");
    h.call("100", "manual@b").await;
    assert_eq!(h.refused().await, (480, "No Call Handler".into()), "deferred to the bus deciders, of which there are none");
}

#[tokio::test]
async fn a_router_refuses_to_start_with_a_route_naming_an_unknown_interceptor() {
    let mut r = route("^1", Target::Registered, IncomingCallPolicy::AcceptAll);
    r.interceptor = Some("hours".into());
    let mut interceptors = Interceptors::default();
    interceptors.insert("by-caller", Arc::new(ByCaller));
    let bus = Arc::new(LocalBus::default());
    let err = router::start(config(vec![r], interceptors), bus, Arc::new(MemoryRegistry::default())).await.unwrap_err();
    assert_eq!(err.to_string(), r#"route ^1: no interceptor named "hours" (registered: ["by-caller"])"#);
}
