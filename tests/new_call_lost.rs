//! A new call lost between the nodes — in the socket of a session node that dies, or held
//! up in one that stalls — is published again by its edge under a new session id, and put
//! through once: a cluster of processes on a real nats-server (an edge, a router, session
//! nodes, a media node), a session node frozen with SIGSTOP so the calls the queue group
//! gives it wait there. Killed, its copy is lost for good and another node takes the call
//! published again; resumed, both copies run and the edge gives the call to the first
//! that acts: the callee rings once, the other copy lets go of its relay.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Callmesh;
use common::faults::{one_of_each, two_session_nodes};
use session_core::peer::{IncomingCallPolicy, SimplePeer};

const WAIT: Duration = Duration::from_secs(10);
/// Calls tried at most until the queue group gives one to the frozen node (each has an
/// even chance).
const MOST_CALLS: usize = 16;

fn route_to(bob: &SimplePeer) -> String {
    format!("[[routes]]\nuser = '^bob$'\ntarget = \"{}\"\n", bob.uri())
}

/// Waits (bounded) until `metric` of process `i` satisfies `ok`.
async fn metric_until(cm: &Callmesh, i: usize, metric: &str, ok: impl Fn(u64) -> bool) {
    let what = format!("{metric} of process {i}");
    testkit::wait::until(&what, WAIT, || ok(cm.metric_of(i, metric))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_call_lost_with_its_session_node_is_published_again_and_put_through() {
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let config = route_to(&bob);
    let mut cm = tokio::task::spawn_blocking(move || two_session_nodes(None, &config)).await.unwrap();
    let (edge, frozen, live) = (0, 2, 3);
    cm.processes[frozen].freeze();
    let alice = Arc::new(SimplePeer::new("alice").await.unwrap());
    let target = format!("sip:bob@{}", cm.sip[0]);

    // Calls until one goes to the frozen node: its edge publishes it again after a second.
    let mut put_through = 0;
    let stuck = loop {
        assert!(put_through < MOST_CALLS, "the queue group never chose the frozen session node");
        let dialing = tokio::spawn({
            let (alice, target) = (alice.clone(), target.clone());
            async move { alice.call(&target).await }
        });
        let again = cm.metric_of(edge, "edge_calls_published_again_total");
        testkit::wait::until("the call put through, or published again", WAIT, || {
            dialing.is_finished() || cm.metric_of(edge, "edge_calls_published_again_total") > again
        })
        .await;
        if !dialing.is_finished() {
            break dialing;
        }
        let call = dialing.await.unwrap().expect("a call the live node took is put through");
        call.hangup().await.unwrap();
        call.wait_ended(WAIT).await.unwrap();
        put_through += 1;
    };

    // The frozen node dies with its copy; a copy published again reaches the live one.
    cm.processes[frozen].kill();
    let call = stuck.await.unwrap().expect("the call published again is put through");
    call.wait_established(WAIT).await.expect("established");
    assert_eq!(cm.metric_of(edge, "edge_calls_unclaimed_total"), 0, "no call refused for want of a node");
    assert_eq!(bob.active_calls().len(), 1, "bob's phone rang once");
    call.hangup().await.unwrap();
    call.wait_ended(WAIT).await.expect("the call ends at both ends");
    metric_until(&cm, live, "session_calls_active", |n| n == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_held_up_in_a_stalled_node_and_published_again_is_put_through_once() {
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let config = route_to(&bob);
    let cm = tokio::task::spawn_blocking(move || one_of_each(&config)).await.unwrap();
    let (edge, session, media) = (0, 2, 3);
    let alice = SimplePeer::new("alice").await.unwrap();

    // The only session node stalls with the call; the edge publishes it again meanwhile.
    cm.processes[session].freeze();
    let dialing = tokio::spawn({
        let target = format!("sip:bob@{}", cm.sip[0]);
        async move { alice.call(&target).await.map(|call| (alice, call)) }
    });
    metric_until(&cm, edge, "edge_calls_published_again_total", |n| n >= 1).await;
    cm.processes[session].thaw();

    // Every copy runs; the first to act wins, the others let go.
    let (_alice, call) = dialing.await.unwrap().expect("the call is put through");
    call.wait_established(WAIT).await.expect("established");
    metric_until(&cm, session, "session_calls_active", |n| n == 1).await;
    metric_until(&cm, media, "media_sessions_active", |n| n == 1).await;
    assert_eq!(bob.active_calls().len(), 1, "bob's phone rang once");
    assert_eq!(cm.metric_of(edge, "edge_calls_unclaimed_total"), 0, "no call refused");
    call.hangup().await.unwrap();
    call.wait_ended(WAIT).await.expect("the call ends at both ends");
    metric_until(&cm, media, "media_sessions_active", |n| n == 0).await;
}
