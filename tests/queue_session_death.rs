//! A queue outlives the session node of a call it put through: a cluster of processes on a
//! real nats-server (an edge, a router, two session nodes, a media node) serves a queue
//! with one agent, an SDK phone. A caller reaches the agent; the session node running that
//! call is killed with SIGKILL. The routers see the node die and end the queue call (the
//! agent is free again: without that, the agent would stay "in a queue call" for ever), so
//! the next caller is put through to the same agent.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::faults::{SESSION_0, SESSION_1, two_session_nodes};
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
