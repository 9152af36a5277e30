//! The event buffer between the parts of a peer that produce events (calls, registrations)
//! and the processor that hands them to the application. When it is full, the
//! [`BufferOverflowPolicy`] decides — and only it: every event is either delivered or
//! counted under the reason it was not.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::Mutex;

use tokio::sync::Notify;

use super::error::PeerError;
use super::policies::BufferOverflowPolicy;

/// What happened to the events offered to a buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventStats {
    /// Events offered.
    pub received: u64,
    /// Events taken by the processor.
    pub taken: u64,
    pub dropped_oldest: u64,
    pub dropped_newest: u64,
    /// Refused with `ReturnError`.
    pub refused: u64,
    /// Producers that had to wait for room (`Block`).
    pub blocked: u64,
    pub peak_len: usize,
    pub capacity: usize,
}

struct State<T> {
    events: VecDeque<T>,
    capacity: usize,
    policy: BufferOverflowPolicy,
    closed: bool,
    stats: EventStats,
}

/// A bounded multi-producer, single-consumer buffer with an overflow policy.
pub(crate) struct EventQueue<T> {
    state: Mutex<State<T>>,
    items: Notify,
    room: Notify,
}

impl<T> EventQueue<T> {
    pub(crate) fn new(capacity: usize, policy: BufferOverflowPolicy) -> Self {
        let capacity = capacity.max(1);
        EventQueue {
            state: Mutex::new(State {
                events: VecDeque::with_capacity(capacity.min(4096)),
                capacity,
                policy,
                closed: false,
                stats: EventStats { capacity, ..EventStats::default() },
            }),
            items: Notify::new(),
            room: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_policy(&self, policy: BufferOverflowPolicy) {
        self.lock().policy = policy;
        self.room.notify_waiters();
    }

    pub(crate) fn stats(&self) -> EventStats {
        self.lock().stats
    }

    /// Offers `event`. Only `Block` waits; only `ReturnError` fails; `Panic` panics.
    pub(crate) async fn push(&self, event: T) -> Result<(), PeerError> {
        let mut event = Some(event);
        let mut counted = false;
        let mut counted_block = false;
        loop {
            let mut room = pin!(self.room.notified());
            room.as_mut().enable();
            {
                let mut s = self.lock();
                if s.closed {
                    return Err(PeerError::Shutdown);
                }
                if !counted {
                    counted = true;
                    s.stats.received += 1;
                }
                if s.events.len() < s.capacity {
                    s.events.push_back(event.take().expect("event kept until pushed"));
                    s.stats.peak_len = s.stats.peak_len.max(s.events.len());
                    drop(s);
                    self.items.notify_one();
                    return Ok(());
                }
                match s.policy {
                    BufferOverflowPolicy::ExpandBuffer { max_size } if s.capacity < max_size => {
                        s.capacity = (s.capacity * 2).min(max_size);
                        s.stats.capacity = s.capacity;
                        continue;
                    }
                    BufferOverflowPolicy::DropOldest | BufferOverflowPolicy::ExpandBuffer { .. } => {
                        s.events.pop_front();
                        s.stats.dropped_oldest += 1;
                        s.events.push_back(event.take().expect("event kept until pushed"));
                        drop(s);
                        self.items.notify_one();
                        return Ok(());
                    }
                    BufferOverflowPolicy::DropNewest => {
                        s.stats.dropped_newest += 1;
                        return Ok(());
                    }
                    BufferOverflowPolicy::ReturnError => {
                        s.stats.refused += 1;
                        return Err(PeerError::EventBufferFull { capacity: s.capacity });
                    }
                    BufferOverflowPolicy::Panic => {
                        let capacity = s.capacity;
                        drop(s);
                        panic!("event buffer full ({capacity} events) and the overflow policy is Panic");
                    }
                    BufferOverflowPolicy::Block => {
                        if !counted_block {
                            s.stats.blocked += 1;
                            counted_block = true;
                        }
                    }
                }
            }
            room.await;
        }
    }

    /// The next event; `None` once closed and drained.
    pub(crate) async fn pop(&self) -> Option<T> {
        loop {
            let mut items = pin!(self.items.notified());
            items.as_mut().enable();
            {
                let mut s = self.lock();
                if let Some(e) = s.events.pop_front() {
                    s.stats.taken += 1;
                    drop(s);
                    self.room.notify_waiters();
                    return Some(e);
                }
                if s.closed {
                    return None;
                }
            }
            items.await;
        }
    }

    /// No more events are accepted; waiting producers and the consumer wake up.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.items.notify_waiters();
        self.items.notify_one();
        self.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    async fn fill(q: &EventQueue<u32>, n: u32) -> Vec<Result<(), PeerError>> {
        let mut out = Vec::new();
        for i in 0..n {
            out.push(q.push(i).await);
        }
        out
    }

    async fn drain(q: &EventQueue<u32>) -> Vec<u32> {
        q.close();
        let mut out = Vec::new();
        while let Some(e) = q.pop().await {
            out.push(e);
        }
        out
    }

    #[tokio::test]
    async fn each_policy_drops_exactly_what_it_says() {
        let q = EventQueue::new(4, BufferOverflowPolicy::DropOldest);
        fill(&q, 10).await;
        assert_eq!(q.stats().dropped_oldest, 6);
        assert_eq!(drain(&q).await, [6, 7, 8, 9]);

        let q = EventQueue::new(4, BufferOverflowPolicy::DropNewest);
        fill(&q, 10).await;
        assert_eq!(q.stats().dropped_newest, 6);
        assert_eq!(drain(&q).await, [0, 1, 2, 3]);

        let q = EventQueue::new(4, BufferOverflowPolicy::ReturnError);
        let results = fill(&q, 10).await;
        assert_eq!(results.iter().filter(|r| matches!(r, Err(PeerError::EventBufferFull { capacity: 4 }))).count(), 6);
        assert_eq!(q.stats().refused, 6);
        assert_eq!(drain(&q).await, [0, 1, 2, 3]);

        let q = EventQueue::new(4, BufferOverflowPolicy::ExpandBuffer { max_size: 8 });
        fill(&q, 10).await;
        let s = q.stats();
        assert_eq!((s.capacity, s.dropped_oldest, s.received), (8, 2, 10));
        assert_eq!(drain(&q).await, [2, 3, 4, 5, 6, 7, 8, 9]);
    }

    #[tokio::test]
    async fn block_waits_for_room_and_loses_nothing() {
        let q = Arc::new(EventQueue::new(2, BufferOverflowPolicy::Block));
        let producer = {
            let q = q.clone();
            tokio::spawn(async move { fill(&q, 50).await })
        };
        let mut got = Vec::new();
        while got.len() < 50 {
            got.push(q.pop().await.unwrap());
        }
        assert!(producer.await.unwrap().iter().all(Result::is_ok));
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        assert!(q.stats().blocked > 0, "the producer never had to wait: the test proves nothing");
    }

    #[tokio::test]
    #[should_panic(expected = "overflow policy is Panic")]
    async fn panic_policy_panics() {
        let q = EventQueue::new(1, BufferOverflowPolicy::Panic);
        fill(&q, 2).await;
    }
}
