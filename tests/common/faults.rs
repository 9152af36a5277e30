//! What the node-death tests share: the cluster they kill nodes of (an edge, a router, two
//! session nodes, a media node), the two phones' tones, and what each phone hears now.

use std::sync::Arc;

use cluster::bus::NatsBus;
use cluster::contracts::SessionRecord;
use cluster::registry::{Bucket, JetStreamRegistry, Registry, RegistryConfig};
use prost::Message;
use session_core::peer::{Call, SimplePeer};

use super::{Callmesh, rtp_range};
use crate::common::tones::hear;

/// The caller's and the callee's tones.
pub const ALICE: f64 = 440.0;
pub const BOB: f64 = 1000.0;

/// Indices of the processes of [`two_session_nodes`].
pub const SESSION_0: usize = 2;
pub const SESSION_1: usize = 3;
pub const MEDIA: usize = 4;

/// An edge, a router, a session node and a media node (processes 0-3), with `extra` TOML,
/// on their own nats-server.
pub fn one_of_each(extra: &str) -> Callmesh {
    let (min, max) = rtp_range();
    let media = format!("[media]\nrtp_ports = \"{min}-{max}\"\n");
    let roles =
        [("edge", "edge-0", ""), ("router", "router-0", ""), ("session", "session-0", ""), ("media", "media-0", media.as_str())];
    Callmesh::processes(extra, &roles)
}

/// An edge, a router, two session nodes and a media node (processes 0-4), with `extra`
/// TOML, on their own nats-server or on the servers at `urls`.
pub fn two_session_nodes(urls: Option<&str>, extra: &str) -> Callmesh {
    let (min, max) = rtp_range();
    let media = format!("[media]\nrtp_ports = \"{min}-{max}\"\n");
    let roles = [
        ("edge", "edge-0", ""),
        ("router", "router-0", ""),
        ("session", "session-0", ""),
        ("session", "session-1", ""),
        ("media", "media-0", media.as_str()),
    ];
    match urls {
        Some(urls) => Callmesh::processes_on(urls, extra, &roles),
        None => Callmesh::processes(extra, &roles),
    }
}

/// An edge, a router, a session node and two media nodes (processes 0-4, the media nodes
/// 3 and 4 on two halves of the test's RTP ports), with `extra` TOML, on their own
/// nats-server.
pub fn two_media_nodes(extra: &str) -> Callmesh {
    let (min, max) = rtp_range();
    let first = format!("[media]\nrtp_ports = \"{min}-{}\"\n", min + 99);
    let second = format!("[media]\nrtp_ports = \"{}-{max}\"\n", min + 100);
    let roles = [
        ("edge", "edge-0", ""),
        ("router", "router-0", ""),
        ("session", "session-0", ""),
        ("media", "media-0", first.as_str()),
        ("media", "media-1", second.as_str()),
    ];
    Callmesh::processes(extra, &roles)
}

/// Whether each of `calls` hears `freq` above the other phone's tone now: the frames
/// queued meanwhile (2 s at most, the SDK's queue) are read first.
pub async fn hear_now(calls: &[Call], freq: f64) -> Vec<bool> {
    futures::future::join_all(calls.iter().map(|call| async move {
        hear(call, 2.0).await;
        let heard = hear(call, 0.5).await;
        media::audio::tone::dominant_tone(&heard, call.sample_rate(), &[ALICE, BOB]).map(|(f, _)| f) == Some(freq)
    }))
    .await
}

/// `peer`'s calls once it has `n` up (waiting 15 s at most).
pub async fn calls_up(peer: &SimplePeer, n: usize) -> Vec<Call> {
    let what = format!("{} to have {n} calls up", peer.name());
    testkit::wait::until(&what, std::time::Duration::from_secs(15), || peer.active_calls().len() == n).await;
    peer.active_calls()
}

/// `n` calls from `alice` to `bob` through `target`, each side playing its tone: alice's
/// calls, bob's, and the players (each ends with its call).
pub async fn talking(
    alice: &SimplePeer,
    bob: &SimplePeer,
    target: &str,
    n: usize,
) -> (Vec<Call>, Vec<Call>, Vec<tokio::task::JoinHandle<()>>) {
    let mut calls = Vec::new();
    for _ in 0..n {
        let call = alice.call(target).await.unwrap();
        call.wait_established(std::time::Duration::from_secs(15)).await.unwrap();
        calls.push(call);
    }
    let theirs = calls_up(bob, n).await;
    let mut players: Vec<_> = calls.iter().map(|c| crate::common::tones::play(c.clone(), ALICE)).collect();
    players.extend(theirs.iter().map(|c| crate::common::tones::play(c.clone(), BOB)));
    (calls, theirs, players)
}

/// Alice hangs up each of `calls`; each ends at both ends (bob has none left) and its
/// players stop.
pub async fn hang_up(calls: &[Call], bob: &SimplePeer, players: Vec<tokio::task::JoinHandle<()>>) {
    for call in calls {
        call.hangup().await.unwrap();
        call.wait_ended(std::time::Duration::from_secs(15)).await.expect("the BYE is answered");
    }
    calls_up(bob, 0).await;
    for p in players {
        p.await.unwrap();
    }
}

/// How long after `since` RTP came to `call` again: when 50 packets (1 s of audio) more
/// than `before` have arrived, less that second (`None`: not within `within` of `since`).
pub async fn rtp_back(
    call: &Call,
    before: u64,
    since: std::time::Instant,
    within: std::time::Duration,
) -> Option<std::time::Duration> {
    use std::time::{Duration, Instant};
    while Instant::now() < since + within {
        if call.statistics().packets_received >= before + 50 {
            return Some(since.elapsed().saturating_sub(Duration::from_secs(1)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The session registry of the cluster on the NATS servers at `url`.
pub async fn registry(url: &str) -> Arc<dyn Registry> {
    let bus = NatsBus::connect(url, "faults-test").await.expect("connects to NATS");
    Arc::new(JetStreamRegistry::connect(bus.client().clone(), &RegistryConfig::default()).await.expect("buckets"))
}

/// Every call detail record in the cluster's CDR journal at `url`.
pub async fn cdrs(url: &str) -> Vec<cluster::contracts::Cdr> {
    use cluster::journal::{JetStreamJournal, Journal, JournalConfig, Log, Start};
    use futures::StreamExt;
    use prost::Message;
    let bus = NatsBus::connect(url, "cdr-test").await.expect("connects to NATS");
    let journal = JetStreamJournal::connect(bus.client().clone(), &JournalConfig::with_replicas(1)).await.expect("journals");
    let entries = journal.read(Log::Cdrs, Start::Sequence(1), false).await.expect("the CDR journal reads");
    let read = entries.map(|e| cluster::contracts::Cdr::decode(e.expect("a record").payload).expect("a Cdr")).collect();
    tokio::time::timeout(std::time::Duration::from_secs(10), read).await.expect("the CDR journal read to its end")
}

/// The record of the call whose caller leg has SIP Call-ID `call_id`, if exactly one.
pub fn cdr_of<'a>(cdrs: &'a [cluster::contracts::Cdr], call_id: &str) -> Vec<&'a cluster::contracts::Cdr> {
    cdrs.iter().filter(|c| c.legs.first().is_some_and(|l| l.role == "caller" && l.call_id == call_id)).collect()
}

/// Waits until the session records satisfy `ok`, `within` at most; panics naming `what`.
pub async fn records_until(
    registry: &dyn Registry,
    what: &str,
    within: std::time::Duration,
    ok: impl Fn(&[SessionRecord]) -> bool,
) {
    testkit::wait::until_async(what, within, || async { ok(&sessions(registry).await) }).await;
}

/// The session records in the registry (not the rooms' entries beside them).
pub async fn sessions(registry: &dyn Registry) -> Vec<SessionRecord> {
    let mut out = Vec::new();
    for key in registry.keys(Bucket::Sessions, "").await.unwrap().into_iter().filter(|k| !k.starts_with("room.")) {
        if let Some(entry) = registry.get(Bucket::Sessions, &key).await.unwrap() {
            out.push(SessionRecord::decode(&entry.value[..]).unwrap());
        }
    }
    out
}
