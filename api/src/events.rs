//! `callmesh.v1.Events`: the event journal as a stream — call notices, queue events and
//! agents' — from a sequence number (or from now), filtered by kind, live until the client
//! goes. A client that reconnects asks from the last sequence it saw plus one.

use std::pin::Pin;
use std::sync::Arc;

use cluster::journal::{Entry, Journal, Log, Start};
use cluster::subjects;
use contracts::events_server::Events;
use contracts::{CallNotice, Event, QueueEvent, SubscribeRequest, event, queue_event};
use futures::{Stream, StreamExt};
use prost::Message;
use tonic::{Request, Response, Status};

pub const KINDS: [&str; 3] = ["call", "queue", "agent"];

pub struct EventsApi {
    journal: Arc<dyn Journal>,
}

impl EventsApi {
    pub fn new(journal: Arc<dyn Journal>) -> Self {
        EventsApi { journal }
    }
}

/// The kind of a queue event: the agents' own, or the queue's.
fn queue_kind(event: &QueueEvent) -> &'static str {
    use queue_event::Event as E;
    match event.event {
        Some(E::AgentOffered(_) | E::AgentAnswered(_) | E::AgentNoAnswer(_) | E::AgentOnBreak(_) | E::AgentStatus(_)) => "agent",
        _ => "queue",
    }
}

/// The feed's event an entry of the journal is (`None`: not one this build knows).
pub fn of(entry: &Entry) -> Option<Event> {
    let (kind, event) = if entry.subject == subjects::acd_events().to_string() {
        let queue = QueueEvent::decode(entry.payload.clone()).ok()?;
        (queue_kind(&queue), event::Event::Queue(queue))
    } else if entry.subject == subjects::call_events().to_string() {
        ("call", event::Event::Call(CallNotice::decode(entry.payload.clone()).ok()?))
    } else {
        return None;
    };
    Some(Event { sequence: entry.sequence, at_unix_ms: entry.at_unix_ms, kind: kind.into(), event: Some(event) })
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;

#[tonic::async_trait]
impl Events for EventsApi {
    type SubscribeStream = EventStream;

    async fn subscribe(&self, request: Request<SubscribeRequest>) -> Result<Response<EventStream>, Status> {
        let request = request.into_inner();
        if let Some(bad) = request.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
            return Err(Status::invalid_argument(format!("no event kind {bad:?} (call, queue, agent)")));
        }
        let start = match request.from_sequence {
            0 => Start::New,
            s => Start::Sequence(s),
        };
        let entries = self.journal.read(Log::Events, start, true).await.map_err(|e| Status::unavailable(e.to_string()))?;
        let kinds = request.kinds;
        let events = entries.filter_map(move |entry| {
            let event = match entry {
                Ok(entry) => of(&entry).filter(|e| kinds.is_empty() || kinds.contains(&e.kind)).map(Ok),
                Err(e) => Some(Err(Status::unavailable(e.to_string()))),
            };
            std::future::ready(event)
        });
        Ok(Response::new(Box::pin(events)))
    }
}
