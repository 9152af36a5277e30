//! A conference outlives its nodes: clusters of processes on a real nats-server; two SDK
//! phones in one room, each playing its tone; nodes killed with SIGKILL.
//!
//! - The session node running one of the seats (both, when the queue group put them
//!   together): the other node takes the seats over, the phones go on hearing each other,
//!   and their BYEs are answered by the node that took them.
//! - The media node mixing the room: each seat moves to a room opened again on the other
//!   media node, each phone is re-INVITEd to it, and they hear each other again; the
//!   room's recording goes on there in a second segment.

mod common;

use std::time::{Duration, Instant};

use common::Callmesh;
use common::faults::{
    ALICE, BOB, SESSION_0, SESSION_1, hear_now, records_until, registry, rtp_back, two_media_nodes, two_session_nodes,
};
use common::recordings::{files, middle_tones};
use common::tones::play;
use session_core::peer::{Call, SimplePeer};

const WAIT: Duration = Duration::from_secs(15);
const ROUTE: &str = "[[routes]]\nuser = '^8'\ntarget = \"conference:${user}\"\n";

/// Two phones in room 800, alice playing her tone and bob his, each hearing the other.
async fn two_in_a_room(cm: &Callmesh) -> ([SimplePeer; 2], [Call; 2], [tokio::task::JoinHandle<()>; 2]) {
    let target = format!("sip:800@{}", cm.sip[0]);
    let phones = [SimplePeer::new("alice").await.unwrap(), SimplePeer::new("bob").await.unwrap()];
    let calls = [phones[0].call(&target).await.unwrap(), phones[1].call(&target).await.unwrap()];
    for call in &calls {
        call.wait_established(WAIT).await.unwrap();
    }
    let players = [play(calls[0].clone(), ALICE), play(calls[1].clone(), BOB)];
    assert_eq!(hear_now(&calls, BOB).await, [true, false], "alice hears bob");
    assert_eq!(hear_now(&calls, ALICE).await, [false, true], "bob hears alice");
    (phones, calls, players)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_seats_whose_session_node_died_are_taken_over_and_go_on_talking() {
    let mut cm = tokio::task::spawn_blocking(|| two_session_nodes(None, ROUTE)).await.unwrap();
    let (_phones, calls, players) = two_in_a_room(&cm).await;

    // Both seats are recorded (at each caller's ACK) before the node dies.
    let registry = registry(cm.nats_url().unwrap()).await;
    records_until(registry.as_ref(), "both seats' records", WAIT, |records| {
        records.iter().filter(|r| r.kind == "conference").count() == 2
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
    records_until(registry.as_ref(), "no record left", WAIT, |records| records.is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_seats_move_to_another_media_node_when_theirs_dies() {
    let recordings = tempfile::tempdir().unwrap();
    let config = format!("[media]\nrecordings_dir = \"{}\"\n{ROUTE}record = true\n", recordings.path().display());
    let mut cm = tokio::task::spawn_blocking(move || two_media_nodes(&config)).await.unwrap();
    let (_phones, calls, players) = two_in_a_room(&cm).await;

    // The media node mixing the room dies.
    let victim = if cm.metric_of(3, "media_room_seats") > 0 { 3 } else { 4 };
    let survivor = 7 - victim;
    let before: Vec<u64> = calls.iter().map(|c| c.statistics().packets_received).collect();
    let killed = Instant::now();
    cm.processes[victim].kill();
    let gaps = futures::future::join_all(calls.iter().zip(&before).map(|(c, b)| rtp_back(c, *b, killed, WAIT))).await;
    assert!(gaps.iter().all(Option::is_some), "RTP back to both phones: {gaps:?}");
    let longest = gaps.iter().flatten().max().copied().unwrap_or_default();
    eprintln!("the room moved; the longest audio gap {} ms", longest.as_millis());
    assert!(longest < Duration::from_secs(6), "audio back {longest:?} after the kill");
    assert_eq!(cm.metric_of(survivor, "media_room_seats"), 2, "both seats on the other node");
    assert_eq!(hear_now(&calls, BOB).await, [true, false], "alice hears bob after the move");
    assert_eq!(hear_now(&calls, ALICE).await, [false, true], "bob hears alice after the move");

    for call in &calls {
        call.hangup().await.unwrap();
        call.wait_ended(WAIT).await.expect("the BYE is answered");
    }
    for player in players {
        player.await.unwrap();
    }
    testkit::wait::until("the room to close with its last seat", WAIT, || cm.metric_of(survivor, "media_rooms_open") == 0).await;

    // The room's recording (its first seat's: that phone on the left, the room on the
    // right) went on on the other node, in a second segment beside the first.
    let dir = recordings.path().to_owned();
    let second = tokio::task::spawn_blocking(move || {
        let seconds = || files(&dir, "-2.json");
        testkit::wait::blocking_until("the room recording's second segment", WAIT, || !seconds().is_empty());
        seconds()
    })
    .await
    .unwrap();
    assert_eq!(second.len(), 1, "one recording of the room: {second:?}");
    let info: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&second[0]).unwrap()).unwrap();
    assert_eq!((info["segment"].as_u64(), info["room"].as_str()), (Some(2), Some("800")), "{info}");
    let (left, right, length) = middle_tones(&second[0].with_extension("wav"), &[ALICE, BOB]);
    assert!(length > Duration::from_secs(2), "the second segment lasts until the hang-up ({length:?})");
    assert!(
        left.is_some() && right.is_some() && left != right,
        "a phone on the left, the other on the right: {left:?} {right:?}"
    );
    let first = second[0].to_string_lossy().replace("-2.json", ".wav");
    common::recordings::stereo(std::path::Path::new(&first));
}
