//! Calls survive the death of an edge: two edge processes share one SIP address
//! (`sip.reuse_port`), beside a router, a session node and a media node on a real
//! nats-server. Callers from several addresses reach both edges (the kernel spreads
//! peers); a response that reaches the edge that did not send its request is relayed to
//! the one that did — a BYE's 200 as well as an INVITE's. Then the edge carrying the callee's side is killed with SIGKILL: the
//! kernel gives its peers to the other edge, the session node sends its requests through
//! that one, and every call ends normally at both ends — half hung up by the callee, half
//! by the callers.

mod common;

use std::time::{Duration, Instant};

use common::{Callmesh, rtp_range};
use session_core::peer::{Call, IncomingCallPolicy, SimplePeer};

const WAIT: Duration = Duration::from_secs(10);
/// Callers tried at most until both edges took some.
const MOST_CALLERS: usize = 16;

async fn calls_of(peer: &SimplePeer, n: usize) -> Vec<Call> {
    let what = format!("{n} calls up at the callee");
    testkit::wait::until(&what, WAIT, || peer.active_calls().len() == n).await;
    peer.active_calls()
}

/// Waits (bounded) until metric `name` of process `i` satisfies `ok`.
async fn metric_until(cm: &Callmesh, i: usize, name: &str, ok: impl Fn(u64) -> bool) {
    let http = cm.http[i];
    let what = format!("{name} of process {i}");
    testkit::wait::until(&what, WAIT, || ok(common::scrape(http).get(&format!("callmesh_{name}")).copied().unwrap_or(0))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_survive_the_death_of_an_edge_sharing_the_address() {
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let (min, max) = rtp_range();
    let config = format!("[sip]\nreuse_port = true\n[[routes]]\nuser = '^bob$'\ntarget = \"{}\"\n", bob.uri());
    let mut cm = tokio::task::spawn_blocking(move || {
        let media = format!("[media]\nrtp_ports = \"{min}-{max}\"\n");
        let roles = [
            ("edge", "edge-0", ""),
            ("edge", "edge-1", ""),
            ("router", "router-0", ""),
            ("session", "session-0", ""),
            ("media", "media-0", media.as_str()),
        ];
        Callmesh::processes(&config, &roles)
    })
    .await
    .unwrap();
    let target = format!("sip:bob@{}", cm.sip[0]);
    let calls_at = |i: usize| cm.metric_of(i, "edge_calls_total");

    // Callers from new addresses until both edges took calls.
    let (mut callers, mut calls) = (Vec::new(), Vec::new());
    while callers.len() < MOST_CALLERS && (calls.len() < 4 || calls_at(0) == 0 || calls_at(1) == 0) {
        let alice = SimplePeer::new(&format!("alice{}", callers.len())).await.unwrap();
        let call = alice.call(&target).await.unwrap();
        call.wait_established(WAIT).await.expect("the call is established through the shared address");
        callers.push(alice);
        calls.push(call);
    }
    assert!(calls_at(0) > 0 && calls_at(1) > 0, "both edges took calls ({} and {})", calls_at(0), calls_at(1));
    calls_of(&bob, calls.len()).await;
    // Bob's responses all reach one edge: it relayed those to the calls the other one sent.
    let relayed = |i: usize| cm.metric_of(i, "edge_responses_relayed_total");
    let bobs_edge = if relayed(0) > 0 { 0 } else { 1 };
    assert!(relayed(bobs_edge) > 0 && relayed(1 - bobs_edge) == 0, "responses relayed by the edge bob reaches");

    // A call through the other edge, hung up by its caller: the session node's BYE to bob
    // goes out through that edge, bob's 200 comes back to his, which relays it: the call
    // ends at the session node at once (not after Timer F's 32 s, as when only INVITE
    // 2xx responses were relayed).
    let other = 1 - bobs_edge;
    let relayed_before = relayed(bobs_edge);
    let through_other = loop {
        assert!(callers.len() < 2 * MOST_CALLERS, "no new caller reached edge {other}");
        let before = calls_at(other);
        let alice = SimplePeer::new(&format!("alice{}", callers.len())).await.unwrap();
        let call = alice.call(&target).await.unwrap();
        call.wait_established(WAIT).await.expect("the call is established through the shared address");
        callers.push(alice);
        if calls_at(other) > before {
            break call;
        }
        calls.push(call);
    };
    let up = calls.len() as u64 + 1;
    metric_until(&cm, 3, "session_calls_active", |n| n == up).await;
    through_other.hangup().await.unwrap();
    through_other.wait_ended(WAIT).await.expect("the caller's BYE answered");
    metric_until(&cm, 3, "session_calls_active", |n| n == up - 1).await;
    assert!(relayed(bobs_edge) > relayed_before + 1, "bob's 200 to the BYE relayed too");
    calls_of(&bob, calls.len()).await;

    // That edge dies; the session node learns of it.
    let killed = Instant::now();
    cm.processes[bobs_edge].kill();
    metric_until(&cm, 3, "session_edges_gone", |n| n == 1).await;
    eprintln!("the session node saw the edge die after {} ms", killed.elapsed().as_millis());

    // Half the calls hung up by bob, half by their callers: all end at both ends.
    let half = calls.len() / 2;
    for call in calls_of(&bob, calls.len()).await.into_iter().take(half) {
        call.hangup().await.unwrap();
        call.wait_ended(WAIT).await.expect("bob's BYE answered");
    }
    calls_of(&bob, calls.len() - half).await;
    let ended = || calls.iter().filter(|c| c.state().is_final()).count();
    testkit::wait::until("bob's BYEs to reach the callers", WAIT, || ended() == half).await;
    for call in calls.iter().filter(|c| !c.state().is_final()) {
        call.hangup().await.unwrap();
        call.wait_ended(WAIT).await.expect("the caller's BYE answered");
    }
    calls_of(&bob, 0).await;
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + WAIT;
        while cm.metric_of(3, "session_calls_active") + cm.metric_of(4, "media_sessions_active") > 0 {
            assert!(Instant::now() < deadline, "calls or relays left after the calls ended:\n{}", cm.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
}
