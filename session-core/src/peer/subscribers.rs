//! Event subscriptions beside the handler (seed 002's event broadcast): any number of
//! consumers, each receiving a copy of the events its filter lets through — by event type
//! and by priority. A subscription whose receiver is dropped is forgotten.

use std::collections::HashSet;

use tokio::sync::mpsc;

use super::events::{EventType, PeerEvent, RegistrationEvent};

/// How much an event matters to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventPriority {
    /// Media flow and quality reports, state changes.
    Low,
    /// Calls established and ended, DTMF, transfer progress, registrations.
    Normal,
    /// A decision is needed: an incoming call, a transfer or hold request; a warning.
    High,
    /// A registration that failed.
    Critical,
}

impl PeerEvent {
    pub fn priority(&self) -> EventPriority {
        match self {
            PeerEvent::Registration(RegistrationEvent::Failed { .. }) => EventPriority::Critical,
            PeerEvent::IncomingCall(_)
            | PeerEvent::TransferRequested(_)
            | PeerEvent::HoldRequested(_)
            | PeerEvent::Warning(_) => EventPriority::High,
            PeerEvent::CallEstablished(_)
            | PeerEvent::CallEnded { .. }
            | PeerEvent::Dtmf(_)
            | PeerEvent::TransferProgress { .. }
            | PeerEvent::Registration(_) => EventPriority::Normal,
            PeerEvent::StateChanged(_) | PeerEvent::MediaFlow(_) | PeerEvent::MediaQuality(_) => EventPriority::Low,
        }
    }
}

/// Which events a subscription receives: all by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only these types (`None`: every type).
    pub types: Option<HashSet<EventType>>,
    /// Only events at least this important.
    pub min_priority: Option<EventPriority>,
}

impl EventFilter {
    pub fn all() -> Self {
        Self::default()
    }

    pub fn types(types: impl IntoIterator<Item = EventType>) -> Self {
        EventFilter { types: Some(types.into_iter().collect()), min_priority: None }
    }

    pub fn at_least(priority: EventPriority) -> Self {
        EventFilter { types: None, min_priority: Some(priority) }
    }

    pub fn lets_through(&self, event: &PeerEvent) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(&event.event_type()))
            && self.min_priority.is_none_or(|p| event.priority() >= p)
    }
}

pub(crate) struct Subscriber {
    filter: EventFilter,
    tx: mpsc::UnboundedSender<PeerEvent>,
}

impl Subscriber {
    pub fn new(filter: EventFilter) -> (Subscriber, mpsc::UnboundedReceiver<PeerEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Subscriber { filter, tx }, rx)
    }
}

/// Hands `event` to every subscriber that wants it; forgets those that went away.
pub(crate) fn broadcast(subscribers: &mut Vec<Subscriber>, event: &PeerEvent) {
    subscribers.retain(|s| if s.filter.lets_through(event) { s.tx.send(event.clone()).is_ok() } else { !s.tx.is_closed() });
}
