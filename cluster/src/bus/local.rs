//! The in-process bus: the same semantics as NATS (wildcards, queue groups delivering each
//! message to one member, request/reply with inboxes and no-responder errors, headers) on
//! tokio channels. Literal subscriptions are found by hash, wildcard ones by scan. A slow
//! subscriber makes a publisher wait at most `max_block`, then the message is dropped and
//! counted, as NATS does with slow consumers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::{Bus, BusError, BusMessage, Headers, Inner, Subscription, validate};
use crate::metrics;
use crate::subjects::{self, Subject};

/// Settings of a [`LocalBus`].
#[derive(Debug, Clone, Copy)]
pub struct LocalBusConfig {
    /// Messages buffered per subscription.
    pub capacity: usize,
    /// How long a publisher waits for a full subscriber before dropping the message.
    pub max_block: Duration,
}

impl Default for LocalBusConfig {
    fn default() -> Self {
        LocalBusConfig { capacity: 65_536, max_block: Duration::from_millis(200) }
    }
}

#[derive(Clone)]
struct Sub {
    id: u64,
    group: Option<Arc<str>>,
    tx: mpsc::Sender<BusMessage>,
}

#[derive(Default)]
struct Table {
    exact: HashMap<String, Vec<Sub>>,
    patterns: Vec<(String, Sub)>,
    /// Round-robin position per queue group.
    next_member: HashMap<Arc<str>, usize>,
}

struct Shared {
    table: Mutex<Table>,
    config: LocalBusConfig,
    next_id: AtomicU64,
    /// Requests waiting for their reply, by inbox number.
    pending: Mutex<HashMap<u64, oneshot::Sender<BusMessage>>>,
}

const INBOX_PREFIX: &str = "_INBOX.local.";

/// Removes a subscription from the table when it is dropped.
pub(super) struct Unsubscribe {
    shared: Weak<Shared>,
    subject: String,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let Some(shared) = self.shared.upgrade() else { return };
        let mut table = shared.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(subs) = table.exact.get_mut(&self.subject) {
            subs.retain(|s| s.id != self.id);
            if subs.is_empty() {
                table.exact.remove(&self.subject);
            }
        }
        table.patterns.retain(|(_, s)| s.id != self.id);
    }
}

/// Forgets a pending request that ended without its reply (timeout, cancellation).
struct PendingGuard<'a>(&'a Shared, u64);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
    }
}

/// The in-process bus. Clones share the same subscriptions.
#[derive(Clone)]
pub struct LocalBus {
    shared: Arc<Shared>,
}

impl Default for LocalBus {
    fn default() -> Self {
        LocalBus::new(LocalBusConfig::default())
    }
}

impl LocalBus {
    pub fn new(config: LocalBusConfig) -> Self {
        LocalBus {
            shared: Arc::new(Shared {
                table: Mutex::new(Table::default()),
                config,
                next_id: AtomicU64::new(0),
                pending: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn add(&self, subject: &str, group: Option<&str>) -> Result<Subscription, BusError> {
        validate(subject, true)?;
        let (tx, rx) = mpsc::channel(self.shared.config.capacity);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let sub = Sub { id, group: group.map(Arc::from), tx };
        let mut table = self.shared.table.lock().unwrap_or_else(|e| e.into_inner());
        if subjects::is_pattern(subject) {
            table.patterns.push((subject.to_owned(), sub));
        } else {
            table.exact.entry(subject.to_owned()).or_default().push(sub);
        }
        let guard = Unsubscribe { shared: Arc::downgrade(&self.shared), subject: subject.to_owned(), id };
        Ok(Subscription { inner: Inner::Local { rx, _unsubscribe: guard } })
    }

    /// The subscribers that get a message on `subject`: every plain subscriber, and one
    /// member of each queue group. Forgets subscriptions whose receiver is gone.
    fn targets(&self, subject: &str) -> Vec<mpsc::Sender<BusMessage>> {
        let mut table = self.shared.table.lock().unwrap_or_else(|e| e.into_inner());
        let Table { exact, patterns, next_member } = &mut *table;
        if let Some(subs) = exact.get_mut(subject) {
            subs.retain(|s| !s.tx.is_closed());
            if subs.is_empty() {
                exact.remove(subject);
            }
        }
        patterns.retain(|(_, s)| !s.tx.is_closed());
        let matching = exact
            .get(subject)
            .into_iter()
            .flatten()
            .chain(patterns.iter().filter(|(p, _)| subjects::matches(p, subject)).map(|(_, s)| s));
        let mut out = Vec::new();
        let mut groups: Vec<(Arc<str>, Vec<&Sub>)> = Vec::new();
        for sub in matching {
            match &sub.group {
                None => out.push(sub.tx.clone()),
                Some(g) => match groups.iter_mut().find(|(name, _)| name == g) {
                    Some((_, members)) => members.push(sub),
                    None => groups.push((g.clone(), vec![sub])),
                },
            }
        }
        for (group, members) in groups {
            let n = next_member.entry(group).or_insert(0);
            out.push(members[*n % members.len()].tx.clone());
            *n = n.wrapping_add(1);
        }
        out
    }

    async fn route(&self, message: BusMessage) -> usize {
        let targets = self.targets(&message.subject);
        let n = targets.len();
        for tx in targets {
            self.deliver(&tx, message.clone()).await;
        }
        n
    }

    async fn deliver(&self, tx: &mpsc::Sender<BusMessage>, message: BusMessage) {
        match tx.try_send(message) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(message)) => {
                let subject = message.subject.clone();
                if tokio::time::timeout(self.shared.config.max_block, tx.send(message)).await.is_err() {
                    metrics::SLOW_CONSUMER_DROPS.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%subject, "slow subscriber: message dropped");
                }
            }
        }
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, subject: &Subject, headers: Headers, payload: Bytes) -> Result<(), BusError> {
        validate(subject.as_str(), false)?;
        self.route(BusMessage { subject: subject.as_str().to_owned(), reply: None, headers, payload }).await;
        Ok(())
    }

    async fn publish_reply(&self, reply_to: &str, headers: Headers, payload: Bytes) -> Result<(), BusError> {
        validate(reply_to, false)?;
        let message = BusMessage { subject: reply_to.to_owned(), reply: None, headers, payload };
        let waiting = reply_to
            .strip_prefix(INBOX_PREFIX)
            .and_then(|n| n.parse::<u64>().ok())
            .and_then(|n| self.shared.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&n));
        match waiting {
            Some(tx) => {
                let _ = tx.send(message);
            }
            None => {
                self.route(message).await;
            }
        }
        Ok(())
    }

    async fn subscribe(&self, subject: &Subject) -> Result<Subscription, BusError> {
        self.add(subject.as_str(), None)
    }

    async fn queue_subscribe(&self, subject: &Subject, group: &str) -> Result<Subscription, BusError> {
        self.add(subject.as_str(), Some(group))
    }

    async fn request(
        &self,
        subject: &Subject,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<BusMessage, BusError> {
        validate(subject.as_str(), false)?;
        let n = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(n, tx);
        let _pending = PendingGuard(&self.shared, n);
        let request =
            BusMessage { subject: subject.as_str().to_owned(), reply: Some(format!("{INBOX_PREFIX}{n}")), headers, payload };
        if self.route(request).await == 0 {
            return Err(BusError::NoResponders(subject.to_string()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(BusError::Connection("local bus closed".into())),
            Err(_) => Err(BusError::Timeout(subject.to_string(), timeout)),
        }
    }

    async fn flush(&self) -> Result<(), BusError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_size(bus: &LocalBus) -> (usize, usize, usize) {
        let t = bus.shared.table.lock().unwrap();
        (t.exact.len(), t.patterns.len(), bus.shared.pending.lock().unwrap().len())
    }

    #[tokio::test]
    async fn dropped_subscriptions_and_finished_requests_leave_nothing_behind() {
        let bus = LocalBus::default();
        let subject = crate::subjects::test("leak");
        let mut server = bus.subscribe(&subject).await.unwrap();
        let pattern = bus.subscribe(&crate::subjects::test_pattern("x.*")).await.unwrap();
        let responder = bus.clone();
        let task = tokio::spawn(async move {
            while let Some(m) = server.next().await {
                responder.publish_reply(m.reply.as_deref().unwrap(), Headers::new(), m.payload).await.unwrap();
            }
        });
        for _ in 0..100 {
            bus.request(&subject, Headers::new(), Bytes::new(), Duration::from_secs(1)).await.unwrap();
        }
        assert_eq!(table_size(&bus), (1, 1, 0));
        let silent = bus.subscribe(&crate::subjects::test("silent")).await.unwrap();
        let _ = bus.request(&crate::subjects::test("silent"), Headers::new(), Bytes::new(), Duration::from_millis(10)).await;
        assert_eq!(table_size(&bus).2, 0, "a timed-out request is forgotten");
        drop((silent, pattern));
        task.abort();
        let _ = task.await;
        assert_eq!(table_size(&bus), (0, 0, 0));
    }
}
