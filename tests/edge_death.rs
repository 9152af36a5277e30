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

use common::raw_sip::{self, RawSip, status};
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

/// Two edges on one shared SIP address, a router, a session node and a media node on a real
/// nats-server, routing `bob` to `bob_uri`.
async fn cluster(bob_uri: String) -> Callmesh {
    let (min, max) = rtp_range();
    let config = format!("[sip]\nreuse_port = true\n[[routes]]\nuser = '^bob$'\ntarget = \"{bob_uri}\"\n");
    tokio::task::spawn_blocking(move || {
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
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_survive_the_death_of_an_edge_sharing_the_address() {
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let mut cm = cluster(bob.uri()).await;
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

/// The caller's 2xx went out through an edge that then died, and never reached the caller
/// (here: the caller ignores it until then). Once the session node learns of the death it
/// sends the 2xx again through the other edge, as the UAS core retransmits a 2xx until its
/// ACK (RFC 3261 13.3.1.4); the caller's ACK and BYE come back through that edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_answer_lost_with_its_edge_is_sent_again_through_the_other() {
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let mut cm = cluster(bob.uri()).await;
    let shared = cm.sip[0];
    let caller = RawSip::bind();
    let invite = caller.invite(shared, "bob", "lost-answer", "127.0.0.1:4000".parse().unwrap());
    caller.send(shared, &invite);
    let (caller, first) = tokio::task::spawn_blocking(move || {
        let first = std::iter::from_fn(|| caller.recv_final()).find(|(m, _)| status(m) >= 200);
        (caller, first.expect("a final answer to the INVITE").0)
    })
    .await
    .unwrap();
    assert_eq!(status(&first), 200, "bob answered:\n{first}");

    // Not acknowledged: the edge that holds the caller's transaction dies.
    let edge = (0..2).find(|&i| cm.metric_of(i, "edge_calls_total") == 1).expect("an edge took the call");
    cm.processes[edge].kill();
    caller.socket.set_nonblocking(true).unwrap();
    while caller.recv().is_some() {}
    caller.socket.set_nonblocking(false).unwrap();
    metric_until(&cm, 3, "session_edges_gone", |n| n == 1).await;

    // The answer comes again, through the edge left; acknowledged, the call is up.
    let again = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some((m, _)) = caller.recv().filter(|(m, _)| status(m) == 200) {
                return (caller, m);
            }
        }
        panic!("the 2xx was not sent again after its edge died");
    });
    let (caller, again) = again.await.unwrap();
    caller.send(shared, &raw_sip::in_dialog(&invite, &again, "ACK", 1, "z9hG4bK-lost-answer-ack"));
    caller.send(shared, &raw_sip::in_dialog(&invite, &again, "BYE", 2, "z9hG4bK-lost-answer-bye"));
    let bye = tokio::task::spawn_blocking(move || caller.recv_final()).await.unwrap().expect("the BYE answered");
    assert_eq!(status(&bye.0), 200, "the call was up until the caller's BYE:\n{}", bye.0);
    calls_of(&bob, 0).await;
    metric_until(&cm, 3, "session_calls_active", |n| n == 0).await;
}
