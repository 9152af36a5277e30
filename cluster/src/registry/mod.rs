//! The session registry: a replicated key-value store with revisions, compare-and-set,
//! watches and bucket-wide TTL. [`JetStreamRegistry`] runs on NATS JetStream KV;
//! [`MemoryRegistry`] is its in-process twin for the all-in-one node.
//!
//! Keys follow NATS KV rules in both backends (`[-/_=.a-zA-Z0-9]`, dots separate tokens);
//! [`encode_key`] turns any text (an address-of-record, say) into one token. JetStream
//! 2.9 has no per-key TTL: a bucket has a maximum age, and values that need their own
//! expiry (registrations, leases) carry it.

mod jetstream;
mod memory;
mod patience;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

pub use self::jetstream::JetStreamRegistry;
pub use self::memory::MemoryRegistry;
pub use self::patience::{PATIENCE, patiently, patiently_for};

/// The buckets of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    /// Session records (`SessionRecord`), by session id.
    Sessions,
    /// Registrations (`Registration`), by encoded address-of-record.
    Locations,
    /// Agents and their state, by agent id.
    Agents,
    /// Node heartbeats (`NodeHeartbeat`), by node id.
    Nodes,
}

impl Bucket {
    pub const ALL: [Bucket; 4] = [Bucket::Sessions, Bucket::Locations, Bucket::Agents, Bucket::Nodes];

    /// The JetStream bucket name.
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Sessions => "callmesh_sessions",
            Bucket::Locations => "callmesh_locations",
            Bucket::Agents => "callmesh_agents",
            Bucket::Nodes => "callmesh_nodes",
        }
    }
}

/// How a bucket is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketConfig {
    /// Entries not written for this long disappear (no watch event on JetStream 2.9).
    pub max_age: Option<Duration>,
    /// Copies in a JetStream cluster (1 on a single server, 3 in a 3-server cluster).
    pub replicas: usize,
}

/// The configuration of every bucket.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub sessions: BucketConfig,
    pub locations: BucketConfig,
    pub agents: BucketConfig,
    pub nodes: BucketConfig,
}

impl RegistryConfig {
    /// Defaults with `replicas` copies of every bucket.
    pub fn with_replicas(replicas: usize) -> Self {
        let keep = BucketConfig { max_age: None, replicas };
        RegistryConfig {
            sessions: keep,
            // Bindings carry their own expiry; the bucket age only bounds what is forgotten.
            locations: BucketConfig { max_age: Some(Duration::from_secs(24 * 3600)), replicas },
            agents: keep,
            nodes: BucketConfig { max_age: Some(Duration::from_secs(60)), replicas },
        }
    }

    pub fn bucket(&self, bucket: Bucket) -> BucketConfig {
        match bucket {
            Bucket::Sessions => self.sessions,
            Bucket::Locations => self.locations,
            Bucket::Agents => self.agents,
            Bucket::Nodes => self.nodes,
        }
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig::with_replicas(1)
    }
}

/// A stored value and its revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Bytes,
    pub revision: u64,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Put(Entry),
    Delete { key: String, revision: u64 },
}

impl Change {
    pub fn key(&self) -> &str {
        match self {
            Change::Put(e) => &e.key,
            Change::Delete { key, .. } => key,
        }
    }
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Only changes made after the watch starts.
    Now,
    /// The current value of every matching key first (as `Put`), then the changes.
    LatestValues,
}

/// A stream of changes, in the order they were made.
pub struct Watch {
    rx: mpsc::UnboundedReceiver<Result<Change, RegistryError>>,
    _task: Option<WatchTask>,
}

/// Stops the task feeding a watch when the watch is dropped.
struct WatchTask(tokio::task::JoinHandle<()>);

impl Drop for WatchTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Watch {
    /// A watch fed by `task` through `rx` (the task stops when the watch is dropped).
    pub(crate) fn fed(rx: mpsc::UnboundedReceiver<Result<Change, RegistryError>>, task: tokio::task::JoinHandle<()>) -> Watch {
        Watch { rx, _task: Some(WatchTask(task)) }
    }

    /// The next change; `None` when the watch ended.
    pub async fn next(&mut self) -> Option<Result<Change, RegistryError>> {
        self.rx.recv().await
    }
}

/// Why a registry operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("key {0:?} already exists")]
    AlreadyExists(String),
    /// A compare-and-set lost: someone wrote since that revision.
    #[error("key {key:?} is not at revision {expected}")]
    WrongRevision { key: String, expected: u64 },
    #[error("invalid key {0:?}")]
    InvalidKey(String),
    #[error("registry: {0}")]
    Backend(String),
}

/// The registry operations.
#[async_trait]
pub trait Registry: Send + Sync {
    async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<Entry>, RegistryError>;

    /// Stores `value` only if `key` does not exist.
    async fn create(&self, bucket: Bucket, key: &str, value: Bytes) -> Result<u64, RegistryError>;

    /// Stores `value` only if `key` is at `revision` (compare-and-set).
    async fn update(&self, bucket: Bucket, key: &str, value: Bytes, revision: u64) -> Result<u64, RegistryError>;

    /// Stores `value` whatever is there.
    async fn put(&self, bucket: Bucket, key: &str, value: Bytes) -> Result<u64, RegistryError>;

    /// Deletes `key`, only if it is at `revision` when one is given.
    async fn delete(&self, bucket: Bucket, key: &str, revision: Option<u64>) -> Result<(), RegistryError>;

    /// Keys that start with `prefix` (text prefix; "" for all).
    async fn keys(&self, bucket: Bucket, prefix: &str) -> Result<Vec<String>, RegistryError>;

    /// Changes to keys matching `pattern` (NATS wildcards over dot-separated tokens; `>`
    /// for all).
    async fn watch(&self, bucket: Bucket, pattern: &str, since: Since) -> Result<Watch, RegistryError>;
}

/// True for a key both backends accept.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.'))
}

fn check_key(key: &str) -> Result<(), RegistryError> {
    if is_valid_key(key) { Ok(()) } else { Err(RegistryError::InvalidKey(key.to_owned())) }
}

/// Encodes any text as a single key token: bytes outside `[-_a-zA-Z0-9]` become `=XX`.
pub fn encode_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// The text [`encode_key`] encoded.
pub fn decode_key(key: &str) -> String {
    let mut out = Vec::with_capacity(key.len());
    let bytes = key.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&key[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_their_encoding() {
        assert!(is_valid_key("session.abc-1"));
        for bad in ["", ".a", "a.", "a..b", "a b", "a*", "a>"] {
            assert!(!is_valid_key(bad), "{bad:?}");
        }
        let k = encode_key("alice@example.com");
        assert_eq!(k, "alice=40example=2Ecom");
        assert!(is_valid_key(&k) && !k.contains('.'));
        for text in ["agent1", "alice@example.com", "a.b=c d"] {
            assert_eq!(decode_key(&encode_key(text)), text);
        }
    }
}
