//! A conference outlives a session node: a cluster of processes on a real nats-server (an
//! edge, a router, two session nodes, a media node); two SDK phones in one room, each
//! playing its tone. The session node running one of the seats (both, when the queue group
//! put them together) is killed with SIGKILL: the other node takes the seats over, the
//! phones go on hearing each other, and their BYEs are answered by the node that took them.

mod common;

use std::time::{Duration, Instant};

use common::faults::{ALICE, BOB, SESSION_0, SESSION_1, hear_now, registry, sessions, two_session_nodes};
use common::tones::play;
use session_core::peer::SimplePeer;

const WAIT: Duration = Duration::from_secs(15);
const ROUTE: &str = "[[routes]]\nuser = '^8'\ntarget = \"conference:${user}\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_seats_whose_session_node_died_are_taken_over_and_go_on_talking() {
    let mut cm = tokio::task::spawn_blocking(|| two_session_nodes(None, ROUTE)).await.unwrap();
    let target = format!("sip:800@{}", cm.sip[0]);
    let (alice, bob) = (SimplePeer::new("alice").await.unwrap(), SimplePeer::new("bob").await.unwrap());
    let calls = [alice.call(&target).await.unwrap(), bob.call(&target).await.unwrap()];
    for call in &calls {
        call.wait_established(WAIT).await.unwrap();
    }
    let players = [play(calls[0].clone(), ALICE), play(calls[1].clone(), BOB)];
    assert_eq!(hear_now(&calls, BOB).await, [true, false], "alice hears bob");
    assert_eq!(hear_now(&calls, ALICE).await, [false, true], "bob hears alice");

    // Both seats are recorded (at each caller's ACK) before the node dies.
    let registry = registry(cm.nats_url().unwrap()).await;
    testkit::wait::until_async("both seats' records", WAIT, || {
        let registry = registry.clone();
        async move { sessions(registry.as_ref()).await.iter().filter(|r| r.kind == "conference").count() == 2 }
    })
    .await;
    let on = |i| cm.metric_of(i, "session_calls_active");
    let (victim, survivor) = if on(SESSION_0) >= on(SESSION_1) { (SESSION_0, SESSION_1) } else { (SESSION_1, SESSION_0) };
    let seats = on(victim);
    let killed = Instant::now();
    cm.processes[victim].kill();
    testkit::wait::until("the dead node's seats to be taken over", WAIT, || {
        cm.metric_of(survivor, "session_calls_taken_over_total") == seats
    })
    .await;
    eprintln!("{seats} seat(s) taken over {} ms after their node's death", killed.elapsed().as_millis());

    // The room never stopped mixing: each still hears the other, and their calls end normally.
    assert_eq!(hear_now(&calls, BOB).await, [true, false], "alice hears bob after the takeover");
    assert_eq!(hear_now(&calls, ALICE).await, [false, true], "bob hears alice after the takeover");
    for call in &calls {
        call.hangup().await.unwrap();
        call.wait_ended(WAIT).await.expect("the BYE is answered");
    }
    for player in players {
        player.await.unwrap();
    }
    testkit::wait::until_async("no record left", WAIT, || {
        let registry = registry.clone();
        async move { sessions(registry.as_ref()).await.is_empty() }
    })
    .await;
}
