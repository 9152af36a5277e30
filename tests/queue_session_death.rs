//! A queue outlives a session node: a cluster of processes on a real nats-server (an edge,
//! a router, two session nodes, a media node) serves a queue with one agent, an SDK phone;
//! session nodes are killed with SIGKILL.
//!
//! - A caller put through to the agent, its node killed: the node that takes the call over
//!   hangs up on the caller (the agent's leg died with the node), the routers end the queue
//!   call (the agent is free again: without that, the agent would stay "in a queue call"
//!   for ever), and the next caller is put through to the same agent.
//! - A caller waiting, its node killed: the other node takes the call over and the caller
//!   keeps its place; once the agent is free it is put through, and each hears the other.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::faults::{ALICE, BOB, SESSION_0, SESSION_1, hear_now, registry, sessions, two_session_nodes};
use session_core::peer::{IncomingCallPolicy, SimplePeer};

const WAIT: Duration = Duration::from_secs(15);

/// Waits (bounded) until the agent has `n` calls up.
async fn agent_calls(agent: &SimplePeer, n: usize) {
    let what = format!("the agent to have {n} calls up");
    testkit::wait::until(&what, WAIT, || agent.active_calls().len() == n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_of_a_call_whose_session_node_died_takes_the_next_caller() {
    let agent = SimplePeer::builder("agent").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let config = format!(
        "[[queues]]\nname = \"help\"\n[[agents]]\nuser = \"agent\"\ncontact = \"{}\"\nqueues = [\"help\"]\n\
         [[routes]]\nuser = '^7000$'\ntarget = \"queue:help\"\n",
        agent.uri()
    );
    let mut cm = tokio::task::spawn_blocking(move || two_session_nodes(None, &config)).await.unwrap();
    let queue = format!("sip:7000@{}", cm.sip[0]);
    let first = Arc::new(SimplePeer::new("first").await.unwrap());
    let call = first.call(&queue).await.unwrap();
    call.wait_established(WAIT).await.unwrap();
    agent_calls(&agent, 1).await;

    // The session node running the queue call (the caller's and the agent's legs) dies.
    let victim = if cm.metric_of(SESSION_0, "session_calls_active") > 0 { SESSION_0 } else { SESSION_1 };
    let killed = Instant::now();
    cm.processes[victim].kill();
    // The node that takes the caller's call over ends it: its agent's leg died.
    call.wait_ended(WAIT).await.expect("the caller of a queue call whose agent leg died is hung up on");

    // The next caller reaches the agent, once the routers took the node for dead.
    let second = SimplePeer::new("second").await.unwrap();
    let next = second.call(&queue).await.unwrap();
    next.wait_established(WAIT).await.unwrap();
    agent_calls(&agent, 2).await;
    let reached = agent.active_calls().into_iter().any(|c| c.remote_uri().contains("second"));
    assert!(reached, "the agent is offered the next caller");
    eprintln!("the agent took the next caller {} ms after the node's death", killed.elapsed().as_millis());
    next.hangup().await.unwrap();
    next.wait_ended(WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_caller_whose_session_node_died_keeps_its_place_and_reaches_the_agent() {
    let agent = SimplePeer::builder("agent").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let config = format!(
        "[[queues]]\nname = \"help\"\n[[agents]]\nuser = \"agent\"\ncontact = \"{}\"\nqueues = [\"help\"]\n\
         [[routes]]\nuser = '^7000$'\ntarget = \"queue:help\"\n",
        agent.uri()
    );
    let mut cm = tokio::task::spawn_blocking(move || two_session_nodes(None, &config)).await.unwrap();
    let queue = format!("sip:7000@{}", cm.sip[0]);
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
    testkit::wait::until_async("the waiting caller's record", WAIT, || {
        let registry = registry.clone();
        async move { sessions(registry.as_ref()).await.iter().any(|r| r.owner == owner && r.kind == "queue") }
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
