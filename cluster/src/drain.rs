//! Graceful drain. On SIGTERM (or when Kubernetes deletes its pod) a node stops taking new
//! work — it leaves its queue groups, so the bus hands new calls to the other members — and
//! finishes what it has. [`Drain`] says when draining starts; [`InFlight`] counts the work
//! still in progress and wakes whoever waits for it to reach zero.

use std::sync::Arc;

use tokio::sync::watch;

/// Whether the node is draining. Cheap to clone; every clone sees the same state.
#[derive(Debug, Clone)]
pub struct Drain {
    started: watch::Sender<bool>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain { started: watch::Sender::new(false) }
    }
}

impl Drain {
    /// Starts draining (again: no effect).
    pub fn start(&self) {
        self.started.send_if_modified(|s| !std::mem::replace(s, true));
    }

    pub fn is_draining(&self) -> bool {
        *self.started.borrow()
    }

    /// Resolves once draining has started (at once if it has).
    pub async fn started(&self) {
        let mut rx = self.started.subscribe();
        // The sender lives as long as `self`, so this only ends when draining starts.
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// Work in progress (calls, routing decisions, media sessions, transactions).
#[derive(Debug)]
pub struct InFlight {
    count: watch::Sender<usize>,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight { count: watch::Sender::new(0) }
    }
}

impl InFlight {
    /// Counts one piece of work until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlightGuard {
        self.count.send_modify(|n| *n += 1);
        InFlightGuard(self.clone())
    }

    /// Replaces the count (for work counted elsewhere, such as a transaction table).
    pub fn set(&self, n: usize) {
        self.count.send_if_modified(|c| std::mem::replace(c, n) != n);
    }

    pub fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// Resolves when no work is in progress.
    pub async fn idle(&self) {
        let mut rx = self.count.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// One piece of work in progress; dropping it ends it.
#[must_use = "the work ends when the guard is dropped"]
pub struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.count.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn idle_waits_for_the_last_guard() {
        let work = Arc::new(InFlight::default());
        let (a, b) = (work.begin(), work.begin());
        assert_eq!(work.count(), 2);
        let waiter = tokio::spawn({
            let work = work.clone();
            async move { work.idle().await }
        });
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one guard is still held");
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("idle after the last guard").unwrap();
        work.set(3);
        assert_eq!(work.count(), 3);
    }

    #[tokio::test]
    async fn started_resolves_for_every_clone() {
        let drain = Drain::default();
        let other = drain.clone();
        let waiter = tokio::spawn(async move { other.started().await });
        assert!(!drain.is_draining());
        drain.start();
        drain.start();
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("started after start()").unwrap();
        assert!(drain.is_draining());
    }
}
