//! Bounded waits on a condition, from async tests or blocking ones: the panic names what was
//! awaited.

use std::time::Duration;

/// Polls `ok` every 10 ms until it holds; panics naming `what` after `timeout`.
pub async fn until(what: &str, timeout: Duration, ok: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Checks `ok` every 10 ms until it holds; panics naming `what` after `timeout`. For tests
/// without a runtime.
pub fn blocking_until(what: &str, timeout: Duration, ok: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !ok() {
        assert!(std::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Awaits `check()` every 10 ms until it is true; panics naming `what` after `timeout`.
/// For conditions that need an async call (a registry read).
pub async fn until_async<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
