//! Calls survive the death of their session node: a cluster of processes on a real
//! nats-server (an edge, a router, two session nodes, a media node) carries six calls with
//! audio both ways between two SDK phones; the session node owning most of them is killed
//! with SIGKILL and, at once, one of its calls hangs up — a BYE that reaches no owner. The
//! other session node takes the dead one's calls over within a bound: the BYE is answered
//! and ends the call at both ends, the other calls keep their audio both ways and end
//! normally later, and nothing is left in the registry.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::bus::NatsBus;
use cluster::contracts::SessionRecord;
use cluster::registry::{Bucket, JetStreamRegistry, Registry, RegistryConfig};
use common::tones::{hear, play};
use common::{Callmesh, rtp_range};
use media::audio::tone;
use prost::Message;
use session_core::peer::{Call, IncomingCallPolicy, SimplePeer};

const CALLS: usize = 6;
const WAIT: Duration = Duration::from_secs(10);
const ALICE: f64 = 440.0;
const BOB: f64 = 1000.0;

async fn registry(url: &str) -> Arc<dyn Registry> {
    let bus = NatsBus::connect(url, "takeover-test").await.expect("connects to NATS");
    Arc::new(JetStreamRegistry::connect(bus.client().clone(), &RegistryConfig::default()).await.expect("buckets"))
}

/// The session records in the registry.
async fn sessions(registry: &dyn Registry) -> Vec<SessionRecord> {
    let mut out = Vec::new();
    for key in registry.keys(Bucket::Sessions, "").await.unwrap() {
        if let Some(entry) = registry.get(Bucket::Sessions, &key).await.unwrap() {
            out.push(SessionRecord::decode(&entry.value[..]).unwrap());
        }
    }
    out
}

/// The SIP Call-ID of a record's caller leg.
fn caller_call_id(record: &SessionRecord) -> String {
    let engine = record.engine.as_ref().expect("the engine's state");
    engine.legs[0].dialog.as_ref().map(|d| d.call_id.clone()).unwrap_or_default()
}

/// Whether each of `calls` hears `freq` above the other phone's tone now: the frames
/// queued meanwhile (2 s at most, from before the kill) are read first.
async fn hear_now(calls: &[Call], freq: f64) -> Vec<bool> {
    futures::future::join_all(calls.iter().map(|call| async move {
        hear(call, 2.0).await;
        let heard = hear(call, 0.5).await;
        tone::dominant_tone(&heard, call.sample_rate(), &[ALICE, BOB]).map(|(f, _)| f) == Some(freq)
    }))
    .await
}

async fn bobs_calls(bob: &SimplePeer, n: usize) -> Vec<Call> {
    let what = format!("bob to have {n} calls up");
    testkit::wait::until(&what, WAIT, || bob.active_calls().len() == n).await;
    bob.active_calls()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_survive_the_death_of_their_session_node() {
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let (min, max) = rtp_range();
    let config = format!("[[routes]]\nuser = '^bob$'\ntarget = \"{}\"\n", bob.uri());
    let media = format!("[media]\nrtp_ports = \"{min}-{max}\"\n");
    let mut cm = tokio::task::spawn_blocking(move || {
        let roles = [
            ("edge", "edge-0", ""),
            ("router", "router-0", ""),
            ("session", "session-0", ""),
            ("session", "session-1", ""),
            ("media", "media-0", media.as_str()),
        ];
        Callmesh::processes(&config, &roles)
    })
    .await
    .unwrap();
    let registry = registry(cm.nats_url().unwrap()).await;
    let alice = SimplePeer::new("alice").await.unwrap();
    let mut calls = Vec::new();
    for _ in 0..CALLS {
        let call = alice.call(&format!("sip:bob@{}", cm.sip[0])).await.unwrap();
        call.wait_established(WAIT).await.unwrap();
        calls.push(call);
    }
    let mut players: Vec<_> = calls.iter().map(|c| play(c.clone(), ALICE)).collect();
    players.extend(bobs_calls(&bob, CALLS).await.into_iter().map(|c| play(c, BOB)));

    // The session node that owns most calls dies.
    let records = sessions(registry.as_ref()).await;
    assert_eq!(records.len(), CALLS, "every call has its record");
    let owned_by = |node: &str| records.iter().filter(|r| r.owner == node).map(caller_call_id).collect::<Vec<_>>();
    let (victim, survivor) = if owned_by("session-0").len() >= owned_by("session-1").len() { (2, 3) } else { (3, 2) };
    let doomed_ids = owned_by(if victim == 2 { "session-0" } else { "session-1" });
    let doomed: Vec<&Call> = calls.iter().filter(|c| doomed_ids.contains(&c.id().as_str().to_owned())).collect();
    assert_eq!(doomed.len(), doomed_ids.len(), "the records name alice's calls");
    let killed = Instant::now();
    cm.processes[victim].kill();
    // At once, one of its calls hangs up: its BYE reaches no owner yet.
    let gone = doomed[0].clone();
    gone.hangup().await.unwrap();

    // The survivor takes the calls over (their records say so), within a bound.
    let survivor_http = cm.http[survivor];
    let taken = move || common::scrape(survivor_http).get("callmesh_session_calls_taken_over_total").copied().unwrap_or(0);
    let want = doomed.len() as u64;
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + WAIT;
        while taken() < want {
            assert!(Instant::now() < deadline, "the survivor took {} of {want} calls over", taken());
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    let takeover = killed.elapsed();
    assert!(takeover < Duration::from_secs(6), "calls taken over {takeover:?} after the kill");
    eprintln!("calls taken over {} ms after the kill", takeover.as_millis());

    // The BYE sent meanwhile is answered: the call ends at both ends.
    gone.wait_ended(WAIT).await.unwrap();
    let left = bobs_calls(&bob, CALLS - 1).await;
    // The others still carry audio both ways.
    let kept: Vec<Call> = calls.iter().filter(|c| c.id() != gone.id()).cloned().collect();
    assert_eq!(hear_now(&kept, BOB).await, vec![true; CALLS - 1], "alice's calls hear bob after the takeover");
    assert_eq!(hear_now(&left, ALICE).await, vec![true; CALLS - 1], "bob's calls hear alice after the takeover");
    // And end normally: alice hangs up, bob's calls end with them.
    for call in calls.iter().filter(|c| c.id() != gone.id()) {
        call.hangup().await.unwrap();
        call.wait_ended(WAIT).await.unwrap();
    }
    bobs_calls(&bob, 0).await;
    for p in players {
        p.await.unwrap();
    }
    let what = "every session record to be removed";
    testkit::wait::until_async(what, WAIT, || async { sessions(registry.as_ref()).await.is_empty() }).await;
    tokio::task::spawn_blocking(move || {
        let active = |name: &str| [0, 1, survivor, 4].iter().map(|i| cm.metric_of(*i, name)).sum::<u64>();
        let deadline = Instant::now() + WAIT;
        while active("session_calls_active") + active("media_sessions_active") > 0 {
            assert!(Instant::now() < deadline, "calls or relays left after the calls ended");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
}
