//! Abandoned callers' places: a queue with `resume_ms` keeps where a caller stood when it
//! hung up before an agent answered, under its address; the same caller calling back
//! within that time takes the place again (its first arrival, its priority), ahead of
//! those who came after. A place is taken by compare-and-set, so by one call only, and
//! every router drops places past their time as it plans.

use super::dispatcher::Acd;
use super::model::{CallerRecord, Place};
use super::store::{AcdStore, StoreError};

impl Acd {
    /// A caller joining takes back the place it left, if the queue kept one still valid:
    /// how long it had waited before (0: none).
    pub(super) async fn resume(&self, store: &dyn AcdStore, caller: &mut CallerRecord) -> Result<u64, StoreError> {
        let keeps = self.queue(&caller.queue).is_some_and(|q| q.resume_ms > 0);
        if !keeps || caller.who.is_empty() {
            return Ok(0);
        }
        let Some((place, rev)) = store.place(&caller.queue, &caller.who).await? else { return Ok(0) };
        if place.expires_ms <= caller.joined_ms {
            return Ok(0);
        }
        match store.take_place(&caller.queue, &caller.who, rev).await {
            Ok(()) => {}
            // Another call of the same caller took it first.
            Err(StoreError::Conflict) => return Ok(0),
            Err(e) => return Err(e),
        }
        let waited = caller.joined_ms.saturating_sub(place.joined_ms);
        caller.joined_ms = caller.joined_ms.min(place.joined_ms);
        caller.priority = caller.priority.max(place.priority);
        Ok(waited)
    }

    /// `caller` abandoned: its queue keeps its place for `resume_ms`, if it says so.
    pub(super) async fn keep_place(&self, store: &dyn AcdStore, caller: &CallerRecord, now: u64) -> Result<(), StoreError> {
        let Some(resume_ms) = self.queue(&caller.queue).map(|q| q.resume_ms).filter(|ms| *ms > 0) else { return Ok(()) };
        if caller.who.is_empty() {
            return Ok(());
        }
        let place = Place { joined_ms: caller.joined_ms, priority: caller.priority, expires_ms: now + resume_ms };
        store.put_place(&caller.queue, &caller.who, &place).await
    }

    /// Drops the places no caller came back for in time (nothing to read when no queue
    /// keeps places: routers plan after every report).
    pub(super) async fn drop_lapsed_places(&self, store: &dyn AcdStore, now: u64) -> Result<(), StoreError> {
        if self.served().0.iter().all(|q| q.resume_ms == 0) {
            return Ok(());
        }
        for ((queue, who), (place, rev)) in store.places().await? {
            if place.expires_ms <= now {
                match store.take_place(&queue, &who, rev).await {
                    Ok(()) | Err(StoreError::Conflict) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}
