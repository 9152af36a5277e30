//! Measures the fabric: request/reply round trip (p50/p99) in-process and over NATS on
//! loopback, and registry compare-and-set updates per second in memory, on one NATS server
//! and on a 3-server cluster with 3 replicas. Starts its own nats-server(s).
//!
//! `cargo run --release -p callmesh-cluster --example fabric_bench`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::bus::{Bus, Headers, LocalBus, NatsBus};
use cluster::registry::{Bucket, JetStreamRegistry, MemoryRegistry, Registry, RegistryConfig};
use cluster::subjects::test;
use testkit::nats::{NatsCluster, NatsServer};

const REQUESTS: usize = 20_000;
const CAS_SECONDS: u64 = 5;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn round_trips(name: &str, server: Arc<dyn Bus>, client: Arc<dyn Bus>) {
    let subject = test("bench-echo");
    let mut sub = server.subscribe(&subject).await.unwrap();
    server.flush().await.unwrap();
    let responder = server.clone();
    let task = tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            let _ = responder.publish_reply(m.reply.as_deref().unwrap_or("_"), Headers::new(), m.payload).await;
        }
    });
    let payload = Bytes::from(vec![7u8; 256]);
    let mut times = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let t = Instant::now();
        client.request(&subject, Headers::new(), payload.clone(), Duration::from_secs(5)).await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "request/reply {name:<22} p50 {:>8.1} µs   p99 {:>8.1} µs   ({REQUESTS} requests, 256-byte payload)",
        percentile(&times, 0.50).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6
    );
    task.abort();
}

/// Sequential compare-and-set updates of one key by `writers` concurrent writers, each on
/// its own key, for `CAS_SECONDS`.
async fn cas_rate(name: &str, registry: Arc<dyn Registry>, writers: usize) {
    let deadline = Instant::now() + Duration::from_secs(CAS_SECONDS);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let r = registry.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("bench-{w}");
            let mut revision = r.put(Bucket::Sessions, &key, Bytes::from_static(b"0")).await.unwrap();
            let mut n = 0u64;
            while Instant::now() < deadline {
                revision = r.update(Bucket::Sessions, &key, Bytes::from(n.to_string()), revision).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    println!("KV CAS {name:<30} {writers} writer(s): {:>8.0} updates/s", total as f64 / CAS_SECONDS as f64);
}

#[tokio::main]
async fn main() {
    let local = LocalBus::default();
    round_trips("in-process (LocalBus)", Arc::new(local.clone()), Arc::new(local)).await;
    let server = NatsServer::start().expect("nats-server");
    let a = NatsBus::connect(&server.url, "bench-a").await.unwrap();
    let b = NatsBus::connect(&server.url, "bench-b").await.unwrap();
    round_trips("NATS loopback", Arc::new(a.clone()), Arc::new(b)).await;

    let memory: Arc<dyn Registry> = Arc::new(MemoryRegistry::default());
    let single: Arc<dyn Registry> =
        Arc::new(JetStreamRegistry::connect(a.client().clone(), &RegistryConfig::default()).await.unwrap());
    let cluster = NatsCluster::start(3).expect("3-server cluster");
    let c = NatsBus::connect(&cluster.urls(), "bench-c").await.unwrap();
    let replicated: Arc<dyn Registry> =
        Arc::new(JetStreamRegistry::connect(c.client().clone(), &RegistryConfig::with_replicas(3)).await.unwrap());
    for writers in [1, 8] {
        cas_rate("in-process (MemoryRegistry)", memory.clone(), writers).await;
        cas_rate("single NATS, R1", single.clone(), writers).await;
        cas_rate("3-server NATS cluster, R3", replicated.clone(), writers).await;
    }
}
