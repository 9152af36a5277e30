//! The ACD's event feed (`callmesh.acd.events`): what happens in the queues, as the router
//! that decided it saw it — callers joining, abandoning, overflowing; agents offered a
//! caller, answering, letting it ring out, put on break; calls ending. What the API and
//! wallboards build on. Offers cancelled are not events: they end in one of these.

use cluster::bus::{Bus, typed};
use cluster::contracts::{self, AgentBreak, AgentOffer, CallerGone, CallerJoined, CallerOverflowed, QueueEvent, queue_event};
use cluster::subjects;

use super::{AcdEvent, Overflow};

/// The feed's event for what the ACD decided, if it is one.
pub fn of(event: &AcdEvent) -> Option<queue_event::Event> {
    let offer = |caller: &str, agent: &str| AgentOffer { session: caller.to_owned(), agent: agent.to_owned() };
    Some(match event {
        AcdEvent::Offer { caller, agent, .. } => queue_event::Event::AgentOffered(offer(caller, agent)),
        AcdEvent::Bridge { caller, agent } => queue_event::Event::AgentAnswered(offer(caller, agent)),
        AcdEvent::NoAnswer { caller, agent } => queue_event::Event::AgentNoAnswer(offer(caller, agent)),
        AcdEvent::OnBreak { agent } => queue_event::Event::AgentOnBreak(AgentBreak { agent: agent.clone() }),
        AcdEvent::Abandoned { caller } => queue_event::Event::CallerAbandoned(CallerGone { session: caller.clone() }),
        AcdEvent::Overflow { caller, target } => {
            let target = match target {
                Overflow::Queue(q) => format!("queue:{q}"),
                Overflow::Uri(uri) => uri.clone(),
                Overflow::Refuse(status) => status.to_string(),
            };
            queue_event::Event::CallerOverflowed(CallerOverflowed { session: caller.clone(), target })
        }
        AcdEvent::Cancel { .. } => return None,
    })
}

pub fn joined(session: &str, queue: &str, priority: u32) -> queue_event::Event {
    queue_event::Event::CallerJoined(CallerJoined { session: session.to_owned(), queue: queue.to_owned(), priority })
}

pub fn ended(session: &str) -> queue_event::Event {
    queue_event::Event::CallEnded(CallerGone { session: session.to_owned() })
}

/// Publishes `event` (a feed nobody listens to costs a publish).
pub async fn publish(bus: &dyn Bus, sender: &str, event: queue_event::Event) {
    let message = QueueEvent { meta: contracts::meta(sender), at_unix_ms: contracts::unix_ms(), event: Some(event) };
    if let Err(e) = typed::publish(bus, &subjects::acd_events(), &message).await {
        tracing::warn!(error = %e, "queue event not published");
    }
}
