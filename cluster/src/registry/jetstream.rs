//! The registry on NATS JetStream KV (server 2.9: revisions, compare-and-set with the
//! expected-last-subject-sequence header, ordered watches, bucket max age; replicated
//! across a JetStream cluster with `replicas`).

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{Bucket, Change, Entry, Registry, RegistryConfig, RegistryError, Since, Watch, check_key};

/// The registry on JetStream KV. Cheap to clone.
#[derive(Clone)]
pub struct JetStreamRegistry {
    stores: HashMap<Bucket, kv::Store>,
    /// The same buckets on a context with a short timeout, for operations that create an
    /// ephemeral consumer (keys, watches): nats-server 2.9 may place one on a peer that is
    /// down and never answer, so those are retried quickly rather than waited on.
    consumer_stores: HashMap<Bucket, kv::Store>,
}

/// Attempts at creating an ephemeral consumer, each bounded by `CONSUMER_TIMEOUT`.
const CONSUMER_ATTEMPTS: usize = 10;
const CONSUMER_TIMEOUT: Duration = Duration::from_millis(1500);

/// Runs a consumer-creating operation until it succeeds (see `consumer_stores`).
async fn with_consumer_retries<T, F, Fut>(what: &str, mut op: F) -> Result<T, RegistryError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RegistryError>>,
{
    let mut last = RegistryError::Backend(format!("{what}: no attempt"));
    for attempt in 1..=CONSUMER_ATTEMPTS {
        match tokio::time::timeout(CONSUMER_TIMEOUT, op()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => last = e,
            Err(_) => last = RegistryError::Backend(format!("{what}: timed out")),
        }
        tracing::debug!(what, attempt, error = %last, "JetStream consumer not created, retrying");
    }
    Err(last)
}

fn backend(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Backend(e.to_string())
}

impl JetStreamRegistry {
    /// Creates (or binds to) every bucket on the server `client` is connected to.
    pub async fn connect(client: async_nats::Client, config: &RegistryConfig) -> Result<Self, RegistryError> {
        let mut context = jetstream::new(client);
        context.set_timeout(Duration::from_secs(5));
        let mut quick = context.clone();
        quick.set_timeout(CONSUMER_TIMEOUT);
        let (mut stores, mut consumer_stores) = (HashMap::new(), HashMap::new());
        for bucket in Bucket::ALL {
            let c = config.bucket(bucket);
            let store = create_or_bind(&context, bucket.name(), c.max_age.unwrap_or_default(), c.replicas).await?;
            stores.insert(bucket, store);
            consumer_stores.insert(bucket, quick.get_key_value(bucket.name()).await.map_err(backend)?);
        }
        Ok(JetStreamRegistry { stores, consumer_stores })
    }

    fn store(&self, bucket: Bucket) -> &kv::Store {
        &self.stores[&bucket]
    }
}

/// The stream behind a KV bucket, as the KV API defines it (`KV_<bucket>` on subjects
/// `$KV.<bucket>.>`, one value per key, rollups, direct get).
fn bucket_stream(bucket: &str, max_age: Duration, replicas: usize) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: jetstream::stream::StorageType::File,
        num_replicas: replicas.max(1),
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    }
}

/// Creates the bucket, or binds to it when another node created it (possibly with other
/// settings). The stream is created directly: the client's `create_key_value` first asks
/// for account information in a shape nats-server 2.9 does not send. Retries for a while:
/// a JetStream cluster that just started may still be electing its leader.
async fn create_or_bind(
    context: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
    replicas: usize,
) -> Result<kv::Store, RegistryError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let created = context.create_stream(bucket_stream(bucket, max_age, replicas)).await.err();
        match context.get_key_value(bucket).await {
            Ok(store) => return Ok(store),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                let why = created.map(|c| c.to_string()).unwrap_or_default();
                return Err(RegistryError::Backend(format!("bucket {bucket}: {why} {e}")));
            }
            Err(e) => tracing::info!(%bucket, error = %e, "JetStream not ready, retrying"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn change(e: kv::Entry) -> Change {
    match e.operation {
        kv::Operation::Put => Change::Put(Entry { key: e.key, value: e.value, revision: e.revision }),
        kv::Operation::Delete | kv::Operation::Purge => Change::Delete { key: e.key, revision: e.revision },
    }
}

#[async_trait]
impl Registry for JetStreamRegistry {
    async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<Entry>, RegistryError> {
        check_key(key)?;
        match self.store(bucket).entry(key).await.map_err(backend)? {
            Some(e) if e.operation == kv::Operation::Put => Ok(Some(Entry { key: e.key, value: e.value, revision: e.revision })),
            _ => Ok(None),
        }
    }

    async fn create(&self, bucket: Bucket, key: &str, value: Bytes) -> Result<u64, RegistryError> {
        check_key(key)?;
        self.store(bucket).create(key, value).await.map_err(|e| match e.kind() {
            kv::CreateErrorKind::AlreadyExists => RegistryError::AlreadyExists(key.to_owned()),
            _ => backend(e),
        })
    }

    async fn update(&self, bucket: Bucket, key: &str, value: Bytes, revision: u64) -> Result<u64, RegistryError> {
        check_key(key)?;
        self.store(bucket).update(key, value, revision).await.map_err(|e| match e.kind() {
            kv::UpdateErrorKind::WrongLastRevision => RegistryError::WrongRevision { key: key.to_owned(), expected: revision },
            _ => backend(e),
        })
    }

    async fn put(&self, bucket: Bucket, key: &str, value: Bytes) -> Result<u64, RegistryError> {
        check_key(key)?;
        self.store(bucket).put(key, value).await.map_err(backend)
    }

    async fn delete(&self, bucket: Bucket, key: &str, revision: Option<u64>) -> Result<(), RegistryError> {
        check_key(key)?;
        self.store(bucket).delete_expect_revision(key, revision).await.map_err(|e| match (e.kind(), revision) {
            (kv::UpdateErrorKind::WrongLastRevision, Some(expected)) => {
                RegistryError::WrongRevision { key: key.to_owned(), expected }
            }
            _ => backend(e),
        })
    }

    async fn keys(&self, bucket: Bucket, prefix: &str) -> Result<Vec<String>, RegistryError> {
        let store = &self.consumer_stores[&bucket];
        with_consumer_retries("keys", || async {
            let mut keys = store.keys().await.map_err(backend)?;
            let mut out = Vec::new();
            while let Some(key) = keys.next().await {
                let key = key.map_err(backend)?;
                if key.starts_with(prefix) {
                    out.push(key);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn watch(&self, bucket: Bucket, pattern: &str, since: Since) -> Result<Watch, RegistryError> {
        let store = self.store(bucket);
        // Deletion markers at or below this revision belong to the snapshot of a
        // LatestValues watch: keys already gone, not changes.
        let history_end = match since {
            Since::Now => 0,
            Since::LatestValues => store.stream.get_info().await.map_err(backend)?.state.last_sequence,
        };
        let consumers = &self.consumer_stores[&bucket];
        let mut entries = with_consumer_retries("watch", || async {
            match since {
                Since::Now => consumers.watch(pattern).await,
                Since::LatestValues => consumers.watch_with_history(pattern).await,
            }
            .map_err(backend)
        })
        .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(entry) = entries.next().await {
                let item = match entry {
                    Ok(e) if e.operation != kv::Operation::Put && e.revision <= history_end => continue,
                    Ok(e) => Ok(change(e)),
                    Err(e) => Err(backend(e)),
                };
                if tx.send(item).is_err() {
                    return;
                }
            }
        });
        Ok(Watch::fed(rx, task))
    }
}
