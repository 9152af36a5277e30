//! The bus on a NATS server (async-nats): core publish/subscribe, queue groups, request/reply
//! with NATS's no-responders signal, headers. Reconnects by itself, forever.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Bus, BusError, BusMessage, Headers, Inner, Subscription, validate};
use crate::subjects::Subject;

/// The bus on NATS. Cheap to clone.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
}

impl NatsBus {
    /// Connects to one of `urls` (comma-separated URLs are accepted too), naming the
    /// connection after the node.
    pub async fn connect(urls: &str, node_name: &str) -> Result<NatsBus, BusError> {
        let addrs: Vec<async_nats::ServerAddr> = urls
            .split(',')
            .map(|u| u.trim().parse().map_err(|e| BusError::Connection(format!("bad NATS URL {u:?}: {e}"))))
            .collect::<Result<_, _>>()?;
        let client = async_nats::ConnectOptions::new()
            .name(node_name)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .event_callback(|event| async move { tracing::info!(%event, "NATS connection") })
            .connect(addrs)
            .await
            .map_err(|e| BusError::Connection(e.to_string()))?;
        Ok(NatsBus { client })
    }

    /// The underlying client (for JetStream).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }
}

fn to_header_map(headers: Headers) -> async_nats::HeaderMap {
    let mut map = async_nats::HeaderMap::new();
    for (k, v) in headers {
        map.insert(k, v);
    }
    map
}

pub(super) fn to_bus_message(m: async_nats::Message) -> BusMessage {
    let headers = m
        .headers
        .map(|h| h.iter().filter_map(|(k, v)| Some((k.to_string(), v.first()?.as_str().to_owned()))).collect())
        .unwrap_or_default();
    BusMessage { subject: m.subject.to_string(), reply: m.reply.map(|r| r.to_string()), headers, payload: m.payload }
}

fn conn_err(e: impl std::fmt::Display) -> BusError {
    BusError::Connection(e.to_string())
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, subject: &Subject, headers: Headers, payload: Bytes) -> Result<(), BusError> {
        validate(subject.as_str(), false)?;
        self.client.publish_with_headers(subject.to_string(), to_header_map(headers), payload).await.map_err(conn_err)
    }

    async fn publish_reply(&self, reply_to: &str, headers: Headers, payload: Bytes) -> Result<(), BusError> {
        validate(reply_to, false)?;
        self.client.publish_with_headers(reply_to.to_owned(), to_header_map(headers), payload).await.map_err(conn_err)
    }

    async fn subscribe(&self, subject: &Subject) -> Result<Subscription, BusError> {
        validate(subject.as_str(), true)?;
        let sub = self.client.subscribe(subject.to_string()).await.map_err(conn_err)?;
        Ok(Subscription { inner: Inner::Nats(sub) })
    }

    async fn queue_subscribe(&self, subject: &Subject, group: &str) -> Result<Subscription, BusError> {
        validate(subject.as_str(), true)?;
        let sub = self.client.queue_subscribe(subject.to_string(), group.to_owned()).await.map_err(conn_err)?;
        Ok(Subscription { inner: Inner::Nats(sub) })
    }

    async fn request(
        &self,
        subject: &Subject,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<BusMessage, BusError> {
        validate(subject.as_str(), false)?;
        let request = async_nats::Request::new().payload(payload).headers(to_header_map(headers)).timeout(Some(timeout));
        match self.client.send_request(subject.to_string(), request).await {
            Ok(m) => Ok(to_bus_message(m)),
            Err(e) => Err(match e.kind() {
                async_nats::RequestErrorKind::NoResponders => BusError::NoResponders(subject.to_string()),
                async_nats::RequestErrorKind::TimedOut => BusError::Timeout(subject.to_string(), timeout),
                _ => conn_err(e),
            }),
        }
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    async fn flush(&self) -> Result<(), BusError> {
        self.client.flush().await.map_err(conn_err)
    }
}
