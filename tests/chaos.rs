//! One node of each role killed in turn while calls are up: two edges on one SIP address,
//! two routers, two session nodes and two media nodes as processes on a 3-server JetStream
//! cluster (buckets replicated three times). Twelve calls from four phones carry audio
//! both ways; then, one after the other, the session node owning the most calls, the media
//! node relaying the most, the edge the callee reaches, a NATS server and a router are
//! killed with SIGKILL. After each death RTP flows again to every phone (the longest gap
//! is measured) and a new call goes through; at the end every call ends at both ends —
//! half hung up by the callee, half by the callers — and nothing is left in the registry.
//! The calls are recorded: each call's recording is finished once, those the media node's
//! death moved (after their session node's) in a second segment.

mod common;

use std::time::{Duration, Instant};

use common::Callmesh;
use common::faults::{ALICE, BOB, calls_up, hear_now, rtp_back};
use common::tones::play;
use session_core::peer::{Call, IncomingCallPolicy, SimplePeer};
use testkit::nats::NatsCluster;

const WAIT: Duration = Duration::from_secs(15);
const PHONES: usize = 4;
const CALLS_EACH: usize = 3;

// Process indices.
const EDGES: [usize; 2] = [0, 1];
const ROUTER_0: usize = 2;
const SESSIONS: [usize; 2] = [4, 5];
const MEDIA: [usize; 2] = [6, 7];

/// The longest any phone waited, from `since`, for 50 more RTP packets (1 s of audio)
/// than `before`, less that second; `Err(call)` for a phone still waiting after `WAIT`.
async fn longest_gap(phones: &[Call], since: Instant) -> Result<Duration, String> {
    let before: Vec<u64> = phones.iter().map(|c| c.statistics().packets_received).collect();
    let mut longest = Duration::ZERO;
    for (call, before) in phones.iter().zip(before) {
        let gap = rtp_back(call, before, since, WAIT).await.ok_or_else(|| call.id().as_str().to_owned())?;
        longest = longest.max(gap);
    }
    Ok(longest)
}

/// Who dies: the process of a pair with the larger metric, a NATS server, or a process.
enum Victim {
    Busiest([usize; 2], &'static str),
    NatsServer,
    Process(usize),
}

/// The process of `pair` with the larger `metric`.
fn busiest(cm: &Callmesh, pair: [usize; 2], metric: &str) -> usize {
    if cm.metric_of(pair[0], metric) >= cm.metric_of(pair[1], metric) { pair[0] } else { pair[1] }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_survive_one_death_of_each_role_in_turn() {
    let mut nats = tokio::task::spawn_blocking(|| NatsCluster::start(3).expect("a 3-server JetStream cluster")).await.unwrap();
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let recordings = tempfile::tempdir().unwrap();
    let config = format!(
        "[nats]\nreplicas = 3\n[sip]\nreuse_port = true\n[media]\nrecordings_dir = \"{}\"\n\
         [[routes]]\nuser = '^bob$'\ntarget = \"{}\"\nrecord = true\n",
        recordings.path().display(),
        bob.uri()
    );
    let urls = nats.urls();
    let mut cm = tokio::task::spawn_blocking(move || {
        let (min, _) = common::rtp_range();
        let media = |i: u16| format!("[media]\nrtp_ports = \"{}-{}\"\n", min + 100 * i, min + 100 * i + 99);
        let (m0, m1) = (media(0), media(1));
        let roles = [
            ("edge", "edge-0", ""),
            ("edge", "edge-1", ""),
            ("router", "router-0", ""),
            ("router", "router-1", ""),
            ("session", "session-0", ""),
            ("session", "session-1", ""),
            ("media", "media-0", m0.as_str()),
            ("media", "media-1", m1.as_str()),
        ];
        Callmesh::processes_on(&urls, &config, &roles)
    })
    .await
    .unwrap();
    let target = format!("sip:bob@{}", cm.sip[0]);
    let mut callers = Vec::new();
    let mut calls = Vec::new();
    for i in 0..PHONES {
        let alice = SimplePeer::new(&format!("alice{i}")).await.unwrap();
        for _ in 0..CALLS_EACH {
            let call = alice.call(&target).await.unwrap();
            call.wait_established(WAIT).await.unwrap();
            calls.push(call);
        }
        callers.push(alice);
    }
    let n = PHONES * CALLS_EACH;
    let theirs = calls_up(&bob, n).await;
    let mut players: Vec<_> = calls.iter().map(|c| play(c.clone(), ALICE)).collect();
    players.extend(theirs.iter().map(|c| play(c.clone(), BOB)));
    let phones: Vec<Call> = calls.iter().chain(&theirs).cloned().collect();

    let (mut extra, mut dead, mut moved) = (Vec::new(), Vec::new(), 0);
    let faults = [
        ("session node", Victim::Busiest(SESSIONS, "session_calls_active")),
        ("media node", Victim::Busiest(MEDIA, "media_sessions_active")),
        ("edge", Victim::Busiest(EDGES, "edge_responses_relayed_total")),
        ("NATS server", Victim::NatsServer),
        ("router", Victim::Process(ROUTER_0)),
    ];
    for (what, victim) in faults {
        let killed = Instant::now();
        let process = match victim {
            Victim::Busiest(pair, metric) => Some(busiest(&cm, pair, metric)),
            Victim::NatsServer => None,
            Victim::Process(i) => Some(i),
        };
        match process {
            Some(i) => {
                if MEDIA.contains(&i) {
                    moved = cm.metric_of(i, "media_sessions_active") as usize;
                }
                cm.processes[i].kill();
                dead.push(i);
            }
            None => nats.kill(0),
        }
        let gap = match longest_gap(&phones, killed).await {
            Ok(gap) => gap,
            Err(call) => panic!("no RTP back to {call} after the {what}'s death:\n{}", cm.output()),
        };
        // A new call goes through after each death (from a phone of its own).
        let alice = SimplePeer::new(&format!("late{}", extra.len())).await.unwrap();
        let call = alice.call(&target).await.unwrap();
        call.wait_established(WAIT).await.unwrap_or_else(|e| panic!("a new call after the {what}'s death: {e}"));
        eprintln!("{what} killed: longest RTP gap {} ms; a new call {} ms after", gap.as_millis(), killed.elapsed().as_millis());
        extra.push((alice, call));
    }
    assert_eq!(hear_now(&calls, BOB).await, vec![true; n], "the callers hear bob after every death");
    assert_eq!(hear_now(&theirs, ALICE).await, vec![true; n], "bob hears the callers after every death");

    // Half the calls end from bob's side, the rest (and the late ones) from the callers'.
    for call in theirs.iter().take(n / 2) {
        call.hangup().await.unwrap();
        call.wait_ended(WAIT).await.expect("bob's BYE answered");
    }
    let deadline = Instant::now() + WAIT;
    while calls.iter().filter(|c| c.state().is_final()).count() < n / 2 {
        if Instant::now() > deadline {
            let states: Vec<String> = calls.iter().map(|c| format!("{} {:?}", c.id().as_str(), c.state())).collect();
            panic!("bob's BYEs did not end the callers' calls: {states:?}\n{}", cm.output());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for call in calls.iter().filter(|c| !c.state().is_final()).chain(extra.iter().map(|(_, c)| c)) {
        call.hangup().await.unwrap();
        call.wait_ended(WAIT).await.expect("the caller's BYE answered");
    }
    let deadline = Instant::now() + WAIT;
    while !bob.active_calls().is_empty() {
        if Instant::now() > deadline {
            let left: Vec<String> = bob.active_calls().iter().map(|c| format!("{} {:?}", c.id().as_str(), c.state())).collect();
            panic!("bob's calls left: {left:?}\n{}", cm.output());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for p in players {
        p.await.unwrap();
    }
    let survivor = cluster::bus::NatsBus::connect(nats.url(1), "test").await.expect("connects to a survivor");
    let registry = cluster::registry::JetStreamRegistry::connect(survivor.client().clone(), &Default::default()).await.unwrap();
    let records = || async {
        cluster::registry::Registry::keys(&registry, cluster::registry::Bucket::Sessions, "").await.is_ok_and(|k| k.is_empty())
    };
    testkit::wait::until_async("every session record to be removed", WAIT, records).await;
    tokio::task::spawn_blocking(move || {
        let alive: Vec<usize> = (0..cm.processes.len()).filter(|i| !dead.contains(i)).collect();
        let deadline = Instant::now() + WAIT;
        loop {
            let active: u64 =
                alive.iter().map(|i| cm.metric_of(*i, "session_calls_active") + cm.metric_of(*i, "media_sessions_active")).sum();
            if active == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "calls or relays left after the calls ended:\n{}", cm.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();

    // One finished recording per call (its sidecar); a second segment for each call the
    // media node's death moved, beside the first the dead node left.
    let sidecars = common::recordings::files(recordings.path(), ".json");
    assert_eq!(sidecars.len(), n + extra.len(), "one finished recording per call: {sidecars:?}");
    let seconds: Vec<_> = sidecars.iter().filter_map(|p| p.to_str()?.strip_suffix("-2.json")).collect();
    assert_eq!(seconds.len(), moved, "a second segment for each call moved: {sidecars:?}");
    assert!(seconds.iter().all(|s| std::path::Path::new(&format!("{s}.wav")).exists()), "first segments: {seconds:?}");
}
