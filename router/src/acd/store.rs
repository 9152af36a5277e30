//! Where the ACD's records live, shared by every router: agents and callers, each written by
//! compare-and-set on its revision, so of two routers writing from the same reading only one
//! succeeds; and each queue's memory (round-robin position), written last-wins. The
//! registry's buckets hold them in a cluster; `MemoryStore` in one process and in tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::model::{AgentRecord, CallerRecord, Place};
use super::strategy::Memory;

/// A record's revision: what a compare-and-set names.
pub type Revision = u64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Someone wrote the record since it was read (or it already exists, or is gone).
    #[error("the record changed since it was read")]
    Conflict,
    #[error("the ACD store is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait AcdStore: Send + Sync {
    async fn agents(&self) -> Result<BTreeMap<String, (AgentRecord, Revision)>, StoreError>;
    async fn agent(&self, id: &str) -> Result<Option<(AgentRecord, Revision)>, StoreError>;
    /// Writes `id`'s record if its revision is still `expected` (`None`: if it has none).
    async fn put_agent(&self, id: &str, record: &AgentRecord, expected: Option<Revision>) -> Result<Revision, StoreError>;
    async fn callers(&self) -> Result<Vec<(CallerRecord, Revision)>, StoreError>;
    async fn caller(&self, session: &str) -> Result<Option<(CallerRecord, Revision)>, StoreError>;
    async fn put_caller(&self, record: &CallerRecord, expected: Option<Revision>) -> Result<Revision, StoreError>;
    async fn delete_caller(&self, session: &str, expected: Revision) -> Result<(), StoreError>;
    async fn memory(&self) -> Result<BTreeMap<String, Memory>, StoreError>;
    async fn put_memory(&self, queue: &str, memory: &Memory) -> Result<(), StoreError>;
    /// Every place kept, by (queue, caller address).
    async fn places(&self) -> Result<BTreeMap<(String, String), (Place, Revision)>, StoreError>;
    async fn place(&self, queue: &str, who: &str) -> Result<Option<(Place, Revision)>, StoreError>;
    async fn put_place(&self, queue: &str, who: &str, place: &Place) -> Result<(), StoreError>;
    /// Removes the place if its revision is still `expected` (one caller takes it).
    async fn take_place(&self, queue: &str, who: &str, expected: Revision) -> Result<(), StoreError>;
}

#[derive(Default)]
struct Tables {
    next: Revision,
    agents: BTreeMap<String, (AgentRecord, Revision)>,
    callers: BTreeMap<String, (CallerRecord, Revision)>,
    memory: BTreeMap<String, Memory>,
    places: BTreeMap<(String, String), (Place, Revision)>,
}

/// The store in one process: a map per kind behind a lock, revisions from one counter.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    fn with<R>(&self, f: impl FnOnce(&mut Tables) -> R) -> R {
        f(&mut self.tables.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Writes `value` at `key` of `map` if its revision is `expected`.
fn cas<V: Clone>(
    next: &mut Revision,
    map: &mut BTreeMap<String, (V, Revision)>,
    key: &str,
    value: &V,
    expected: Option<Revision>,
) -> Result<Revision, StoreError> {
    if map.get(key).map(|(_, r)| *r) != expected {
        return Err(StoreError::Conflict);
    }
    *next += 1;
    map.insert(key.to_owned(), (value.clone(), *next));
    Ok(*next)
}

#[async_trait]
impl AcdStore for MemoryStore {
    async fn agents(&self) -> Result<BTreeMap<String, (AgentRecord, Revision)>, StoreError> {
        Ok(self.with(|t| t.agents.clone()))
    }

    async fn agent(&self, id: &str) -> Result<Option<(AgentRecord, Revision)>, StoreError> {
        Ok(self.with(|t| t.agents.get(id).cloned()))
    }

    async fn put_agent(&self, id: &str, record: &AgentRecord, expected: Option<Revision>) -> Result<Revision, StoreError> {
        self.with(|t| cas(&mut t.next, &mut t.agents, id, record, expected))
    }

    async fn callers(&self) -> Result<Vec<(CallerRecord, Revision)>, StoreError> {
        Ok(self.with(|t| t.callers.values().cloned().collect()))
    }

    async fn caller(&self, session: &str) -> Result<Option<(CallerRecord, Revision)>, StoreError> {
        Ok(self.with(|t| t.callers.get(session).cloned()))
    }

    async fn put_caller(&self, record: &CallerRecord, expected: Option<Revision>) -> Result<Revision, StoreError> {
        self.with(|t| cas(&mut t.next, &mut t.callers, &record.session, record, expected))
    }

    async fn delete_caller(&self, session: &str, expected: Revision) -> Result<(), StoreError> {
        self.with(|t| match t.callers.get(session) {
            Some((_, r)) if *r == expected => {
                t.callers.remove(session);
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        })
    }

    async fn memory(&self) -> Result<BTreeMap<String, Memory>, StoreError> {
        Ok(self.with(|t| t.memory.clone()))
    }

    async fn put_memory(&self, queue: &str, memory: &Memory) -> Result<(), StoreError> {
        self.with(|t| t.memory.insert(queue.to_owned(), memory.clone()));
        Ok(())
    }

    async fn places(&self) -> Result<BTreeMap<(String, String), (Place, Revision)>, StoreError> {
        Ok(self.with(|t| t.places.clone()))
    }

    async fn place(&self, queue: &str, who: &str) -> Result<Option<(Place, Revision)>, StoreError> {
        Ok(self.with(|t| t.places.get(&(queue.to_owned(), who.to_owned())).copied()))
    }

    async fn put_place(&self, queue: &str, who: &str, place: &Place) -> Result<(), StoreError> {
        self.with(|t| {
            t.next += 1;
            t.places.insert((queue.to_owned(), who.to_owned()), (*place, t.next));
        });
        Ok(())
    }

    async fn take_place(&self, queue: &str, who: &str, expected: Revision) -> Result<(), StoreError> {
        let key = (queue.to_owned(), who.to_owned());
        self.with(|t| match t.places.get(&key) {
            Some((_, r)) if *r == expected => {
                t.places.remove(&key);
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        })
    }
}
