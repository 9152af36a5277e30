//! Node membership: each node puts a `NodeHeartbeat` (role, addresses, load) in the `nodes`
//! bucket every interval; a watch turns the bucket's changes into joins, leaves (a node
//! deleted its heartbeat on shutdown) and deaths (no heartbeat within the TTL, judged by
//! the watcher's own clock, so nodes need no synchronised clocks). No death is declared
//! while the bucket itself is silent — no heartbeat from anyone, the watcher's own
//! included, for half the TTL: that is the registry (a JetStream server's death, a leader
//! election) or the watcher's link failing, not every node dying at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::contracts::{self, NodeHeartbeat};
use crate::registry::{Bucket, Change, Registry, RegistryError, Since};

/// How long a node may be silent before the others take it for dead (three heartbeats of
/// a second): session nodes take its calls over, routers forget its queue callers.
pub const DEAD_AFTER: Duration = Duration::from_secs(3);

/// What a membership watch reports.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberEvent {
    /// A node appeared (or came back after it was declared dead).
    Joined(NodeHeartbeat),
    /// A known node sent a heartbeat (its load may have changed).
    Updated(NodeHeartbeat),
    /// A node left cleanly.
    Left(String),
    /// A node stopped sending heartbeats.
    Died(String),
}

/// A running heartbeat. Dropping it stops the heartbeats (the node will be seen to die);
/// [`Heartbeat::leave`] stops them and removes the node (it is seen to leave).
pub struct Heartbeat {
    task: tokio::task::JoinHandle<()>,
    registry: Arc<dyn Registry>,
    node_id: String,
    /// When the last heartbeat was written (`None` until the first one is).
    last_written: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl Heartbeat {
    /// Starts putting `make()` every `interval`, the first one at once.
    pub fn start(
        registry: Arc<dyn Registry>,
        interval: Duration,
        make: impl Fn() -> NodeHeartbeat + Send + 'static,
    ) -> Heartbeat {
        let node_id = make().node_id;
        let (reg, key) = (registry.clone(), node_id.clone());
        let last_written = Arc::new(std::sync::Mutex::new(None));
        let written = last_written.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                let mut hb = make();
                hb.meta = contracts::meta(&hb.node_id);
                match reg.put(Bucket::Nodes, &key, Bytes::from(hb.encode_to_vec())).await {
                    Ok(_) => *written.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now()),
                    Err(e) => tracing::warn!(node = %key, error = %e, "heartbeat not written"),
                }
            }
        });
        Heartbeat { task, registry, node_id, last_written }
    }

    /// How long ago the last heartbeat was written: the registry's health as this node sees
    /// it (`None` until one is).
    pub fn since_written(&self) -> Option<Duration> {
        self.last_written.lock().unwrap_or_else(|e| e.into_inner()).map(|t| t.elapsed())
    }

    /// Stops the heartbeats and removes this node from the bucket.
    pub async fn leave(self) -> Result<(), RegistryError> {
        self.task.abort();
        self.registry.delete(Bucket::Nodes, &self.node_id, None).await
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The nodes currently alive (heartbeat younger than `ttl` by its sender's clock).
pub async fn members(registry: &dyn Registry, ttl: Duration) -> Result<Vec<NodeHeartbeat>, RegistryError> {
    let mut out = Vec::new();
    for key in registry.keys(Bucket::Nodes, "").await? {
        if let Some(entry) = registry.get(Bucket::Nodes, &key).await?
            && let Ok(hb) = NodeHeartbeat::decode(&entry.value[..])
            && is_fresh(&hb, ttl)
        {
            out.push(hb);
        }
    }
    Ok(out)
}

fn is_fresh(hb: &NodeHeartbeat, ttl: Duration) -> bool {
    let sent = hb.meta.as_ref().map(|m| m.sent_at_unix_ms).unwrap_or(0);
    contracts::unix_ms().saturating_sub(sent) <= ttl.as_millis() as u64
}

/// A stream of membership events.
pub struct MemberWatch {
    rx: mpsc::UnboundedReceiver<MemberEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl MemberWatch {
    pub async fn next(&mut self) -> Option<MemberEvent> {
        self.rx.recv().await
    }
}

impl Drop for MemberWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches the `nodes` bucket: the nodes alive now are reported as `Joined` first. A watch
/// that hears nothing new for half the TTL (not even the watcher's own heartbeat) is
/// started again, at most once per half TTL: its consumer may have died with a NATS server,
/// or stalled under load while the bucket is fine (the dead would then be declared only
/// once it came back). A heartbeat is told new by its revision: the latest values a watch
/// started again replays are not news, so they neither make a dead node alive nor end a
/// silence.
pub async fn watch(registry: Arc<dyn Registry>, ttl: Duration) -> Result<MemberWatch, RegistryError> {
    let mut changes = registry.watch(Bucket::Nodes, ">", Since::LatestValues).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut seen: HashMap<String, Instant> = HashMap::new();
        // Each node's last heartbeat revision, and when the watch was last started again.
        let mut revisions: HashMap<String, u64> = HashMap::new();
        let mut restarted: Option<Instant> = None;
        let mut last_put: Option<Instant> = None;
        loop {
            let next_death = seen.values().min().map(|t| *t + ttl);
            let change = tokio::select! {
                c = changes.next() => c,
                _ = tokio::time::sleep_until(next_death.unwrap_or_else(Instant::now)), if next_death.is_some() => {
                    let now = Instant::now();
                    if last_put.is_some_and(|t| now.duration_since(t) > ttl / 2) {
                        // The bucket is silent: no verdict until heartbeats flow again.
                        for t in seen.values_mut() {
                            *t = (*t).max(now - ttl / 2);
                        }
                        if restarted.is_none_or(|t| now.duration_since(t) >= ttl / 2) {
                            restarted = Some(now);
                            match registry.watch(Bucket::Nodes, ">", Since::LatestValues).await {
                                Ok(again) => {
                                    tracing::info!("membership watch silent: started again");
                                    changes = again;
                                }
                                Err(e) => tracing::warn!(error = %e, "membership watch not started again"),
                            }
                        }
                        continue;
                    }
                    let dead: Vec<String> = seen.iter().filter(|(_, t)| **t + ttl <= now).map(|(k, _)| k.clone()).collect();
                    for node in dead {
                        seen.remove(&node);
                        let _ = tx.send(MemberEvent::Died(node));
                    }
                    continue;
                }
            };
            let event = match change {
                None => return,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "membership watch error");
                    continue;
                }
                Some(Ok(Change::Delete { key, .. })) => match seen.remove(&key) {
                    Some(_) => MemberEvent::Left(key),
                    None => continue,
                },
                Some(Ok(Change::Put(entry))) => {
                    // A value replayed by a watch started again: not news.
                    if revisions.get(&entry.key).is_some_and(|r| *r >= entry.revision) {
                        continue;
                    }
                    revisions.insert(entry.key.clone(), entry.revision);
                    last_put = Some(Instant::now());
                    let Ok(hb) = NodeHeartbeat::decode(&entry.value[..]) else {
                        tracing::warn!(key = %entry.key, "undecodable heartbeat");
                        continue;
                    };
                    if !seen.contains_key(&hb.node_id) && !is_fresh(&hb, ttl) {
                        continue;
                    }
                    match seen.insert(hb.node_id.clone(), Instant::now()) {
                        Some(_) => MemberEvent::Updated(hb),
                        None => MemberEvent::Joined(hb),
                    }
                }
            };
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    Ok(MemberWatch { rx, task })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Entry, MemoryRegistry, RegistryConfig, Watch};
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// The in-process registry, whose first watch stalls once `stall` is set (its consumer
    /// stuck under load: no change, no end), as a JetStream watch can.
    struct StallingRegistry {
        inner: MemoryRegistry,
        watches: AtomicUsize,
        stall: Arc<AtomicBool>,
    }

    #[async_trait]
    impl Registry for StallingRegistry {
        async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<Entry>, RegistryError> {
            self.inner.get(bucket, key).await
        }
        async fn create(&self, bucket: Bucket, key: &str, value: Bytes) -> Result<u64, RegistryError> {
            self.inner.create(bucket, key, value).await
        }
        async fn update(&self, bucket: Bucket, key: &str, value: Bytes, revision: u64) -> Result<u64, RegistryError> {
            self.inner.update(bucket, key, value, revision).await
        }
        async fn put(&self, bucket: Bucket, key: &str, value: Bytes) -> Result<u64, RegistryError> {
            self.inner.put(bucket, key, value).await
        }
        async fn delete(&self, bucket: Bucket, key: &str, revision: Option<u64>) -> Result<(), RegistryError> {
            self.inner.delete(bucket, key, revision).await
        }
        async fn keys(&self, bucket: Bucket, prefix: &str) -> Result<Vec<String>, RegistryError> {
            self.inner.keys(bucket, prefix).await
        }
        async fn watch(&self, bucket: Bucket, pattern: &str, since: Since) -> Result<Watch, RegistryError> {
            let mut inner = self.inner.watch(bucket, pattern, since).await?;
            if self.watches.fetch_add(1, Ordering::SeqCst) > 0 {
                return Ok(inner);
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let stall = self.stall.clone();
            let task = tokio::spawn(async move {
                while let Some(change) = inner.next().await {
                    if stall.load(Ordering::SeqCst) {
                        // Stuck: the channel stays open, nothing more comes.
                        std::future::pending::<()>().await;
                    }
                    let _ = tx.send(change);
                }
            });
            Ok(Watch::fed(rx, task))
        }
    }

    fn beat(node: &'static str) -> impl Fn() -> NodeHeartbeat + Send + 'static {
        move || NodeHeartbeat { node_id: node.into(), ..Default::default() }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_watch_is_started_again_and_the_dead_are_declared_in_time() {
        let registry = Arc::new(StallingRegistry {
            inner: MemoryRegistry::new(&RegistryConfig::default()),
            watches: AtomicUsize::new(0),
            stall: Arc::default(),
        });
        let second = Duration::from_secs(1);
        let _watcher = Heartbeat::start(registry.clone(), second, beat("watcher"));
        let a = Heartbeat::start(registry.clone(), second, beat("member-a"));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut watch = watch(registry.clone(), DEAD_AFTER).await.unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        drop(a);
        let died = Instant::now();
        // Its last heartbeat is in; then the watch stalls. Started again, it replays that
        // heartbeat, which must not count as a new one.
        tokio::time::sleep(Duration::from_millis(500)).await;
        registry.stall.store(true, Ordering::SeqCst);
        loop {
            match tokio::time::timeout(Duration::from_secs(30), watch.next()).await.expect("a verdict") {
                Some(MemberEvent::Died(node)) => {
                    assert_eq!(node, "member-a", "only the node that stopped");
                    break;
                }
                Some(_) => {}
                None => panic!("the watch ended"),
            }
        }
        // Its last heartbeat was at most a second before; dead after DEAD_AFTER of silence
        // and the half TTL a silence adds, not after a restart at twice the TTL, nor a TTL
        // after the replay of its last heartbeat.
        let after = died.elapsed();
        assert!(after <= DEAD_AFTER + DEAD_AFTER / 2, "declared dead {after:?} after it stopped");
        assert!(registry.watches.load(Ordering::SeqCst) >= 2, "the stalled watch was started again");
    }
}
