//! The bus: publish, subscribe (with wildcards), queue-group subscribe, request/reply with a
//! timeout, and headers (OpenTelemetry trace context travels in them). Two backends with
//! the same semantics: [`NatsBus`] on a NATS server, [`LocalBus`] in-process for the
//! all-in-one node. [`typed`] adds protobuf encoding on top.

mod local;
mod nats;
pub mod typed;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

pub use self::local::{LocalBus, LocalBusConfig};
pub use self::nats::NatsBus;
use crate::subjects::Subject;

/// Message headers (single-valued).
pub type Headers = BTreeMap<String, String>;

/// A message received from the bus.
#[derive(Debug, Clone)]
pub struct BusMessage {
    pub subject: String,
    /// Where a reply goes, for a request.
    pub reply: Option<String>,
    pub headers: Headers,
    pub payload: Bytes,
}

/// Why a bus operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    #[error("no responder on {0}")]
    NoResponders(String),
    #[error("no reply on {0} within {1:?}")]
    Timeout(String, Duration),
    #[error("invalid subject {0:?}")]
    InvalidSubject(String),
    #[error("the message is not a reply-able request")]
    NotARequest,
    #[error("cannot decode the reply from {0}: {1}")]
    Decode(String, String),
    #[error("bus connection: {0}")]
    Connection(String),
}

/// A subscription: messages in arrival order until it is dropped (which unsubscribes).
pub struct Subscription {
    inner: Inner,
}

enum Inner {
    /// The receiver, and the guard that unsubscribes when the subscription is dropped.
    Local {
        rx: mpsc::Receiver<BusMessage>,
        _unsubscribe: local::Unsubscribe,
    },
    Nats(async_nats::Subscriber),
}

impl Subscription {
    /// The next message; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<BusMessage> {
        match &mut self.inner {
            Inner::Local { rx, .. } => rx.recv().await,
            Inner::Nats(sub) => sub.next().await.map(nats::to_bus_message),
        }
    }
}

/// The bus operations every node uses.
#[async_trait]
pub trait Bus: Send + Sync {
    async fn publish(&self, subject: &Subject, headers: Headers, payload: Bytes) -> Result<(), BusError>;

    /// Publishes the reply to a request (its `reply` subject).
    async fn publish_reply(&self, reply_to: &str, headers: Headers, payload: Bytes) -> Result<(), BusError>;

    /// Every message on `subject` (which may contain wildcards).
    async fn subscribe(&self, subject: &Subject) -> Result<Subscription, BusError>;

    /// Messages on `subject`, each delivered to one member of `group`.
    async fn queue_subscribe(&self, subject: &Subject, group: &str) -> Result<Subscription, BusError>;

    /// Sends a request and waits for one reply. Fails at once with
    /// [`BusError::NoResponders`] when nobody subscribes to `subject`.
    async fn request(
        &self,
        subject: &Subject,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<BusMessage, BusError>;

    /// Waits until everything published so far has reached the server.
    async fn flush(&self) -> Result<(), BusError>;

    /// Whether messages can flow now (the in-process bus always can; NATS while connected).
    fn is_connected(&self) -> bool {
        true
    }
}

/// Checks a subject: non-empty tokens; wildcards (`*`, `>` last) only when `wildcards`.
pub(crate) fn validate(subject: &str, wildcards: bool) -> Result<(), BusError> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let ok = !subject.is_empty()
        && tokens.iter().enumerate().all(|(i, t)| {
            let wildcard = *t == "*" || (*t == ">" && i == tokens.len() - 1);
            !t.is_empty() && !t.contains(char::is_whitespace) && (wildcards && wildcard || !t.contains(['*', '>']))
        });
    if ok { Ok(()) } else { Err(BusError::InvalidSubject(subject.to_owned())) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn subject_validation() {
        use super::validate;
        assert!(validate("a.b", false).is_ok());
        assert!(validate("a.*.>", true).is_ok());
        assert!(validate("a.*", false).is_err());
        assert!(validate("a.>.b", true).is_err());
        assert!(validate("a..b", false).is_err());
        assert!(validate("a b", false).is_err());
    }
}
