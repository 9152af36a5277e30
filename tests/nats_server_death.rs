//! Calls and registrations survive the death of one NATS server of three: the cluster's
//! processes (an edge, a router, two session nodes, a media node) run on a 3-server
//! JetStream cluster with every bucket replicated three times, each process given the
//! address of the first server only. A phone registers; calls with audio both ways are
//! up; that server is killed with SIGKILL. The calls keep
//! their audio and end normally (their BYEs cross the bus), a new call reaches the
//! registered phone (its binding was replicated), no node is taken for dead while the
//! registry elects new leaders, and no session record is left.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tones::{hear, play};
use common::{Callmesh, rtp_range};
use media::audio::tone;
use session_core::peer::{AutoAnswerHandler, Call, IncomingCallPolicy, SimplePeer};
use testkit::nats::NatsCluster;

const CALLS: usize = 4;
const WAIT: Duration = Duration::from_secs(15);
const ALICE: f64 = 440.0;
const BOB: f64 = 1000.0;

/// Whether each of `calls` hears `freq` in a fresh half second (what was queued before,
/// 2 s at most, read first).
async fn hear_now(calls: &[Call], freq: f64) -> Vec<bool> {
    futures::future::join_all(calls.iter().map(|call| async move {
        hear(call, 2.0).await;
        let heard = hear(call, 0.5).await;
        tone::dominant_tone(&heard, call.sample_rate(), &[ALICE, BOB]).map(|(f, _)| f) == Some(freq)
    }))
    .await
}

async fn calls_of(peer: &SimplePeer, n: usize) -> Vec<Call> {
    let what = format!("{n} calls up at the far end");
    testkit::wait::until(&what, WAIT, || peer.active_calls().len() == n).await;
    peer.active_calls()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_registrations_survive_a_nats_server_death() {
    let mut nats = tokio::task::spawn_blocking(|| NatsCluster::start(3).expect("a 3-server JetStream cluster")).await.unwrap();
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let (min, max) = rtp_range();
    let config = format!(
        "[nats]\nreplicas = 3\n[[users]]\nusername = \"carol\"\npassword = \"carol\"\n\
         [[routes]]\nuser = '^bob$'\ntarget = \"{}\"\n[[routes]]\nuser = '^carol$'\ntarget = \"registered\"\n",
        bob.uri()
    );
    // Every process knows server 0 alone: it learns of the others from it, and must move
    // to them when it dies.
    let urls = nats.url(0).to_owned();
    let cm = tokio::task::spawn_blocking(move || {
        let media = format!("[media]\nrtp_ports = \"{min}-{max}\"\n");
        let roles = [
            ("edge", "edge-0", ""),
            ("router", "router-0", ""),
            ("session", "session-0", ""),
            ("session", "session-1", ""),
            ("media", "media-0", media.as_str()),
        ];
        Callmesh::processes_on(&urls, &config, &roles)
    })
    .await
    .unwrap();
    let carol =
        SimplePeer::builder("carol").credentials("carol", "carol").handler(Arc::new(AutoAnswerHandler)).build().await.unwrap();
    let registration = carol.register(&format!("sip:{}", cm.sip[0])).await.expect("carol registers");
    let alice = SimplePeer::new("alice").await.unwrap();
    let mut calls = Vec::new();
    for _ in 0..CALLS {
        let call = alice.call(&format!("sip:bob@{}", cm.sip[0])).await.unwrap();
        call.wait_established(WAIT).await.unwrap();
        calls.push(call);
    }
    let theirs = calls_of(&bob, CALLS).await;
    let mut players: Vec<_> = calls.iter().map(|c| play(c.clone(), ALICE)).collect();
    players.extend(theirs.iter().map(|c| play(c.clone(), BOB)));

    let killed = Instant::now();
    nats.kill(0);
    assert_eq!(hear_now(&calls, BOB).await, vec![true; CALLS], "alice's calls hear bob after the server's death");
    assert_eq!(hear_now(&theirs, ALICE).await, vec![true; CALLS], "bob's calls hear alice after the server's death");

    // A new call reaches carol at the binding she registered before.
    let to_carol = alice.call(&format!("sip:carol@{}", cm.sip[0])).await.unwrap();
    to_carol.wait_established(WAIT).await.expect("carol's registration survived");
    eprintln!("a new call established {} ms after the NATS server's death", killed.elapsed().as_millis());
    to_carol.hangup().await.unwrap();
    to_carol.wait_ended(WAIT).await.unwrap();

    // The calls end normally at both ends.
    for call in &calls {
        call.hangup().await.unwrap();
        call.wait_ended(WAIT).await.unwrap();
    }
    calls_of(&bob, 0).await;
    for p in players {
        p.await.unwrap();
    }
    if let Err(e) = registration.unregister().await {
        panic!("carol unregisters: {e}\n{}", cm.output());
    }
    let survivor = cluster::bus::NatsBus::connect(nats.url(1), "test").await.expect("connects to a survivor");
    let registry = cluster::registry::JetStreamRegistry::connect(survivor.client().clone(), &Default::default()).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let keys = cluster::registry::Registry::keys(&registry, cluster::registry::Bucket::Sessions, "").await;
        if keys.as_ref().is_ok_and(Vec::is_empty) {
            break;
        }
        assert!(Instant::now() < deadline, "session records left: {keys:?}\n{}", cm.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::task::spawn_blocking(move || {
        // The registry's outage while JetStream elected new leaders was not taken for the
        // death of every node: no call was taken over.
        let taken: u64 = [2, 3].iter().map(|i| cm.metric_of(*i, "session_calls_taken_over_total")).sum();
        assert_eq!(taken, 0, "no session node was declared dead:\n{}", cm.output());
        let deadline = Instant::now() + WAIT;
        while cm.metric_of(2, "session_calls_active") + cm.metric_of(3, "session_calls_active") > 0
            || cm.metric_of(4, "media_sessions_active") > 0
        {
            assert!(Instant::now() < deadline, "calls or relays left after the calls ended:\n{}", cm.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
}
