//! The wallboard in a real browser: headless Chromium opens `/wallboard` of `callmesh all`
//! once, and its live figures follow a queue call as it happens — the caller waiting while
//! the agent's phone rings, the two talking, the call answered today — from the server-sent
//! events alone (the page is never reloaded). With `CALLMESH_WALLBOARD_SCREENSHOT=<file>`
//! the test saves what the page looks like mid-call (docs/wallboard.png).

mod common;

use std::time::Duration;

use common::Callmesh;
use common::browser::Browser;
use session_core::peer::{IncomingCallPolicy, SimplePeer};
use testkit::ports::free_local_addr;

const WAIT: Duration = Duration::from_secs(10);

/// A figure of the page: `[data-queue=help][data-field=…]` or `[data-agent=…][data-field=…]`.
fn figure(page: &mut Browser, selector: &str) -> String {
    let expression = format!("(document.querySelector('{selector}') || {{}}).textContent || ''");
    page.eval(&expression).as_str().unwrap_or_default().to_owned()
}

/// Waits (10 s at most, the page left as it is) until the figures read `want`.
fn until_figures(page: &mut Browser, what: &str, want: &[(&str, &str)]) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let now: Vec<(String, String)> = want.iter().map(|(s, _)| (s.to_string(), figure(page, s))).collect();
        if now.iter().zip(want).all(|((_, got), (_, w))| got == w) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the wallboard to show {what}: {now:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const WAITING: &str = "[data-queue=help][data-field=waiting]";
const ON_CALL: &str = "[data-queue=help][data-field=agents_on_call]";
const AVAILABLE: &str = "[data-queue=help][data-field=agents_available]";
const ANSWERED: &str = "[data-queue=help][data-field=answered]";
const AGENT: &str = "[data-agent=agent][data-field=state]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallboard_follows_a_queue_call_live() {
    let agent = SimplePeer::builder("agent").incoming_call_policy(IncomingCallPolicy::RequireManual).build().await.unwrap();
    let config = format!(
        "[api]\nlisten = \"{}\"\n[[queues]]\nname = \"help\"\nring_secs = 30\n[[agents]]\nuser = \"agent\"\ncontact = \"{}\"\n\
         queues = [\"help\"]\n[[routes]]\nuser = '^7000$'\ntarget = \"queue:help\"\n",
        free_local_addr(),
        agent.uri()
    );
    let cm = tokio::task::spawn_blocking(move || Callmesh::all_in_one(&config)).await.unwrap();
    let url = format!("http://{}/wallboard", cm.http[0]);
    let mut page = tokio::task::spawn_blocking(move || Browser::open(&url)).await.unwrap();
    let mut page = tokio::task::block_in_place(|| {
        until_figures(&mut page, "an idle agent", &[(WAITING, "0"), (AVAILABLE, "1"), (ANSWERED, "0"), (AGENT, "idle")]);
        page
    });

    // A caller: it waits while the agent's phone rings.
    let caller = SimplePeer::new("caller").await.unwrap();
    let call = caller.call(&format!("sip:7000@{}", cm.sip[0])).await.unwrap();
    call.wait_established(WAIT).await.unwrap();
    let ringing = agent.next_incoming_within(WAIT).await.expect("the agent's phone rings");
    tokio::task::block_in_place(|| {
        until_figures(&mut page, "a caller waiting, the agent ringing", &[(WAITING, "1"), (AVAILABLE, "0"), (AGENT, "ringing")])
    });

    // The agent answers: they talk.
    let theirs = ringing.accept().await.expect("the agent answers");
    theirs.wait_established(WAIT).await.unwrap();
    tokio::task::block_in_place(|| {
        until_figures(&mut page, "the two talking", &[(WAITING, "0"), (ON_CALL, "1"), (AGENT, "on-call")]);
        if let Ok(path) = std::env::var("CALLMESH_WALLBOARD_SCREENSHOT") {
            std::fs::write(path, page.screenshot()).unwrap();
        }
    });

    // The caller hangs up: one call answered today, the agent free again.
    call.hangup().await.unwrap();
    call.wait_ended(WAIT).await.unwrap();
    tokio::task::block_in_place(|| {
        until_figures(&mut page, "the call answered", &[(ANSWERED, "1"), (ON_CALL, "0"), (AVAILABLE, "1"), (AGENT, "idle")])
    });
    assert_eq!(page.eval("document.getElementById('status').textContent"), "live");
    let updates = page.eval("Number(document.body.dataset.updates)").as_u64().unwrap();
    assert!(updates >= 4, "figures came in {updates} updates, the page never reloaded");
}
