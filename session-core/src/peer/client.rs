//! What a client application asks of its peer beyond calling (seed 002, and seed 001's
//! conferences): event subscriptions beside the handler, the call history, the table of
//! registrations and its clean-up, local conferences.

use std::time::Instant;

use tokio::sync::mpsc;

use super::call::Call;
use super::conference::Conference;
use super::error::Result;
use super::events::PeerEvent;
use super::history::{CallRecord, HistoryFilter};
use super::registration::RegistrationInfo;
use super::subscribers::{self, EventFilter};
use super::{SimplePeer, lock};

impl SimplePeer {
    /// Mixes two or more established calls of this peer: each far end hears the others
    /// (seed 001's `create_conference`). Members join, leave and are muted on the
    /// [`Conference`].
    pub fn create_conference(&self, calls: &[Call]) -> Result<Conference> {
        Conference::start(calls)
    }

    /// A stream of the events `filter` lets through, beside the handler (seed 002's event
    /// broadcast): any number of subscribers, each with its own copy; dropping the receiver
    /// ends the subscription.
    pub fn subscribe(&self, filter: EventFilter) -> mpsc::UnboundedReceiver<PeerEvent> {
        let (subscriber, rx) = subscribers::Subscriber::new(filter);
        lock(&self.ctx.subscribers).push(subscriber);
        rx
    }

    /// The records of the peer's last calls that `filter` lets through, oldest first
    /// (seed 002's call history).
    pub fn call_history(&self, filter: &HistoryFilter) -> Vec<CallRecord> {
        lock(&self.ctx.history_calls).iter().filter(|r| filter.lets_through(r)).cloned().collect()
    }

    /// The peer's registrations (seed 002's `get_all_registrations`), by registrar.
    pub fn registrations(&self) -> Vec<RegistrationInfo> {
        let mut all: Vec<RegistrationInfo> = lock(&self.ctx.registrations).values().cloned().collect();
        all.sort_by(|a, b| a.registrar.cmp(&b.registrar));
        all
    }

    /// The registration at `registrar`, if any (seed 002's `get_registration`).
    pub fn registration(&self, registrar: &str) -> Option<RegistrationInfo> {
        lock(&self.ctx.registrations).get(registrar).cloned()
    }

    /// Forgets registrations whose binding has lapsed (their refreshes failed): how many
    /// (seed 002's `clear_expired_registrations`).
    pub fn clear_expired_registrations(&self) -> usize {
        let now = Instant::now();
        let mut table = lock(&self.ctx.registrations);
        let before = table.len();
        table.retain(|_, r| !r.is_expired(now));
        before - table.len()
    }
}
