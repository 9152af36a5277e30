//! The in-process registry: per-bucket revision sequences like a JetStream stream,
//! compare-and-set, ordered watches (changes are sent while the bucket lock is held, so a
//! watcher sees them in revision order), and bucket max-age applied when entries are read.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Bucket, BucketConfig, Change, Entry, Registry, RegistryConfig, RegistryError, Since, Watch, check_key};
use crate::subjects;

struct Stored {
    value: Bytes,
    revision: u64,
    written: Instant,
}

struct MemBucket {
    config: BucketConfig,
    entries: BTreeMap<String, Stored>,
    last_revision: u64,
    watchers: Vec<(String, mpsc::UnboundedSender<Result<Change, RegistryError>>)>,
}

impl MemBucket {
    fn live(&self, key: &str) -> Option<&Stored> {
        let stored = self.entries.get(key)?;
        match self.config.max_age {
            Some(age) if stored.written + age <= Instant::now() => None,
            _ => Some(stored),
        }
    }

    fn expire(&mut self) {
        if let Some(age) = self.config.max_age {
            let now = Instant::now();
            self.entries.retain(|_, s| s.written + age > now);
        }
    }

    fn write(&mut self, key: &str, value: Bytes) -> u64 {
        self.last_revision += 1;
        let revision = self.last_revision;
        self.entries.insert(key.to_owned(), Stored { value: value.clone(), revision, written: Instant::now() });
        self.notify(Change::Put(Entry { key: key.to_owned(), value, revision }));
        revision
    }

    fn notify(&mut self, change: Change) {
        self.watchers.retain(|(pattern, tx)| !subjects::matches(pattern, change.key()) || tx.send(Ok(change.clone())).is_ok());
    }
}

/// The in-process registry. Clones share the same data.
#[derive(Clone)]
pub struct MemoryRegistry {
    buckets: Arc<Mutex<HashMap<Bucket, MemBucket>>>,
}

impl Default for MemoryRegistry {
    fn default() -> Self {
        MemoryRegistry::new(&RegistryConfig::default())
    }
}

impl MemoryRegistry {
    pub fn new(config: &RegistryConfig) -> Self {
        let buckets = Bucket::ALL
            .iter()
            .map(|b| {
                (*b, MemBucket { config: config.bucket(*b), entries: BTreeMap::new(), last_revision: 0, watchers: Vec::new() })
            })
            .collect();
        MemoryRegistry { buckets: Arc::new(Mutex::new(buckets)) }
    }

    fn with<T>(&self, bucket: Bucket, f: impl FnOnce(&mut MemBucket) -> T) -> T {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        f(buckets.get_mut(&bucket).expect("every bucket exists"))
    }
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<Entry>, RegistryError> {
        check_key(key)?;
        Ok(self
            .with(bucket, |b| b.live(key).map(|s| Entry { key: key.to_owned(), value: s.value.clone(), revision: s.revision })))
    }

    async fn create(&self, bucket: Bucket, key: &str, value: Bytes) -> Result<u64, RegistryError> {
        check_key(key)?;
        self.with(bucket, |b| match b.live(key) {
            Some(_) => Err(RegistryError::AlreadyExists(key.to_owned())),
            None => Ok(b.write(key, value)),
        })
    }

    async fn update(&self, bucket: Bucket, key: &str, value: Bytes, revision: u64) -> Result<u64, RegistryError> {
        check_key(key)?;
        self.with(bucket, |b| match b.live(key) {
            Some(s) if s.revision == revision => Ok(b.write(key, value)),
            _ => Err(RegistryError::WrongRevision { key: key.to_owned(), expected: revision }),
        })
    }

    async fn put(&self, bucket: Bucket, key: &str, value: Bytes) -> Result<u64, RegistryError> {
        check_key(key)?;
        Ok(self.with(bucket, |b| b.write(key, value)))
    }

    async fn delete(&self, bucket: Bucket, key: &str, revision: Option<u64>) -> Result<(), RegistryError> {
        check_key(key)?;
        self.with(bucket, |b| {
            let current = b.live(key).map(|s| s.revision);
            if let Some(expected) = revision
                && current != Some(expected)
            {
                return Err(RegistryError::WrongRevision { key: key.to_owned(), expected });
            }
            b.entries.remove(key);
            b.last_revision += 1;
            let revision = b.last_revision;
            b.notify(Change::Delete { key: key.to_owned(), revision });
            Ok(())
        })
    }

    async fn keys(&self, bucket: Bucket, prefix: &str) -> Result<Vec<String>, RegistryError> {
        Ok(self.with(bucket, |b| {
            b.expire();
            b.entries.keys().filter(|k| k.starts_with(prefix)).cloned().collect()
        }))
    }

    async fn watch(&self, bucket: Bucket, pattern: &str, since: Since) -> Result<Watch, RegistryError> {
        crate::bus::validate(pattern, true).map_err(|_| RegistryError::InvalidKey(pattern.to_owned()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.with(bucket, |b| {
            if since == Since::LatestValues {
                b.expire();
                for (key, s) in b.entries.iter().filter(|(k, _)| subjects::matches(pattern, k)) {
                    let _ = tx.send(Ok(Change::Put(Entry { key: key.clone(), value: s.value.clone(), revision: s.revision })));
                }
            }
            b.watchers.push((pattern.to_owned(), tx));
        });
        Ok(Watch { rx, _task: None })
    }
}
