//! A 3-server NATS cluster with replicated buckets loses a server (SIGKILL) while three
//! writers keep writing. Every write that was acknowledged must still be there, and every
//! writer must keep making progress after the loss.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cluster::bus::NatsBus;
use cluster::registry::{Bucket, JetStreamRegistry, Registry, RegistryConfig, RegistryError};
use futures::StreamExt;
use testkit::nats::NatsCluster;
use testkit::wait::until;
use tokio::time::Instant;

#[derive(Default, Debug)]
struct Progress {
    /// Keys created and acknowledged, with their value.
    acked: Vec<(String, u64)>,
    /// The last counter value acknowledged by compare-and-set.
    counter: u64,
    errors: usize,
    acked_after_kill: usize,
}

async fn connect(urls: &str, name: &str) -> JetStreamRegistry {
    let bus = NatsBus::connect(urls, name).await.expect("connects");
    JetStreamRegistry::connect(bus.client().clone(), &RegistryConfig::with_replicas(3)).await.expect("replicated buckets")
}

/// What the test watches while writers run: writes acknowledged by each, in all and after
/// the kill.
#[derive(Default)]
struct Watch {
    acked: [AtomicUsize; 3],
    after_kill: [AtomicUsize; 3],
}

async fn writer(
    id: usize,
    registry: JetStreamRegistry,
    stop: Arc<AtomicBool>,
    killed_at: Arc<std::sync::Mutex<Option<Instant>>>,
    watch: Arc<Watch>,
) -> Progress {
    let mut p = Progress::default();
    let counter_key = format!("w{id}.counter");
    let mut seq = 0u64;
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        let key = format!("w{id}.n{seq}");
        let created = registry.create(Bucket::Sessions, &key, Bytes::from(seq.to_string())).await;
        let cas = async {
            let current = registry.get(Bucket::Sessions, &counter_key).await?;
            let (value, revision) = match current {
                Some(e) => (String::from_utf8_lossy(&e.value).parse::<u64>().unwrap_or(0), Some(e.revision)),
                None => (0, None),
            };
            let next = Bytes::from((value + 1).to_string());
            match revision {
                Some(r) => registry.update(Bucket::Sessions, &counter_key, next, r).await.map(|_| value + 1),
                None => registry.create(Bucket::Sessions, &counter_key, next).await.map(|_| value + 1),
            }
        };
        let counted: Result<u64, RegistryError> = cas.await;
        let after_kill = killed_at.lock().unwrap().is_some_and(|t| Instant::now() > t);
        match (&created, &counted) {
            (Ok(_), Ok(n)) => {
                p.acked.push((key, seq));
                p.counter = *n;
                watch.acked[id].fetch_add(1, Ordering::SeqCst);
                if after_kill {
                    p.acked_after_kill += 1;
                    watch.after_kill[id].fetch_add(1, Ordering::SeqCst);
                }
            }
            _ => {
                if created.is_ok() {
                    p.acked.push((key, seq));
                }
                if let Ok(n) = counted {
                    p.counter = n;
                }
                p.errors += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_the_loss_of_a_server() {
    let mut cluster = NatsCluster::start(3).expect("3-server NATS cluster");
    let urls: Vec<String> = (0..3).map(|i| cluster.url(i).to_owned()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let killed_at = Arc::new(std::sync::Mutex::new(None));
    let watch = Arc::new(Watch::default());
    let mut writers = Vec::new();
    for id in 0..3 {
        // Each writer prefers a different server; writer 0's server is the one killed.
        let preferred: Vec<&str> = (0..3).map(|k| urls[(id + k) % 3].as_str()).collect();
        let registry = connect(&preferred.join(","), &format!("writer-{id}")).await;
        writers.push(tokio::spawn(writer(id, registry, stop.clone(), killed_at.clone(), watch.clone())));
    }
    let all = |counts: &[AtomicUsize; 3], n: usize| counts.iter().all(|c| c.load(Ordering::SeqCst) >= n);
    until("every writer's first 20 acknowledged writes", Duration::from_secs(30), || all(&watch.acked, 20)).await;
    cluster.kill(0);
    *killed_at.lock().unwrap() = Some(Instant::now());
    // Leader elections take seconds, longer on a loaded machine: wait for the progress
    // itself (bounded), not for a fixed time.
    until("every writer's 20 acknowledged writes after the kill", Duration::from_secs(60), || all(&watch.after_kill, 20)).await;
    stop.store(true, Ordering::SeqCst);
    let mut results = Vec::new();
    for w in writers {
        results
            .push(tokio::time::timeout(Duration::from_secs(30), w).await.expect("writer stops").expect("writer did not panic"));
    }

    if std::env::var("FAILOVER_LOGS").is_ok() {
        for i in 1..3 {
            eprintln!("==== server {i}\n{}", cluster.output(i));
        }
    }
    for (id, p) in results.iter().enumerate() {
        eprintln!("writer {id}: {} acknowledged, {} after the kill, {} errors", p.acked.len(), p.acked_after_kill, p.errors);
    }
    let survivors = format!("{},{}", urls[1], urls[2]);
    let check = connect(&survivors, "checker").await;
    // Read every key written back, 64 reads in flight.
    let keys = check.keys(Bucket::Sessions, "w").await.unwrap();
    let check = &check;
    let stored: HashMap<String, String> = futures::stream::iter(keys)
        .map(|key| async move {
            let entry = check.get(Bucket::Sessions, &key).await.unwrap_or_else(|e| panic!("reading {key}: {e}"));
            (key, entry.map(|e| String::from_utf8_lossy(&e.value).into_owned()).unwrap_or_default())
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for (id, p) in results.iter().enumerate() {
        assert!(!p.acked.is_empty(), "writer {id} wrote nothing: {p:?}");
        assert!(p.acked_after_kill > 0, "writer {id} made no progress after the kill ({} errors)", p.errors);
        for (key, value) in &p.acked {
            assert_eq!(stored.get(key), Some(&value.to_string()), "acknowledged {key} is lost");
        }
        let counter: u64 = stored.get(&format!("w{id}.counter")).expect("counter exists").parse().unwrap();
        assert!(counter >= p.counter, "writer {id}: counter {counter} is behind the acknowledged {}", p.counter);
    }
}
