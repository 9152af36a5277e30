//! Call history (seed 002): a record of each call when it ends — who, which way, when it
//! started, was answered and ended, how it ended, and the application's metadata on it —
//! kept for the peer's last calls (as many as `call_history_size`), filtered on reading.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::call::{CallDirection, CallId, CallState};

/// One finished call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub id: CallId,
    pub direction: CallDirection,
    pub remote_uri: String,
    pub started: Instant,
    /// `None`: never answered.
    pub answered: Option<Instant>,
    pub ended: Instant,
    /// `Ended`, or `Failed(status)` for a call that was never answered.
    pub final_state: CallState,
    pub reason: String,
    /// What the application attached to the call (`Call::set_metadata`).
    pub metadata: BTreeMap<String, String>,
}

impl CallRecord {
    /// How long the call was answered (zero when it never was).
    pub fn talk_time(&self) -> Duration {
        self.answered.map_or(Duration::ZERO, |a| self.ended.saturating_duration_since(a))
    }
}

/// Which records to read: all by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    pub direction: Option<CallDirection>,
    /// Only answered calls (`Some(true)`), or only unanswered ones (`Some(false)`).
    pub answered: Option<bool>,
    /// The remote URI contains this.
    pub remote_contains: Option<String>,
    /// The call carries this metadata key with this value.
    pub metadata: Option<(String, String)>,
}

impl HistoryFilter {
    pub fn lets_through(&self, r: &CallRecord) -> bool {
        self.direction.is_none_or(|d| d == r.direction)
            && self.answered.is_none_or(|a| a == r.answered.is_some())
            && self.remote_contains.as_ref().is_none_or(|s| r.remote_uri.contains(s.as_str()))
            && self.metadata.as_ref().is_none_or(|(k, v)| r.metadata.get(k) == Some(v))
    }
}
