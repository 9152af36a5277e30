//! The registry conformance suite, run against `MemoryRegistry` and `JetStreamRegistry` on a
//! real nats-server: every operation, compare-and-set under contention, ordered watches,
//! bucket TTL, key rules.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cluster::registry::{Bucket, BucketConfig, Change, RegistryConfig, RegistryError, Since};
use common::{Fabric, eventually, within};

/// Every bucket kept, except `nodes` whose entries live one second.
fn short_nodes() -> RegistryConfig {
    RegistryConfig { nodes: BucketConfig { max_age: Some(Duration::from_secs(1)), replicas: 1 }, ..Default::default() }
}

conformance!(short_nodes();
    create_get_update_delete,
    keys_by_prefix,
    concurrent_cas_has_exactly_one_winner_per_round,
    watch_sees_every_change_in_order,
    watch_from_latest_values_starts_with_current_entries,
    bucket_ttl_expires_entries,
    invalid_keys_are_refused,
);

async fn create_get_update_delete(f: Fabric) {
    let r = f.registry.as_ref();
    let b = Bucket::Sessions;
    let r1 = r.create(b, "s1", Bytes::from_static(b"one")).await.unwrap();
    assert_eq!(r.create(b, "s1", Bytes::from_static(b"again")).await, Err(RegistryError::AlreadyExists("s1".into())));
    let got = r.get(b, "s1").await.unwrap().unwrap();
    assert_eq!((got.value.as_ref(), got.revision), (&b"one"[..], r1));
    let r2 = r.update(b, "s1", Bytes::from_static(b"two"), r1).await.unwrap();
    assert!(r2 > r1);
    assert!(matches!(r.update(b, "s1", Bytes::from_static(b"stale"), r1).await, Err(RegistryError::WrongRevision { .. })));
    assert_eq!(r.get(b, "s1").await.unwrap().unwrap().value, "two");
    assert!(matches!(r.delete(b, "s1", Some(r1)).await, Err(RegistryError::WrongRevision { .. })));
    r.delete(b, "s1", Some(r2)).await.unwrap();
    assert_eq!(r.get(b, "s1").await.unwrap(), None);
    r.create(b, "s1", Bytes::from_static(b"reborn")).await.unwrap();
    let r3 = r.put(b, "s1", Bytes::from_static(b"put")).await.unwrap();
    assert_eq!(r.get(b, "s1").await.unwrap().unwrap().revision, r3);
    assert_eq!(r.get(b, "missing").await.unwrap(), None);
}

async fn keys_by_prefix(f: Fabric) {
    let r = f.registry.as_ref();
    for k in ["agent.a", "agent.b", "queue.x"] {
        r.put(Bucket::Agents, k, Bytes::from_static(b"1")).await.unwrap();
    }
    r.delete(Bucket::Agents, "agent.b", None).await.unwrap();
    let mut keys = r.keys(Bucket::Agents, "agent.").await.unwrap();
    keys.sort();
    assert_eq!(keys, ["agent.a"]);
    assert_eq!(r.keys(Bucket::Agents, "").await.unwrap().len(), 2);
}

async fn concurrent_cas_has_exactly_one_winner_per_round(f: Fabric) {
    const TASKS: usize = 8;
    const ROUNDS: usize = 15;
    let r = f.registry.clone();
    r.put(Bucket::Sessions, "contended", Bytes::from_static(b"0")).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let (r, barrier) = (r.clone(), barrier.clone());
        handles.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            for round in 0..ROUNDS {
                let current = r.get(Bucket::Sessions, "contended").await.unwrap().unwrap();
                barrier.wait().await;
                let value = Bytes::from(format!("{round}:{task}"));
                match r.update(Bucket::Sessions, "contended", value, current.revision).await {
                    Ok(_) => wins.push(round),
                    Err(RegistryError::WrongRevision { .. }) => {}
                    Err(e) => panic!("unexpected error: {e}"),
                }
                barrier.wait().await;
            }
            wins
        }));
    }
    let mut winners_per_round = [0usize; ROUNDS];
    for h in handles {
        for round in h.await.unwrap() {
            winners_per_round[round] += 1;
        }
    }
    assert_eq!(winners_per_round, [1; ROUNDS], "exactly one compare-and-set wins each round");
}

async fn watch_sees_every_change_in_order(f: Fabric) {
    let r = f.registry.as_ref();
    let mut watch = r.watch(Bucket::Sessions, "w.>", Since::Now).await.unwrap();
    r.put(Bucket::Sessions, "other", Bytes::from_static(b"ignored")).await.unwrap();
    let mut expected = Vec::new();
    for i in 0..30u32 {
        let key = format!("w.k{}", i % 4);
        if i % 7 == 6 {
            r.delete(Bucket::Sessions, &key, None).await.unwrap();
            expected.push((key, None));
        } else {
            r.put(Bucket::Sessions, &key, Bytes::from(i.to_string())).await.unwrap();
            expected.push((key, Some(i.to_string())));
        }
    }
    let mut last_revision = 0;
    for (i, (key, value)) in expected.into_iter().enumerate() {
        let change = within(&format!("change {i}"), watch.next()).await.unwrap().unwrap();
        let revision = match (&change, &value) {
            (Change::Put(e), Some(v)) if e.key == key && e.value == v.as_bytes() => e.revision,
            (Change::Delete { key: k, revision }, None) if *k == key => *revision,
            _ => panic!("change {i}: expected {key}={value:?}, got {change:?}"),
        };
        assert!(revision > last_revision, "revisions increase");
        last_revision = revision;
    }
}

async fn watch_from_latest_values_starts_with_current_entries(f: Fabric) {
    let r = f.registry.as_ref();
    r.put(Bucket::Agents, "l.a", Bytes::from_static(b"1")).await.unwrap();
    r.put(Bucket::Agents, "l.b", Bytes::from_static(b"2")).await.unwrap();
    r.put(Bucket::Agents, "l.a", Bytes::from_static(b"3")).await.unwrap();
    r.put(Bucket::Agents, "l.gone", Bytes::from_static(b"x")).await.unwrap();
    r.delete(Bucket::Agents, "l.gone", None).await.unwrap();
    let mut watch = r.watch(Bucket::Agents, "l.>", Since::LatestValues).await.unwrap();
    let mut snapshot = Vec::new();
    for _ in 0..2 {
        match within("snapshot", watch.next()).await.unwrap().unwrap() {
            Change::Put(e) => snapshot.push((e.key, e.value)),
            other => panic!("snapshot has only current values, got {other:?}"),
        }
    }
    snapshot.sort();
    assert_eq!(snapshot, [("l.a".to_owned(), Bytes::from_static(b"3")), ("l.b".to_owned(), Bytes::from_static(b"2"))]);
    r.put(Bucket::Agents, "l.c", Bytes::from_static(b"4")).await.unwrap();
    let next = within("the change after the snapshot", watch.next()).await.unwrap().unwrap();
    assert_eq!(next.key(), "l.c");
}

async fn bucket_ttl_expires_entries(f: Fabric) {
    let r = f.registry.clone();
    r.put(Bucket::Nodes, "n1", Bytes::from_static(b"alive")).await.unwrap();
    assert!(r.get(Bucket::Nodes, "n1").await.unwrap().is_some(), "present right after the write");
    r.put(Bucket::Sessions, "kept", Bytes::from_static(b"1")).await.unwrap();
    eventually("the nodes entry to expire (bucket max age 1 s)", Duration::from_secs(5), || {
        let r = r.clone();
        async move { r.get(Bucket::Nodes, "n1").await.unwrap().is_none().then_some(()) }
    })
    .await;
    assert!(r.keys(Bucket::Nodes, "").await.unwrap().is_empty());
    assert!(r.get(Bucket::Sessions, "kept").await.unwrap().is_some(), "buckets without max age keep entries");
}

async fn invalid_keys_are_refused(f: Fabric) {
    for bad in ["", "a b", ".x", "x.", "a*b", "alice@example.com"] {
        assert_eq!(f.registry.put(Bucket::Locations, bad, Bytes::new()).await, Err(RegistryError::InvalidKey(bad.into())));
    }
    let key = cluster::registry::encode_key("alice@example.com");
    f.registry.put(Bucket::Locations, &key, Bytes::from_static(b"ok")).await.unwrap();
}
