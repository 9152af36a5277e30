//! The journals on JetStream: stream `CALLMESH_EVENTS` keeps whatever is published on the
//! event subjects (no publisher waits for it), stream `CALLMESH_CDRS` the call records,
//! each published with an acknowledgement and its session id as `Nats-Msg-Id`, so a
//! record written twice within the duplicates window (an hour) is kept once. Both are
//! replicated like the registry's buckets. Reads are ordered consumers from a sequence or
//! a time; the consumer is created with the registry's quick retries (a server of three
//! that is down may hold a creation forever on nats-server 2.9).

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use super::{Entries, Entry, Journal, JournalError, Log, Start, event_subjects};
use crate::subjects;

/// How the journals are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalConfig {
    /// Copies in a JetStream cluster.
    pub replicas: usize,
    /// Events older than this are dropped.
    pub events_max_age: Duration,
    /// Call records older than this are dropped (zero: kept until removed by hand).
    pub cdrs_max_age: Duration,
}

impl JournalConfig {
    pub fn with_replicas(replicas: usize) -> Self {
        JournalConfig { replicas, events_max_age: Duration::from_secs(24 * 3600), cdrs_max_age: Duration::ZERO }
    }
}

const EVENTS: &str = "CALLMESH_EVENTS";
const CDRS: &str = "CALLMESH_CDRS";
const DUPLICATES_WINDOW: Duration = Duration::from_secs(3600);
const CONSUMER_ATTEMPTS: usize = 10;
const CONSUMER_TIMEOUT: Duration = Duration::from_millis(1500);

/// Both journals on JetStream. Cheap to clone.
#[derive(Clone)]
pub struct JetStreamJournal {
    context: jetstream::Context,
    quick: jetstream::Context,
    client: async_nats::Client,
}

fn backend(e: impl std::fmt::Display) -> JournalError {
    JournalError::Backend(e.to_string())
}

fn stream_name(log: Log) -> &'static str {
    match log {
        Log::Events => EVENTS,
        Log::Cdrs => CDRS,
    }
}

impl JetStreamJournal {
    /// Creates (or binds to) both streams on the server `client` is connected to; retries
    /// for a while, as a JetStream cluster that just started may still elect its leader.
    pub async fn connect(client: async_nats::Client, config: &JournalConfig) -> Result<Self, JournalError> {
        let mut context = jetstream::new(client.clone());
        context.set_timeout(Duration::from_secs(5));
        let mut quick = context.clone();
        quick.set_timeout(CONSUMER_TIMEOUT);
        let replicas = config.replicas.max(1);
        let events = stream::Config {
            name: EVENTS.into(),
            subjects: vec![event_subjects().to_string()],
            max_age: config.events_max_age,
            num_replicas: replicas,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        };
        let cdrs = stream::Config {
            name: CDRS.into(),
            subjects: vec![subjects::cdrs().to_string()],
            max_age: config.cdrs_max_age,
            duplicate_window: DUPLICATES_WINDOW,
            num_replicas: replicas,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for config in [events, cdrs] {
            loop {
                match context.get_or_create_stream(config.clone()).await {
                    Ok(_) => break,
                    Err(e) if tokio::time::Instant::now() >= deadline => return Err(backend(format!("{}: {e}", config.name))),
                    Err(e) => tracing::info!(stream = %config.name, error = %e, "JetStream not ready, retrying"),
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Ok(JetStreamJournal { context, quick, client })
    }

    /// An ordered consumer of `log` from `policy` (quick attempts, see the module).
    async fn consumer(&self, log: Log, policy: consumer::DeliverPolicy) -> Result<consumer::OrderedPushConsumer, JournalError> {
        let mut last = backend("no attempt");
        for _ in 0..CONSUMER_ATTEMPTS {
            let attempt = async {
                let stream = self.quick.get_stream(stream_name(log)).await.map_err(backend)?;
                let config = consumer::push::OrderedConfig {
                    deliver_subject: self.client.new_inbox(),
                    deliver_policy: policy,
                    ..Default::default()
                };
                stream.create_consumer(config).await.map_err(backend)
            };
            match tokio::time::timeout(CONSUMER_TIMEOUT, attempt).await {
                Ok(Ok(consumer)) => return Ok(consumer),
                Ok(Err(e)) => last = e,
                Err(_) => last = backend("consumer creation timed out"),
            }
        }
        Err(last)
    }
}

#[async_trait]
impl Journal for JetStreamJournal {
    async fn append(&self, log: Log, id: &str, payload: Bytes) -> Result<u64, JournalError> {
        let subject = match log {
            Log::Cdrs => subjects::cdrs(),
            Log::Events => subjects::call_events(),
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        let ack = self.context.publish_with_headers(subject.to_string(), headers, payload).await.map_err(backend)?;
        Ok(ack.await.map_err(backend)?.sequence)
    }

    async fn read(&self, log: Log, start: Start, follow: bool) -> Result<Entries, JournalError> {
        let policy = match start {
            Start::Sequence(s) => consumer::DeliverPolicy::ByStartSequence { start_sequence: s.max(1) },
            Start::Time(ms) => consumer::DeliverPolicy::ByStartTime {
                start_time: async_nats::datetime::from_nanos(i128::from(ms) * 1_000_000).map_err(backend)?,
            },
            Start::New => consumer::DeliverPolicy::New,
        };
        let consumer = self.consumer(log, policy).await?;
        // Not following: what is there when the consumer starts, each message saying how
        // many are left after it.
        if !follow && consumer.cached_info().num_pending == 0 {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let messages = consumer.messages().await.map_err(backend)?;
        let entries = futures::stream::unfold((messages, false), move |(mut messages, done)| async move {
            if done {
                return None;
            }
            let message = match messages.next().await? {
                Ok(m) => m,
                Err(e) => return Some((Err(backend(e)), (messages, true))),
            };
            match entry(&message) {
                Ok((entry, pending)) => Some((Ok(entry), (messages, !follow && pending == 0))),
                Err(e) => Some((Err(e), (messages, true))),
            }
        });
        Ok(Box::pin(entries))
    }
}

/// The entry a message is, and how many of the consumer's are left after it.
fn entry(message: &jetstream::Message) -> Result<(Entry, u64), JournalError> {
    let info = message.info().map_err(backend)?;
    let entry = Entry {
        sequence: info.stream_sequence,
        at_unix_ms: (info.published.unix_timestamp_nanos() / 1_000_000) as u64,
        subject: message.subject.to_string(),
        payload: message.payload.clone(),
    };
    Ok((entry, info.pending))
}
