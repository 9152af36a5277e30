//! The API's example client (`examples/api_client.rs`) run as an integrator runs it,
//! against `callmesh all` with SDK phones for the agent and the number: it logs the agent
//! in, places the call, follows it in the event feed and exits when both legs have ended.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Callmesh;
use common::faults::calls_up;
use session_core::peer::{IncomingCallPolicy, SimplePeer};
use testkit::ports::free_local_addr;

const TOKEN: &str = "api-test-token-0123456789";
const WAIT: Duration = Duration::from_secs(10);

/// Builds the example (as `cargo run --example` would) and gives its path.
fn example(name: &str) -> std::path::PathBuf {
    let status = Command::new(env!("CARGO")).args(["build", "-q", "-p", "callmesh", "--example", name]).status().unwrap();
    assert!(status.success(), "example {name} builds");
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps").join("examples").join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_client_logs_in_places_a_call_and_follows_it() {
    let accepting = |name: &'static str| SimplePeer::builder(name).incoming_call_policy(IncomingCallPolicy::AcceptAll).build();
    let (agent, bob) = (accepting("agent").await.unwrap(), accepting("bob").await.unwrap());
    let api = free_local_addr();
    let config = format!(
        "[api]\nlisten = \"{api}\"\ntokens = [\"{TOKEN}\"]\n[[queues]]\nname = \"help\"\n\
         [[agents]]\nuser = \"agent\"\ncontact = \"{}\"\nqueues = [\"help\"]\n[[routes]]\nuser = '^1000$'\ntarget = \"{}\"\n",
        agent.uri(),
        bob.uri()
    );
    let _cm = tokio::task::spawn_blocking(move || Callmesh::all_in_one(&config)).await.unwrap();
    let exe = tokio::task::spawn_blocking(|| example("api_client")).await.unwrap();
    let client =
        tokio::process::Command::new(exe).args([format!("http://{api}"), TOKEN.into(), "agent".into(), "1000".into()]).output();
    let client = tokio::spawn(client);

    // The number's phone rings once the agent's answered; it talks a moment and hangs up.
    let bobs = calls_up(&bob, 1).await;
    bobs[0].wait_established(WAIT).await.unwrap();
    bobs[0].hangup().await.unwrap();
    let out = tokio::time::timeout(WAIT, client).await.expect("the client exits once the call ended").unwrap().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for line in ["agent logged in", "placed ", "ringing agent, then 1000", "ended: answered", "done"] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
    assert_eq!(text.matches("ended: answered").count(), 2, "{text}");
}
