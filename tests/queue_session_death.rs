//! A queue outlives a session node: a cluster of processes on a real nats-server (an edge,
//! a router, two session nodes, a media node) serves a queue with one agent, an SDK phone;
//! session nodes are killed with SIGKILL.
//!
//! - A caller put through to the agent, its node killed: the other node takes both legs
//!   over, the two go on hearing each other, and when the caller hangs up the agent's leg
//!   ends too and the agent takes the next caller (without that, the agent would stay "in
//!   a queue call" for ever).
//! - A caller waiting, its node killed: the other node takes the call over and the caller
//!   keeps its place; once the agent is free it is put through, and each hears the other.

mod common;

use std::time::{Duration, Instant};

use common::Callmesh;
use common::faults::{ALICE, BOB, SESSION_0, SESSION_1, hear_now, records_until, registry, two_session_nodes};
use session_core::peer::{IncomingCallPolicy, SimplePeer};

const WAIT: Duration = Duration::from_secs(15);

/// Waits (bounded) until the agent has `n` calls up.
async fn agent_calls(agent: &SimplePeer, n: usize) {
    let what = format!("the agent to have {n} calls up");
    testkit::wait::until(&what, WAIT, || agent.active_calls().len() == n).await;
}

/// A queue `help` (`sip:7000@…`) with one agent, an SDK phone that takes every call, on
/// two session nodes: the agent, the cluster and the queue's URI.
async fn one_agent_queue() -> (SimplePeer, Callmesh, String) {
    let agent = SimplePeer::builder("agent").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let config = format!(
        "[[queues]]\nname = \"help\"\n[[agents]]\nuser = \"agent\"\ncontact = \"{}\"\nqueues = [\"help\"]\n\
         [[routes]]\nuser = '^7000$'\ntarget = \"queue:help\"\n",
        agent.uri()
    );
    let cm = tokio::task::spawn_blocking(move || two_session_nodes(None, &config)).await.unwrap();
    let queue = format!("sip:7000@{}", cm.sip[0]);
    (agent, cm, queue)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_put_through_to_the_agent_outlives_its_session_node() {
    let (agent, mut cm, queue) = one_agent_queue().await;
    let first = SimplePeer::new("first").await.unwrap();
    let call = first.call(&queue).await.unwrap();
    call.wait_established(WAIT).await.unwrap();
    agent_calls(&agent, 1).await;
    let theirs = agent.active_calls().remove(0);
    let players = [common::tones::play(call.clone(), ALICE), common::tones::play(theirs.clone(), BOB)];
    assert_eq!(hear_now(std::slice::from_ref(&call), BOB).await, [true], "the caller hears the agent");

    // Both legs are recorded once put through; then their session node dies.
    let registry = registry(cm.nats_url().unwrap()).await;
    records_until(registry.as_ref(), "the caller's and the agent leg's records", WAIT, |records| {
        let bridged = records.iter().any(|r| r.queue.as_ref().is_some_and(|q| q.bridged_agent == "agent"));
        bridged && records.iter().any(|r| r.kind == "agent")
    })
    .await;
    let victim = if cm.metric_of(SESSION_0, "session_calls_active") > 0 { SESSION_0 } else { SESSION_1 };
    let survivor = if victim == SESSION_0 { SESSION_1 } else { SESSION_0 };
    let killed = Instant::now();
    cm.processes[victim].kill();
    testkit::wait::until("both legs to be taken over", WAIT, || cm.metric_of(survivor, "session_calls_taken_over_total") == 2)
        .await;
    eprintln!("the queue call was taken over {} ms after its node's death", killed.elapsed().as_millis());
    assert_eq!(hear_now(std::slice::from_ref(&call), BOB).await, [true], "the caller hears the agent after");
    assert_eq!(hear_now(std::slice::from_ref(&theirs), ALICE).await, [true], "the agent hears the caller after");

    // The caller hangs up: the node that took it over answers, the agent's leg is ended
    // (over the bus), the agent wraps up and takes the next caller.
    call.hangup().await.unwrap();
    call.wait_ended(WAIT).await.expect("the BYE is answered");
    agent_calls(&agent, 0).await;
    for p in players {
        p.await.unwrap();
    }
    let second = SimplePeer::new("second").await.unwrap();
    let next = second.call(&queue).await.unwrap();
    next.wait_established(WAIT).await.unwrap();
    agent_calls(&agent, 1).await;
    let reached = agent.active_calls().into_iter().any(|c| c.remote_uri().contains("second"));
    assert!(reached, "the agent is offered the next caller");
    next.hangup().await.unwrap();
    next.wait_ended(WAIT).await.unwrap();
    agent_calls(&agent, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_caller_whose_session_node_died_keeps_its_place_and_reaches_the_agent() {
    let (agent, mut cm, queue) = one_agent_queue().await;
    // The first caller talks to the agent, on one session node.
    let first = SimplePeer::new("first").await.unwrap();
    let talking = first.call(&queue).await.unwrap();
    talking.wait_established(WAIT).await.unwrap();
    agent_calls(&agent, 1).await;
    let busy = if cm.metric_of(SESSION_0, "session_calls_active") > 0 { SESSION_0 } else { SESSION_1 };
    let other = if busy == SESSION_0 { SESSION_1 } else { SESSION_0 };

    // The second caller waits, on the other node (the node a call lands on is the queue
    // group's choice: a call on the first node is hung up and placed again).
    let second = SimplePeer::new("second").await.unwrap();
    let base = cm.metric_of(busy, "session_calls_active");
    let mut tries = 0;
    let waiting = loop {
        tries += 1;
        assert!(tries <= 12, "twelve calls in a row landed on the same session node");
        let call = second.call(&queue).await.unwrap();
        call.wait_established(WAIT).await.unwrap();
        if cm.metric_of(other, "session_calls_active") > 0 {
            break call;
        }
        call.hangup().await.unwrap();
        call.wait_ended(WAIT).await.unwrap();
        testkit::wait::until("the hung-up caller's session to end", WAIT, || cm.metric_of(busy, "session_calls_active") == base)
            .await;
    };
    let tone = common::tones::play(waiting.clone(), ALICE);
    // Its record is written once its ACK is in.
    let registry = registry(cm.nats_url().unwrap()).await;
    let owner = if other == SESSION_0 { "session-0" } else { "session-1" };
    records_until(registry.as_ref(), "the waiting caller's record", WAIT, |records| {
        records.iter().any(|r| r.owner == owner && r.kind == "queue")
    })
    .await;

    // Its node dies: the first node takes the call over and joins the caller to the queue again.
    let killed = Instant::now();
    cm.processes[other].kill();
    testkit::wait::until("the waiting caller's call to be taken over", WAIT, || {
        cm.metric_of(busy, "session_calls_taken_over_total") >= 1
    })
    .await;
    eprintln!("the waiting caller was taken over {} ms after its node's death", killed.elapsed().as_millis());
    assert_eq!(second.active_calls().len(), 1, "the waiting caller's call is still up");

    // The agent comes free: the caller who waited is put through, and each hears the other.
    talking.hangup().await.unwrap();
    talking.wait_ended(WAIT).await.unwrap();
    testkit::wait::until("the agent to be offered the caller who waited", WAIT, || {
        agent.active_calls().iter().any(|c| c.remote_uri().contains("second"))
    })
    .await;
    let theirs = agent.active_calls().into_iter().find(|c| c.remote_uri().contains("second")).unwrap();
    theirs.wait_established(WAIT).await.unwrap();
    let answer = common::tones::play(theirs.clone(), BOB);
    assert_eq!(hear_now(std::slice::from_ref(&waiting), BOB).await, [true], "the caller hears the agent");
    assert_eq!(hear_now(std::slice::from_ref(&theirs), ALICE).await, [true], "the agent hears the caller");
    eprintln!("the caller who waited reached the agent {} ms after its node's death", killed.elapsed().as_millis());

    // The caller hangs up: its BYE is answered by the node that took it over; the agent's call ends.
    waiting.hangup().await.unwrap();
    waiting.wait_ended(WAIT).await.expect("the BYE is answered");
    agent_calls(&agent, 0).await;
    tone.await.unwrap();
    answer.await.unwrap();
}
