//! The journals: append-only logs whose entries have a sequence number, so a reader that
//! went away resumes where it stopped. [`Log::Events`] keeps what the bus carries on the
//! event subjects (queue events, call notices: the API's event feed); [`Log::Cdrs`] keeps
//! the call detail records, each appended once under its session id. [`JetStreamJournal`]
//! keeps them in JetStream streams (replicated like the registry); [`MemoryJournal`] is
//! its in-process twin for the all-in-one node.

mod jetstream;
mod memory;

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use self::jetstream::{JetStreamJournal, JournalConfig};
pub use self::memory::MemoryJournal;

use crate::subjects::{self, Subject};

/// The journals of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Log {
    /// What the event subjects carried ([`event_subjects`]).
    Events,
    /// Call detail records (`Cdr`), one per session.
    Cdrs,
}

/// The subjects [`Log::Events`] keeps (`callmesh.events.>`: the ACD's queue events and the
/// call notices), one pattern so that one subscription keeps them in publication order.
pub fn event_subjects() -> Subject {
    subjects::all_events()
}

/// One entry of a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// From 1, increasing, never reused.
    pub sequence: u64,
    /// When it was appended (Unix ms).
    pub at_unix_ms: u64,
    /// The subject it was published on.
    pub subject: String,
    pub payload: Bytes,
}

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At this sequence (1: the oldest kept; an older one kept no longer: the oldest).
    Sequence(u64),
    /// At the first entry appended at or after this time (Unix ms).
    Time(u64),
    /// With the next entry appended.
    New,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal backend: {0}")]
    Backend(String),
}

/// A journal's entries, in sequence order.
pub type Entries = Pin<Box<dyn Stream<Item = Result<Entry, JournalError>> + Send>>;

#[async_trait]
pub trait Journal: Send + Sync {
    /// Appends to `log` once per `id`: appending an id already there (within the
    /// deduplication window, an hour on JetStream) keeps the first. Returns once the entry
    /// is stored (replicated, on JetStream).
    async fn append(&self, log: Log, id: &str, payload: Bytes) -> Result<u64, JournalError>;

    /// `log`'s entries from `start`, in order; with `follow`, then each new one as it is
    /// appended (the stream never ends), else up to the last one there when called.
    async fn read(&self, log: Log, start: Start, follow: bool) -> Result<Entries, JournalError>;
}
