//! Protobuf on the bus: publish, request and reply with contract messages, and typed
//! subscriptions that decode each message — one that does not decode is logged with its
//! subject, counted in [`crate::metrics::DECODE_ERRORS`], and skipped.
//!
//! Messages are decoded from a slice, so their byte fields are copies: a field decoded from
//! the payload's `Bytes` would share the client's read buffer, and a SIP message an edge keeps
//! for 32 s of retransmissions (or an engine for a whole call) would pin that buffer with it.

use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;

use super::{Bus, BusError, BusMessage, Headers, Subscription};
use crate::subjects::Subject;
use crate::{metrics, trace};

fn headers_with_trace() -> Headers {
    let mut h = Headers::new();
    trace::inject_current(&mut h);
    h
}

/// Publishes `message` on `subject`, with the current trace context.
pub async fn publish<M: Message>(bus: &dyn Bus, subject: &Subject, message: &M) -> Result<(), BusError> {
    bus.publish(subject, headers_with_trace(), Bytes::from(message.encode_to_vec())).await
}

/// Sends `request` and decodes the reply.
pub async fn request<Req: Message, Resp: Message + Default>(
    bus: &dyn Bus,
    subject: &Subject,
    request: &Req,
    timeout: Duration,
) -> Result<Resp, BusError> {
    let reply = bus.request(subject, headers_with_trace(), Bytes::from(request.encode_to_vec()), timeout).await?;
    Resp::decode(&reply.payload[..]).map_err(|e| {
        metrics::DECODE_ERRORS.fetch_add(1, Ordering::Relaxed);
        BusError::Decode(subject.to_string(), e.to_string())
    })
}

/// Answers the request `to` with `reply`.
pub async fn reply<M: Message>(bus: &dyn Bus, to: &BusMessage, reply: &M) -> Result<(), BusError> {
    let reply_to = to.reply.as_deref().ok_or(BusError::NotARequest)?;
    bus.publish_reply(reply_to, headers_with_trace(), Bytes::from(reply.encode_to_vec())).await
}

/// A decoded message and what came with it.
#[derive(Debug)]
pub struct Received<M> {
    pub message: M,
    /// The raw message (its subject, reply subject, headers).
    pub raw: BusMessage,
}

impl<M> Received<M> {
    /// The sender's trace context, to parent the work done for this message.
    pub fn trace_context(&self) -> opentelemetry::Context {
        trace::extract(&self.raw.headers)
    }

    /// Makes `span` — the span of the work done for this message — a child of the sender's.
    pub fn follow(&self, span: &tracing::Span) {
        trace::follow(span, &self.raw.headers)
    }
}

/// A subscription that yields decoded messages of type `M`.
pub struct TypedSubscription<M> {
    inner: Subscription,
    _type: PhantomData<fn() -> M>,
}

impl<M: Message + Default> TypedSubscription<M> {
    pub fn new(inner: Subscription) -> Self {
        TypedSubscription { inner, _type: PhantomData }
    }

    /// The next message that decodes; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Received<M>> {
        loop {
            let raw = self.inner.next().await?;
            match M::decode(&raw.payload[..]) {
                Ok(message) => return Some(Received { message, raw }),
                Err(e) => {
                    metrics::DECODE_ERRORS.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(subject = %raw.subject, error = %e, bytes = raw.payload.len(), "dropping a bus message that does not decode");
                }
            }
        }
    }
}

/// Subscribes to `subject` for messages of type `M`.
pub async fn subscribe<M: Message + Default>(bus: &dyn Bus, subject: &Subject) -> Result<TypedSubscription<M>, BusError> {
    Ok(TypedSubscription::new(bus.subscribe(subject).await?))
}

/// Joins queue group `group` on `subject` for messages of type `M`.
pub async fn queue_subscribe<M: Message + Default>(
    bus: &dyn Bus,
    subject: &Subject,
    group: &str,
) -> Result<TypedSubscription<M>, BusError> {
    Ok(TypedSubscription::new(bus.queue_subscribe(subject, group).await?))
}
