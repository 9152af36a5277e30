//! The journals in memory, for the all-in-one node: the same sequences, deduplication and
//! following reads as on JetStream, up to a number of entries per journal (the oldest go
//! first). [`MemoryJournal::capture`] keeps what the in-process bus carries on the event
//! subjects, as the JetStream stream does on NATS. Nothing survives the process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;

use super::{Entries, Entry, Journal, JournalError, Log, Start, event_subjects};
use crate::bus::Bus;
use crate::subjects;

/// Entries kept per journal by default: the last 50,000 calls' records (~50 MB) and as
/// many events — a bound on memory under load, not an archive (run `all` on NATS for that).
pub const DEFAULT_CAPACITY: usize = 50_000;

/// Both journals in memory. Cheap to clone.
#[derive(Clone)]
pub struct MemoryJournal {
    events: Arc<MemoryLog>,
    cdrs: Arc<MemoryLog>,
}

struct MemoryLog {
    state: Mutex<State>,
    /// The sequence of the last entry appended (readers that follow wait on it).
    appended: watch::Sender<u64>,
    capacity: usize,
}

#[derive(Default)]
struct State {
    /// Contiguous: the front's sequence is `next - entries.len()`.
    entries: VecDeque<(Entry, Option<String>)>,
    next: u64,
    ids: HashMap<String, u64>,
}

impl State {
    fn first(&self) -> u64 {
        self.next - self.entries.len() as u64
    }
}

impl MemoryLog {
    fn new(capacity: usize) -> Arc<MemoryLog> {
        let state = State { next: 1, ..Default::default() };
        Arc::new(MemoryLog { state: Mutex::new(state), appended: watch::channel(0).0, capacity: capacity.max(1) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, subject: String, id: Option<&str>, payload: Bytes) -> u64 {
        let sequence = {
            let mut state = self.lock();
            if let Some(seq) = id.and_then(|id| state.ids.get(id)) {
                return *seq;
            }
            let sequence = state.next;
            state.next += 1;
            let entry = Entry { sequence, at_unix_ms: crate::contracts::unix_ms(), subject, payload };
            if let Some(id) = id {
                state.ids.insert(id.to_owned(), sequence);
            }
            state.entries.push_back((entry, id.map(str::to_owned)));
            while state.entries.len() > self.capacity {
                if let Some((_, Some(id))) = state.entries.pop_front() {
                    state.ids.remove(&id);
                }
            }
            sequence
        };
        self.appended.send_replace(sequence);
        sequence
    }

    /// The entry at `sequence` or the first after it still kept; `None` past the end.
    fn at(&self, sequence: u64) -> Option<Entry> {
        let state = self.lock();
        let first = state.first();
        let index = sequence.max(first) - first;
        state.entries.get(index as usize).map(|(e, _)| e.clone())
    }

    fn first_at_or_after(&self, unix_ms: u64) -> u64 {
        let state = self.lock();
        state.entries.iter().find(|(e, _)| e.at_unix_ms >= unix_ms).map_or(state.next, |(e, _)| e.sequence)
    }
}

impl Default for MemoryJournal {
    fn default() -> Self {
        MemoryJournal::with_capacity(DEFAULT_CAPACITY)
    }
}

impl MemoryJournal {
    /// Journals keeping `capacity` entries each.
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryJournal { events: MemoryLog::new(capacity), cdrs: MemoryLog::new(capacity) }
    }

    fn log(&self, log: Log) -> &Arc<MemoryLog> {
        match log {
            Log::Events => &self.events,
            Log::Cdrs => &self.cdrs,
        }
    }

    /// Keeps in [`Log::Events`] whatever `bus` carries on the event subjects, from now on
    /// (subscribed when this returns).
    pub async fn capture(&self, bus: &dyn Bus) -> Result<(), JournalError> {
        let mut subscription = bus.subscribe(&event_subjects()).await.map_err(|e| JournalError::Backend(e.to_string()))?;
        let events = self.events.clone();
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                events.push(message.subject, None, message.payload);
            }
        });
        Ok(())
    }
}

#[async_trait]
impl Journal for MemoryJournal {
    async fn append(&self, log: Log, id: &str, payload: Bytes) -> Result<u64, JournalError> {
        let subject = match log {
            Log::Cdrs => subjects::cdrs(),
            Log::Events => subjects::call_events(),
        };
        Ok(self.log(log).push(subject.to_string(), Some(id), payload))
    }

    async fn read(&self, log: Log, start: Start, follow: bool) -> Result<Entries, JournalError> {
        let log = self.log(log).clone();
        let (next, end) = {
            let state = log.lock();
            let first = match start {
                Start::Sequence(s) => s.max(state.first()),
                Start::Time(_) | Start::New => state.next,
            };
            (first, (!follow).then_some(state.next))
        };
        let next = match start {
            Start::Time(t) => log.first_at_or_after(t),
            _ => next,
        };
        let appended = log.appended.subscribe();
        let entries = futures::stream::unfold((log, next, appended), move |(log, next, mut appended)| async move {
            loop {
                if end.is_some_and(|end| next >= end) {
                    return None;
                }
                if let Some(entry) = log.at(next) {
                    let after = entry.sequence + 1;
                    return Some((Ok(entry), (log, after, appended)));
                }
                appended.changed().await.ok()?;
            }
        });
        Ok(Box::pin(entries))
    }
}
