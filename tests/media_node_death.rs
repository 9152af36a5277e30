//! Calls survive the death of their media node: a cluster of processes on a real
//! nats-server (an edge, a router, a session node, two media nodes) carries four calls
//! with audio both ways between two SDK phones; the media node relaying them is killed
//! with SIGKILL. The session node sees it die, allocates a new relay on the other media
//! node and re-offers both legs of each call its addresses (re-INVITEs): the audio comes
//! back both ways within a bound, measured, and the calls end normally.

mod common;

use std::time::{Duration, Instant};

use common::tones::{hear, play};
use common::{Callmesh, rtp_range};
use media::audio::tone;
use session_core::peer::{Call, IncomingCallPolicy, SimplePeer};

const CALLS: usize = 4;
const WAIT: Duration = Duration::from_secs(10);
const ALICE: f64 = 440.0;
const BOB: f64 = 1000.0;

/// Whether `call` hears `freq` above the other phone's tone in a fresh half second (what
/// was queued before, 2 s at most, read first).
async fn hears(call: &Call, freq: f64) -> bool {
    hear(call, 2.0).await;
    let heard = hear(call, 0.5).await;
    tone::dominant_tone(&heard, call.sample_rate(), &[ALICE, BOB]).map(|(f, _)| f) == Some(freq)
}

/// How long after `since` RTP came to `call` again: when 50 packets (1 s of audio) more
/// than `before` have arrived, less that second (bounded by `WAIT`).
async fn rtp_back(call: &Call, before: u64, since: Instant) -> Option<Duration> {
    let deadline = since + WAIT;
    while Instant::now() < deadline {
        if call.statistics().packets_received >= before + 50 {
            return Some(since.elapsed().saturating_sub(Duration::from_secs(1)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn bobs_calls(bob: &SimplePeer, n: usize) -> Vec<Call> {
    let what = format!("bob to have {n} calls up");
    testkit::wait::until(&what, WAIT, || bob.active_calls().len() == n).await;
    bob.active_calls()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_move_to_another_media_node_when_theirs_dies() {
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let (min, max) = rtp_range();
    let config = format!("[[routes]]\nuser = '^bob$'\ntarget = \"{}\"\n", bob.uri());
    let mut cm = tokio::task::spawn_blocking(move || {
        let first = format!("[media]\nrtp_ports = \"{min}-{}\"\n", min + 99);
        let second = format!("[media]\nrtp_ports = \"{}-{max}\"\n", min + 100);
        let roles = [
            ("edge", "edge-0", ""),
            ("router", "router-0", ""),
            ("session", "session-0", ""),
            ("media", "media-0", first.as_str()),
            ("media", "media-1", second.as_str()),
        ];
        Callmesh::processes(&config, &roles)
    })
    .await
    .unwrap();
    let alice = SimplePeer::new("alice").await.unwrap();
    let mut calls = Vec::new();
    for _ in 0..CALLS {
        let call = alice.call(&format!("sip:bob@{}", cm.sip[0])).await.unwrap();
        call.wait_established(WAIT).await.unwrap();
        calls.push(call);
    }
    let theirs = bobs_calls(&bob, CALLS).await;
    let mut players: Vec<_> = calls.iter().map(|c| play(c.clone(), ALICE)).collect();
    players.extend(theirs.iter().map(|c| play(c.clone(), BOB)));
    assert!(hears(&calls[0], BOB).await, "alice hears bob before");

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
    let gaps = futures::future::join_all(phones.iter().zip(&before).map(|(c, b)| rtp_back(c, *b, killed))).await;
    assert!(gaps.iter().all(Option::is_some), "RTP back to every phone: {gaps:?}");
    let longest = gaps.iter().flatten().max().copied().unwrap_or_default();
    eprintln!("{moved} of {CALLS} calls relayed by the dead node; the longest audio gap {} ms", longest.as_millis());
    assert!(longest < Duration::from_secs(6), "audio back {longest:?} after the kill");
    let heard =
        futures::future::join_all(calls.iter().map(|c| hears(c, BOB)).chain(theirs.iter().map(|c| hears(c, ALICE)))).await;
    assert_eq!(heard, vec![true; 2 * CALLS], "every call heard both ways after the move");
    let survivor = 7 - victim;
    assert_eq!(cm.metric_of(survivor, "media_sessions_active"), CALLS as u64, "the other node relays every call");

    for call in &calls {
        call.hangup().await.unwrap();
        call.wait_ended(WAIT).await.unwrap();
    }
    bobs_calls(&bob, 0).await;
    for p in players {
        p.await.unwrap();
    }
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + WAIT;
        while cm.metric_of(2, "session_calls_active") + cm.metric_of(survivor, "media_sessions_active") > 0 {
            assert!(Instant::now() < deadline, "calls or relays left after the calls ended");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
}
