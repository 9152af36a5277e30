//! The ACD over the registry on a real nats-server (JetStream KV), as routers in a cluster
//! run it: two routers on two connections, each with its own watch-fed cache, plan at once
//! with different draws for six callers and three agents. Each agent is offered once;
//! answers reported to the other router bridge; when those calls end the remaining callers
//! are offered the agents; in the end no caller is left in the bucket. And an abandoned
//! caller's place, kept by one router, is seen by the other and taken back by one call.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cluster::bus::NatsBus;
use cluster::registry::{JetStreamRegistry, Registry, RegistryConfig};
use common::offers;
use router::acd::model::Tier;
use router::acd::{Acd, AcdEvent, AcdStore, AgentSpec, CallerRecord, QueueSpec, RegistryStore, Status, Strategy};
use testkit::nats::NatsServer;

async fn router_store(server: &NatsServer, name: &str) -> RegistryStore {
    let bus = NatsBus::connect(&server.url, name).await.expect("connects to NATS");
    let registry: Arc<dyn Registry> =
        Arc::new(JetStreamRegistry::connect(bus.client().clone(), &RegistryConfig::default()).await.expect("buckets"));
    RegistryStore::start(registry).await.expect("the ACD store watches its bucket")
}

/// Waits until `store`'s cache shows `n` callers (its watch caught up), at most 5 s.
async fn callers_seen(store: &RegistryStore, n: usize) {
    let what = format!("the router's watch to show {n} callers");
    testkit::wait::until_async(&what, Duration::from_secs(5), || async { store.callers().await.unwrap().len() == n }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_on_jetstream_offer_each_agent_once_and_serve_every_caller() {
    let server = NatsServer::start().expect("nats-server starts");
    let (sa, sb) = (router_store(&server, "router-a").await, router_store(&server, "router-b").await);
    let agents: Vec<AgentSpec> =
        (1..=3).map(|i| AgentSpec::new(&format!("agent{i}"), vec![Tier { queue: "q".into(), level: 1, position: i }])).collect();
    let queue = QueueSpec::new("q", Strategy::Random);
    let (a, b) = (Acd::new("router-a", vec![queue.clone()], agents.clone()), Acd::new("router-b", vec![queue], agents));
    a.ensure_agents(&sa, |_| Status::Available, 0).await.unwrap();
    b.ensure_agents(&sb, |_| Status::Available, 0).await.unwrap();
    for i in 0..6 {
        a.join(&sa, CallerRecord::new(&format!("call-{i}"), "q", 0, i)).await.unwrap();
    }
    callers_seen(&sb, 6).await;

    let (mut da, mut db) = ([5u64, 1, 3].into_iter().cycle(), [1u64, 3, 5].into_iter().cycle());
    let (ea, eb) = tokio::join!(a.tick(&sa, 1_000, |_| da.next().unwrap()), b.tick(&sb, 1_000, |_| db.next().unwrap()));
    let first: Vec<_> = offers(&ea.unwrap()).into_iter().chain(offers(&eb.unwrap())).collect();
    let agents_offered: BTreeSet<&String> = first.iter().map(|(_, a)| a).collect();
    assert_eq!(agents_offered.len(), first.len(), "no agent offered twice: {first:?}");
    let callers_offered: BTreeSet<&String> = first.iter().map(|(c, _)| c).collect();
    assert_eq!(callers_offered.len(), first.len(), "no caller offered to two agents: {first:?}");
    assert!(!first.is_empty() && first.len() <= 3, "{first:?}");

    // The answers reach the other router; each bridges.
    for (caller, agent) in &first {
        let events = b.answered(&sb, caller, agent, 2_000).await.unwrap();
        assert_eq!(events.first(), Some(&AcdEvent::Bridge { caller: caller.clone(), agent: agent.clone() }));
    }
    let mut served: BTreeSet<String> = first.iter().map(|(c, _)| c.clone()).collect();
    let mut now = 3_000;
    while served.len() < 6 {
        // The calls in progress end; whoever is free is offered the next callers.
        for caller in served.clone() {
            let _ = a.ended(&sa, &caller, now).await.unwrap();
        }
        now += 1_000;
        // Router a's cache shows the agents free once its watch has seen the calls end.
        let freed = || async { sa.agents().await.unwrap().values().filter(|(r, _)| r.free(now)).count() > 0 };
        testkit::wait::until_async("a free agent in router a's cache", Duration::from_secs(5), freed).await;
        let offered = offers(&a.tick(&sa, now, |n| n / 2).await.unwrap());
        assert!(!offered.is_empty(), "free agents are offered the waiting callers ({served:?} served)");
        for (caller, agent) in offered {
            assert!(served.insert(caller.clone()), "{caller} served once");
            let events = a.answered(&sa, &caller, &agent, now).await.unwrap();
            assert!(matches!(events.first(), Some(AcdEvent::Bridge { .. })), "{events:?}");
        }
    }
    for caller in &served {
        a.ended(&sa, caller, now + 1_000).await.unwrap();
    }
    callers_seen(&sb, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_callers_place_is_shared_by_routers_and_taken_back_once() {
    let server = NatsServer::start().expect("nats-server starts");
    let (sa, sb) = (router_store(&server, "router-a").await, router_store(&server, "router-b").await);
    let mut queue = QueueSpec::new("q.sales", Strategy::LongestIdleAgent);
    queue.resume_ms = 60_000;
    let (a, b) = (Acd::new("router-a", vec![queue.clone()], vec![]), Acd::new("router-b", vec![queue], vec![]));
    let who = "sip:alice.smith@example.com";
    let mut first = CallerRecord::new("call-1", "q.sales", 2, 1_000);
    first.who = who.into();
    a.join(&sa, first).await.unwrap();
    a.left(&sa, "call-1", 4_000).await.unwrap();
    // Router b's watch sees the place under its queue and caller, dots and all.
    let seen = || async { sb.places().await.unwrap().contains_key(&("q.sales".to_owned(), who.to_owned())) };
    testkit::wait::until_async("router b's watch to show the place", Duration::from_secs(5), seen).await;
    // The caller calls back through router b, twice at once: one call takes the place.
    let again = |session: &str| {
        let mut c = CallerRecord::new(session, "q.sales", 0, 10_000);
        c.who = who.into();
        c
    };
    let (ea, eb) = tokio::join!(b.join(&sb, again("call-2")), a.join(&sa, again("call-3")));
    let waited: Vec<u64> = ea
        .unwrap()
        .into_iter()
        .chain(eb.unwrap())
        .filter_map(|e| match e {
            AcdEvent::Joined { waited_before_ms, .. } => Some(waited_before_ms),
            _ => None,
        })
        .collect();
    assert_eq!(BTreeSet::from_iter(waited.iter().copied()), BTreeSet::from([0, 9_000]), "one resumed: {waited:?}");
    assert!(sb.place("q.sales", who).await.unwrap().is_none(), "the place is gone from the bucket");
}
