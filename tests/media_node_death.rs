//! Calls survive the death of their media node: a cluster of processes on a real
//! nats-server (an edge, a router, a session node, two media nodes) carries four calls
//! with audio both ways between two SDK phones; the media node relaying them is killed
//! with SIGKILL. The session node sees it die, allocates a new relay on the other media
//! node and re-offers both legs of each call its addresses (re-INVITEs): the audio comes
//! back both ways within a bound, measured, and the calls end normally. The calls are
//! recorded: a moved call's recording goes on in a second segment on the other node.

mod common;

use std::time::{Duration, Instant};

use common::faults::{ALICE, BOB, hang_up, hear_now, rtp_back, talking, two_media_nodes};
use common::recordings::{files, middle_tones};
use session_core::peer::{Call, IncomingCallPolicy, SimplePeer};

const CALLS: usize = 4;
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_move_to_another_media_node_when_theirs_dies() {
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let recordings = tempfile::tempdir().unwrap();
    let dir = recordings.path().to_owned();
    let config = format!(
        "[media]\nrecordings_dir = \"{}\"\n[[routes]]\nuser = '^bob$'\ntarget = \"{}\"\nrecord = true\n",
        dir.display(),
        bob.uri()
    );
    let mut cm = tokio::task::spawn_blocking(move || two_media_nodes(&config)).await.unwrap();
    let alice = SimplePeer::new("alice").await.unwrap();
    let (calls, theirs, players) = talking(&alice, &bob, &format!("sip:bob@{}", cm.sip[0]), CALLS).await;
    assert_eq!(hear_now(&calls[..1], BOB).await, [true], "alice hears bob before");

    // The media node relaying the calls dies (one of them, if each took some).
    let relaying: Vec<usize> = [3, 4].into_iter().filter(|i| cm.metric_of(*i, "media_sessions_active") > 0).collect();
    let victim = relaying[0];
    let moved = cm.metric_of(victim, "media_sessions_active") as usize;
    let phones: Vec<&Call> = calls.iter().chain(&theirs).collect();
    let before: Vec<u64> = phones.iter().map(|c| c.statistics().packets_received).collect();
    let killed = Instant::now();
    cm.processes[victim].kill();

    // RTP comes back to every phone (the calls the node relayed, through the other one),
    // then each hears the other side's tone.
    let gaps = futures::future::join_all(phones.iter().zip(&before).map(|(c, b)| rtp_back(c, *b, killed, WAIT))).await;
    assert!(gaps.iter().all(Option::is_some), "RTP back to every phone: {gaps:?}");
    let longest = gaps.iter().flatten().max().copied().unwrap_or_default();
    eprintln!("{moved} of {CALLS} calls relayed by the dead node; the longest audio gap {} ms", longest.as_millis());
    assert!(longest < Duration::from_secs(6), "audio back {longest:?} after the kill");
    assert_eq!(hear_now(&calls, BOB).await, vec![true; CALLS], "alice's calls hear bob after the move");
    assert_eq!(hear_now(&theirs, ALICE).await, vec![true; CALLS], "bob's calls hear alice after the move");
    let survivor = 7 - victim;
    assert_eq!(cm.metric_of(survivor, "media_sessions_active"), CALLS as u64, "the other node relays every call");

    hang_up(&calls, &bob, players).await;
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + WAIT;
        while cm.metric_of(2, "session_calls_active") + cm.metric_of(survivor, "media_sessions_active") > 0 {
            assert!(Instant::now() < deadline, "calls or relays left after the calls ended");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();

    // Every call's recording is finished by the surviving node: the moved calls' second
    // segment (`<session>-2`), with both sides, beside the first the dead node left.
    let dir = recordings.path().to_owned();
    let sidecars = tokio::task::spawn_blocking(move || {
        testkit::wait::blocking_until("a sidecar for every call", WAIT, || files(&dir, ".json").len() == CALLS);
        files(&dir, ".json")
    })
    .await
    .unwrap();
    let seconds: Vec<_> = sidecars.iter().filter(|p| p.to_string_lossy().ends_with("-2.json")).collect();
    assert_eq!(seconds.len(), moved, "a second segment for each moved call: {sidecars:?}");
    for second in seconds {
        let info: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(second).unwrap()).unwrap();
        assert_eq!(info["segment"], 2, "{info}");
        let (left, right, length) = middle_tones(&second.with_extension("wav"), &[ALICE, BOB]);
        assert_eq!((left, right), (Some(ALICE), Some(BOB)), "the caller left, the callee right after the move ({length:?})");
        let first = second.to_string_lossy().replace("-2.json", ".wav");
        common::recordings::stereo(std::path::Path::new(&first));
    }
}
