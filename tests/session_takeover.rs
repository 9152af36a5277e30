//! Calls survive the death of their session node: a cluster of processes on a real
//! nats-server (an edge, a router, two session nodes, a media node) carries calls with
//! audio both ways between two SDK phones, and one more call rings a third phone (which
//! answers only after the takeover). The session node owning the ringing call is killed with SIGKILL
//! and, at once, one of its answered calls hangs up — a BYE that reaches no owner. The
//! other session node takes the dead one's calls over within a bound: the BYE is answered
//! and ends the call at both ends, the ringing call is answered and put through, the
//! other calls keep their audio both ways and end normally later, and nothing is left in
//! the registry, but one detail record per call. And when the only session node dies and a new one starts, the new one
//! resumes the calls.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::contracts::SessionRecord;
use common::faults::{
    ALICE, BOB, calls_up, cdr_of, cdrs, hang_up, hear_now, records_until, registry, sessions, talking, two_session_nodes,
};
use common::tones::play;
use session_core::peer::{Call, IncomingCallPolicy, SimplePeer};

const CALLS: usize = 6;
const WAIT: Duration = Duration::from_secs(10);

/// The SIP Call-ID of a record's caller leg (from its INVITE: a ringing call has no dialog).
fn caller_call_id(record: &SessionRecord) -> String {
    let engine = record.engine.as_ref().expect("the engine's state");
    let invite = sip::message::Message::parse_datagram(engine.legs[0].invite.clone()).expect("the caller's INVITE");
    invite.call_id().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_survive_the_death_of_their_session_node() {
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let carol = SimplePeer::builder("carol").incoming_call_policy(IncomingCallPolicy::RequireManual).build().await.unwrap();
    let config = format!(
        "[[routes]]\nuser = '^bob$'\ntarget = \"{}\"\n[[routes]]\nuser = '^carol$'\ntarget = \"{}\"\n",
        bob.uri(),
        carol.uri()
    );
    let mut cm = tokio::task::spawn_blocking(move || two_session_nodes(None, &config)).await.unwrap();
    let registry = registry(cm.nats_url().unwrap()).await;
    let alice = Arc::new(SimplePeer::new("alice").await.unwrap());
    let mut calls = Vec::new();
    for _ in 0..CALLS {
        let call = alice.call(&format!("sip:bob@{}", cm.sip[0])).await.unwrap();
        call.wait_established(WAIT).await.unwrap();
        calls.push(call);
    }
    // A call that rings carol; its record names its owner, who dies.
    // (`call` returns once the call is answered or failed: it runs on its own.)
    let dialing = tokio::spawn({
        let (alice, target) = (alice.clone(), format!("sip:carol@{}", cm.sip[0]));
        async move { alice.call(&target).await }
    });
    let rings = carol.next_incoming_within(WAIT).await.expect("carol's phone rings");
    let ringing = alice.active_calls().into_iter().find(|c| c.remote_uri().contains("carol")).expect("alice's ringing call");
    let owner_of = |id: String| {
        let registry = registry.clone();
        async move { sessions(registry.as_ref()).await.into_iter().find(|r| caller_call_id(r) == id).map(|r| r.owner) }
    };
    let what = "the ringing call's record";
    testkit::wait::until_async(what, WAIT, || async { owner_of(ringing.id().as_str().to_owned()).await.is_some() }).await;
    let dying = owner_of(ringing.id().as_str().to_owned()).await.unwrap();
    let (victim, survivor) = if dying == "session-0" { (2, 3) } else { (3, 2) };
    // It owns answered calls too (more are made until it does).
    let owned = |records: &[SessionRecord]| -> Vec<String> {
        records.iter().filter(|r| r.owner == dying).map(caller_call_id).filter(|id| id != ringing.id().as_str()).collect()
    };
    while owned(&sessions(registry.as_ref()).await).is_empty() {
        assert!(calls.len() < CALLS + 10, "some answered call on {dying}");
        let call = alice.call(&format!("sip:bob@{}", cm.sip[0])).await.unwrap();
        call.wait_established(WAIT).await.unwrap();
        calls.push(call);
    }
    let n = calls.len();
    let mut players: Vec<_> = calls.iter().map(|c| play(c.clone(), ALICE)).collect();
    players.extend(calls_up(&bob, n).await.into_iter().map(|c| play(c, BOB)));
    let doomed_ids = owned(&sessions(registry.as_ref()).await);
    let doomed: Vec<&Call> = calls.iter().filter(|c| doomed_ids.contains(&c.id().as_str().to_owned())).collect();
    assert_eq!(doomed.len(), doomed_ids.len(), "the records name alice's calls");
    assert!(!ringing.state().is_established(), "carol's phone still rings");
    let killed = Instant::now();
    cm.processes[victim].kill();
    // At once, one of its calls hangs up: its BYE reaches no owner yet.
    let gone = doomed[0].clone();
    gone.hangup().await.unwrap();

    // The survivor takes the calls over (their records say so), within a bound.
    let survivor_http = cm.http[survivor];
    let taken = move || common::scrape(survivor_http).get("callmesh_session_calls_taken_over_total").copied().unwrap_or(0);
    let want = doomed.len() as u64 + 1;
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
    // Each timed from the dead node's last heartbeat: at least the 3 s that declare a death,
    // at most the time since the kill and the heartbeat before it.
    let metrics = common::scrape(survivor_http);
    let within = |le: u64| metrics.get(&format!("callmesh_session_takeover_seconds_bucket{{le=\"{le}\"}}")).copied();
    let most = [4, 5, 6, 8].into_iter().find(|b| Duration::from_secs(*b) >= takeover + Duration::from_secs(1)).unwrap_or(10);
    assert_eq!((within(2), within(most)), (Some(0), Some(want)), "every call taken over timed, between 2 and {most} s");

    // The BYE sent meanwhile is answered: the call ends at both ends.
    gone.wait_ended(WAIT).await.unwrap();
    let left = calls_up(&bob, n - 1).await;
    // Carol answers the call that rang through the takeover: it is put through.
    let carols = vec![rings.accept().await.expect("carol answers")];
    dialing.await.unwrap().expect("the ringing call is answered after the takeover");
    players.push(play(ringing.clone(), ALICE));
    players.push(play(carols[0].clone(), BOB));
    // The others still carry audio both ways.
    let mut kept: Vec<Call> = calls.iter().filter(|c| c.id() != gone.id()).cloned().collect();
    kept.push(ringing.clone());
    let mut theirs = left.clone();
    theirs.extend(carols);
    assert_eq!(hear_now(&kept, BOB).await, vec![true; n], "alice's calls hear the far end after the takeover");
    assert_eq!(hear_now(&theirs, ALICE).await, vec![true; n], "the far ends hear alice after the takeover");
    // And end normally: alice hangs up, bob's calls end with them.
    for call in kept.iter() {
        call.hangup().await.unwrap();
        call.wait_ended(WAIT).await.unwrap();
    }
    calls_up(&bob, 0).await;
    calls_up(&carol, 0).await;
    for p in players {
        p.await.unwrap();
    }
    let what = "every session record to be removed";
    records_until(registry.as_ref(), what, WAIT, |records| records.is_empty()).await;
    // Exactly one detail record per call, those taken over written by the survivor.
    let cdrs = cdrs(cm.nats_url().unwrap()).await;
    for call in calls.iter().chain([&ringing]) {
        let mine = cdr_of(&cdrs, call.id().as_str());
        assert_eq!(mine.len(), 1, "one record of call {}: {mine:?}", call.id());
        let moved = doomed_ids.contains(&call.id().as_str().to_owned()) || call.id() == ringing.id();
        assert_eq!((mine[0].disposition.as_str(), mine[0].taken_over), ("answered", moved), "{:?}", mine[0]);
        assert!(mine[0].answer_ms > 0 && mine[0].end_ms >= mine[0].answer_ms, "{:?}", mine[0]);
    }
    assert_eq!(cdr_of(&cdrs, gone.id().as_str())[0].hangup_by, "caller", "the BYE during the takeover");
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

/// Every session node restarts: the only one is killed with SIGKILL and a new one started
/// in its place. The new node sees calls whose owner is not alive and resumes them: audio
/// both ways, and they end normally at both ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_resume_when_every_session_node_restarts() {
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let config = format!("[[routes]]\nuser = '^bob$'\ntarget = \"{}\"\n", bob.uri());
    let mut cm = tokio::task::spawn_blocking(move || common::faults::one_of_each(&config)).await.unwrap();
    let registry = registry(cm.nats_url().unwrap()).await;
    let alice = SimplePeer::new("alice").await.unwrap();
    let (calls, theirs, players) = talking(&alice, &bob, &format!("sip:bob@{}", cm.sip[0]), 2).await;

    cm.processes[2].kill();
    let cm = tokio::task::spawn_blocking(move || {
        cm.start("session", "session-1");
        let deadline = Instant::now() + WAIT;
        while cm.metric_of(4, "session_calls_taken_over_total") < 2 {
            assert!(Instant::now() < deadline, "the new session node resumed both calls:\n{}", cm.output());
            std::thread::sleep(Duration::from_millis(50));
        }
        cm
    })
    .await
    .unwrap();
    assert_eq!(hear_now(&calls, BOB).await, vec![true; 2], "alice's calls hear bob after the restart");
    assert_eq!(hear_now(&theirs, ALICE).await, vec![true; 2], "bob's calls hear alice after the restart");
    hang_up(&calls, &bob, players).await;
    let what = "every session record to be removed";
    records_until(registry.as_ref(), what, WAIT, |records| records.is_empty()).await;
    drop(cm);
}
