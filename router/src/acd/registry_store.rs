//! The ACD's records in the registry's `agents` bucket (JetStream KV in a cluster, its
//! in-memory twin in one process): `agent.<id>`, `caller.<session>`, `memory.<queue>`,
//! `place.<queue>.<caller address>`.
//! Busy marks of users on calls outside the queues (`busy.<user>`, written by session nodes)
//! make those agents busy elsewhere. Planning reads a cache a watch keeps up to date (a snapshot that may lag: the writes
//! that follow are compare-and-set, so a stale plan fails rather than double-books); the
//! read-modify-write steps read the registry itself.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use cluster::contracts::{AcdAgent, AcdCaller, AcdMemory, AcdPlace};
use cluster::registry::{Bucket, Change, Registry, RegistryError, Since, decode_key, encode_key};
use prost::Message;

use super::model::{AgentRecord, CallerRecord, Place};
use super::store::{AcdStore, Revision, StoreError};
use super::strategy::Memory;
use super::wire;

#[derive(Default)]
struct Cache {
    agents: BTreeMap<String, (AgentRecord, Revision)>,
    callers: BTreeMap<String, (CallerRecord, Revision)>,
    memory: BTreeMap<String, Memory>,
    places: BTreeMap<(String, String), (Place, Revision)>,
    /// Users on a call outside the queues (`busy.<user>`, lower case).
    busy: std::collections::BTreeSet<String>,
}

/// The store over a registry.
pub struct RegistryStore {
    registry: Arc<dyn Registry>,
    cache: Arc<Mutex<Cache>>,
    _watch: tokio::task::JoinHandle<()>,
}

fn agent_key(id: &str) -> String {
    format!("agent.{}", encode_key(id))
}

fn caller_key(session: &str) -> String {
    format!("caller.{}", encode_key(session))
}

fn memory_key(queue: &str) -> String {
    format!("memory.{}", encode_key(queue))
}

fn place_key(queue: &str, who: &str) -> String {
    format!("place.{}.{}", encode_key(queue), encode_key(who))
}

/// The (queue, caller address) of a place's key, after `place.`.
fn place_of(rest: &str) -> Option<(String, String)> {
    let (queue, who) = rest.split_once('.')?;
    Some((decode_key(queue), decode_key(who)))
}

fn store_error(e: RegistryError) -> StoreError {
    match e {
        RegistryError::AlreadyExists(_) | RegistryError::WrongRevision { .. } => StoreError::Conflict,
        other => StoreError::Unavailable(other.to_string()),
    }
}

impl Cache {
    /// A value seen at `revision` (by the watch or our own write): kept unless newer is known.
    fn put(&mut self, key: &str, value: &[u8], revision: Revision) {
        if let Some(_id) = key.strip_prefix("agent.") {
            let Ok(a) = AcdAgent::decode(value) else { return };
            let id = decode_key(_id);
            if self.agents.get(&id).is_none_or(|(_, r)| *r < revision) {
                self.agents.insert(id, (wire::agent_from_wire(&a), revision));
            }
        } else if key.starts_with("caller.") {
            let Ok(c) = AcdCaller::decode(value) else { return };
            if self.callers.get(&c.session).is_none_or(|(_, r)| *r < revision) {
                self.callers.insert(c.session.clone(), (wire::caller_from_wire(&c), revision));
            }
        } else if let Some(queue) = key.strip_prefix("memory.") {
            let Ok(m) = AcdMemory::decode(value) else { return };
            self.memory.insert(decode_key(queue), wire::memory_from_wire(&m));
        } else if let Some(user) = key.strip_prefix("busy.") {
            self.busy.insert(decode_key(user));
        } else if let Some(place) = key.strip_prefix("place.").and_then(place_of) {
            let Ok(p) = AcdPlace::decode(value) else { return };
            if self.places.get(&place).is_none_or(|(_, r)| *r < revision) {
                self.places.insert(place, (wire::place_from_wire(&p), revision));
            }
        }
    }

    fn delete(&mut self, key: &str, revision: Revision) {
        if let Some(session) = key.strip_prefix("caller.") {
            let session = decode_key(session);
            if self.callers.get(&session).is_some_and(|(_, r)| *r < revision) {
                self.callers.remove(&session);
            }
        } else if let Some(id) = key.strip_prefix("agent.") {
            self.agents.remove(&decode_key(id));
        } else if let Some(user) = key.strip_prefix("busy.") {
            self.busy.remove(&decode_key(user));
        } else if let Some(place) = key.strip_prefix("place.").and_then(place_of)
            && self.places.get(&place).is_some_and(|(_, r)| *r < revision)
        {
            self.places.remove(&place);
        }
    }
}

impl RegistryStore {
    /// A store over `registry`, its cache fed by a watch of the bucket from now on.
    pub async fn start(registry: Arc<dyn Registry>) -> Result<RegistryStore, StoreError> {
        let mut watch = registry.watch(Bucket::Agents, ">", Since::LatestValues).await.map_err(store_error)?;
        let cache = Arc::new(Mutex::new(Cache::default()));
        let fed = cache.clone();
        let task = tokio::spawn(async move {
            while let Some(change) = watch.next().await {
                let mut cache = fed.lock().unwrap_or_else(|e| e.into_inner());
                match change {
                    Ok(Change::Put(e)) => cache.put(&e.key, &e.value, e.revision),
                    Ok(Change::Delete { key, revision }) => cache.delete(&key, revision),
                    Err(e) => tracing::warn!(error = %e, "ACD store watch"),
                }
            }
        });
        Ok(RegistryStore { registry, cache, _watch: task })
    }

    fn cached<R>(&self, f: impl FnOnce(&mut Cache) -> R) -> R {
        f(&mut self.cache.lock().unwrap_or_else(|e| e.into_inner()))
    }

    async fn write(&self, key: &str, value: Bytes, expected: Option<Revision>) -> Result<Revision, StoreError> {
        let revision = match expected {
            None => self.registry.create(Bucket::Agents, key, value.clone()).await,
            Some(rev) => self.registry.update(Bucket::Agents, key, value.clone(), rev).await,
        }
        .map_err(store_error)?;
        self.cached(|c| c.put(key, &value, revision));
        Ok(revision)
    }
}

impl Drop for RegistryStore {
    fn drop(&mut self) {
        self._watch.abort();
    }
}

#[async_trait]
impl AcdStore for RegistryStore {
    async fn agents(&self) -> Result<BTreeMap<String, (AgentRecord, Revision)>, StoreError> {
        // An agent on a call outside the queues is busy elsewhere (ring-in-use queues only).
        Ok(self.cached(|c| {
            let mut agents = c.agents.clone();
            for (id, (record, _)) in agents.iter_mut() {
                record.busy_elsewhere = c.busy.contains(&id.to_ascii_lowercase());
            }
            agents
        }))
    }

    async fn agent(&self, id: &str) -> Result<Option<(AgentRecord, Revision)>, StoreError> {
        let entry = self.registry.get(Bucket::Agents, &agent_key(id)).await.map_err(store_error)?;
        Ok(entry.and_then(|e| AcdAgent::decode(e.value.as_ref()).ok().map(|a| (wire::agent_from_wire(&a), e.revision))))
    }

    async fn put_agent(&self, id: &str, record: &AgentRecord, expected: Option<Revision>) -> Result<Revision, StoreError> {
        let value = Bytes::from(wire::agent_to_wire(record).encode_to_vec());
        self.write(&agent_key(id), value, expected).await
    }

    async fn callers(&self) -> Result<Vec<(CallerRecord, Revision)>, StoreError> {
        Ok(self.cached(|c| c.callers.values().cloned().collect()))
    }

    async fn caller(&self, session: &str) -> Result<Option<(CallerRecord, Revision)>, StoreError> {
        let entry = self.registry.get(Bucket::Agents, &caller_key(session)).await.map_err(store_error)?;
        Ok(entry.and_then(|e| AcdCaller::decode(e.value.as_ref()).ok().map(|c| (wire::caller_from_wire(&c), e.revision))))
    }

    async fn put_caller(&self, record: &CallerRecord, expected: Option<Revision>) -> Result<Revision, StoreError> {
        let value = Bytes::from(wire::caller_to_wire(record).encode_to_vec());
        self.write(&caller_key(&record.session), value, expected).await
    }

    async fn delete_caller(&self, session: &str, expected: Revision) -> Result<(), StoreError> {
        let key = caller_key(session);
        self.registry.delete(Bucket::Agents, &key, Some(expected)).await.map_err(store_error)?;
        self.cached(|c| c.delete(&key, expected + 1));
        Ok(())
    }

    async fn memory(&self) -> Result<BTreeMap<String, Memory>, StoreError> {
        Ok(self.cached(|c| c.memory.clone()))
    }

    async fn put_memory(&self, queue: &str, memory: &Memory) -> Result<(), StoreError> {
        let key = memory_key(queue);
        let value = Bytes::from(wire::memory_to_wire(memory).encode_to_vec());
        let revision = self.registry.put(Bucket::Agents, &key, value.clone()).await.map_err(store_error)?;
        self.cached(|c| c.put(&key, &value, revision));
        Ok(())
    }

    async fn places(&self) -> Result<BTreeMap<(String, String), (Place, Revision)>, StoreError> {
        Ok(self.cached(|c| c.places.clone()))
    }

    async fn place(&self, queue: &str, who: &str) -> Result<Option<(Place, Revision)>, StoreError> {
        let entry = self.registry.get(Bucket::Agents, &place_key(queue, who)).await.map_err(store_error)?;
        Ok(entry.and_then(|e| AcdPlace::decode(e.value.as_ref()).ok().map(|p| (wire::place_from_wire(&p), e.revision))))
    }

    async fn put_place(&self, queue: &str, who: &str, place: &Place) -> Result<(), StoreError> {
        let key = place_key(queue, who);
        let value = Bytes::from(wire::place_to_wire(place).encode_to_vec());
        let revision = self.registry.put(Bucket::Agents, &key, value.clone()).await.map_err(store_error)?;
        self.cached(|c| c.put(&key, &value, revision));
        Ok(())
    }

    async fn take_place(&self, queue: &str, who: &str, expected: Revision) -> Result<(), StoreError> {
        let key = place_key(queue, who);
        self.registry.delete(Bucket::Agents, &key, Some(expected)).await.map_err(store_error)?;
        self.cached(|c| c.delete(&key, expected + 1));
        Ok(())
    }
}
