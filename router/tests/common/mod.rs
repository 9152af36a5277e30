//! Helpers of the ACD tests: a seedable random source, and one router's handle on a shared
//! store that yields at every call (routers running at once interleave) and dies when its
//! write budget is spent.

// Each test binary uses its own part of these.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use router::acd::store::Revision;
use router::acd::strategy::Memory;
use router::acd::{AcdEvent, AcdStore, AgentRecord, CallerRecord, MemoryStore, Place, StoreError};

/// xorshift64*: small, seedable, the same everywhere.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// One router's view of the shared store: it yields at every call (so routers running at
/// once interleave), and once its write budget is spent it is dead — every call fails.
pub struct RouterStore {
    pub inner: Arc<MemoryStore>,
    /// Writes left before the router dies (`None`: it lives).
    pub writes_left: Mutex<Option<u32>>,
}

impl RouterStore {
    async fn gate(&self, write: bool) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        let mut left = self.writes_left.lock().unwrap();
        match left.as_mut() {
            Some(0) => Err(StoreError::Unavailable("this router is dead".into())),
            Some(n) if write => {
                *n -= 1;
                Ok(())
            }
            _ => Ok(()),
        }
    }
    pub fn new(inner: Arc<MemoryStore>) -> RouterStore {
        RouterStore { inner, writes_left: Mutex::new(None) }
    }

    pub fn dead(&self) -> bool {
        *self.writes_left.lock().unwrap() == Some(0)
    }
}

#[async_trait]
impl AcdStore for RouterStore {
    async fn agents(&self) -> Result<BTreeMap<String, (AgentRecord, Revision)>, StoreError> {
        self.gate(false).await?;
        self.inner.agents().await
    }
    async fn agent(&self, id: &str) -> Result<Option<(AgentRecord, Revision)>, StoreError> {
        self.gate(false).await?;
        self.inner.agent(id).await
    }
    async fn put_agent(&self, id: &str, r: &AgentRecord, e: Option<Revision>) -> Result<Revision, StoreError> {
        self.gate(true).await?;
        self.inner.put_agent(id, r, e).await
    }
    async fn callers(&self) -> Result<Vec<(CallerRecord, Revision)>, StoreError> {
        self.gate(false).await?;
        self.inner.callers().await
    }
    async fn caller(&self, s: &str) -> Result<Option<(CallerRecord, Revision)>, StoreError> {
        self.gate(false).await?;
        self.inner.caller(s).await
    }
    async fn put_caller(&self, r: &CallerRecord, e: Option<Revision>) -> Result<Revision, StoreError> {
        self.gate(true).await?;
        self.inner.put_caller(r, e).await
    }
    async fn delete_caller(&self, s: &str, e: Revision) -> Result<(), StoreError> {
        self.gate(true).await?;
        self.inner.delete_caller(s, e).await
    }
    async fn memory(&self) -> Result<BTreeMap<String, Memory>, StoreError> {
        self.gate(false).await?;
        self.inner.memory().await
    }
    async fn put_memory(&self, q: &str, m: &Memory) -> Result<(), StoreError> {
        self.gate(true).await?;
        self.inner.put_memory(q, m).await
    }
    async fn places(&self) -> Result<BTreeMap<(String, String), (Place, Revision)>, StoreError> {
        self.gate(false).await?;
        self.inner.places().await
    }
    async fn place(&self, q: &str, w: &str) -> Result<Option<(Place, Revision)>, StoreError> {
        self.gate(false).await?;
        self.inner.place(q, w).await
    }
    async fn put_place(&self, q: &str, w: &str, p: &Place) -> Result<(), StoreError> {
        self.gate(true).await?;
        self.inner.put_place(q, w, p).await
    }
    async fn take_place(&self, q: &str, w: &str, e: Revision) -> Result<(), StoreError> {
        self.gate(true).await?;
        self.inner.take_place(q, w, e).await
    }
}

/// The (caller, agent) pairs of the offers among `events`.
pub fn offers(events: &[AcdEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            AcdEvent::Offer { caller, agent, .. } => Some((caller.clone(), agent.clone())),
            _ => None,
        })
        .collect()
}
