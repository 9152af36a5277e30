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

use common::faults::{ALICE, BOB, MEDIA, SESSION_0, SESSION_1, hang_up, hear_now, talking, two_session_nodes};
use session_core::peer::{AutoAnswerHandler, IncomingCallPolicy, SimplePeer};
use testkit::nats::NatsCluster;

const CALLS: usize = 4;
const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_registrations_survive_a_nats_server_death() {
    let mut nats = tokio::task::spawn_blocking(|| NatsCluster::start(3).expect("a 3-server JetStream cluster")).await.unwrap();
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let config = format!(
        "[nats]\nreplicas = 3\n[[users]]\nusername = \"carol\"\npassword = \"carol\"\n\
         [[routes]]\nuser = '^bob$'\ntarget = \"{}\"\n[[routes]]\nuser = '^carol$'\ntarget = \"registered\"\n",
        bob.uri()
    );
    // Every process knows server 0 alone: it learns of the others from it, and must move
    // to them when it dies.
    let urls = nats.url(0).to_owned();
    let cm = tokio::task::spawn_blocking(move || two_session_nodes(Some(&urls), &config)).await.unwrap();
    let carol =
        SimplePeer::builder("carol").credentials("carol", "carol").handler(Arc::new(AutoAnswerHandler)).build().await.unwrap();
    let registration = carol.register(&format!("sip:{}", cm.sip[0])).await.expect("carol registers");
    let alice = SimplePeer::new("alice").await.unwrap();
    let (calls, theirs, players) = talking(&alice, &bob, &format!("sip:bob@{}", cm.sip[0]), CALLS).await;

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
    hang_up(&calls, &bob, players).await;
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
        let taken: u64 = [SESSION_0, SESSION_1].iter().map(|i| cm.metric_of(*i, "session_calls_taken_over_total")).sum();
        assert_eq!(taken, 0, "no session node was declared dead:\n{}", cm.output());
        let deadline = Instant::now() + WAIT;
        while cm.metric_of(SESSION_0, "session_calls_active") + cm.metric_of(SESSION_1, "session_calls_active") > 0
            || cm.metric_of(MEDIA, "media_sessions_active") > 0
        {
            assert!(Instant::now() < deadline, "calls or relays left after the calls ended:\n{}", cm.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
}
