//! Riding out a registry that is briefly unavailable: after a JetStream server dies, the
//! buckets it led elect new leaders, and for a few seconds their operations fail or time
//! out. Writes that matter (a registration, a session's record) are tried again, with
//! growing pauses, for a bounded time rather than failed at the first error. Only
//! backend errors are retried: a lost compare-and-set is an answer, not an outage.

use std::future::Future;
use std::time::Duration;

use super::RegistryError;

/// How long an operation is tried again while the registry is unavailable.
pub const PATIENCE: Duration = Duration::from_secs(6);

/// Runs `op` until it succeeds or fails with anything but a backend error, for at most
/// [`PATIENCE`]; then its last error.
pub async fn patiently<T, F, Fut>(what: &str, op: F) -> Result<T, RegistryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RegistryError>>,
{
    patiently_for(what, PATIENCE, op).await
}

/// [`patiently`] for at most `patience`.
pub async fn patiently_for<T, F, Fut>(what: &str, patience: Duration, mut op: F) -> Result<T, RegistryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RegistryError>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    let mut pause = Duration::from_millis(50);
    loop {
        match op().await {
            Err(RegistryError::Backend(e)) if tokio::time::Instant::now() + pause < deadline => {
                tracing::info!(what, error = %e, "registry unavailable, trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn backend_errors_are_tried_again_within_the_bound_and_answers_are_not() {
        let calls = AtomicU32::new(0);
        let flaky = || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err(RegistryError::Backend("no leader".into())),
                _ => Ok(7),
            }
        };
        assert_eq!(patiently("flaky", flaky).await, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        calls.store(0, Ordering::SeqCst);
        let lost = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(RegistryError::WrongRevision { key: "k".into(), expected: 1 })
        };
        assert!(matches!(patiently("cas", lost).await, Err(RegistryError::WrongRevision { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a lost compare-and-set is an answer");

        let started = tokio::time::Instant::now();
        let down = || async { Err::<(), _>(RegistryError::Backend("down".into())) };
        assert!(matches!(patiently("down", down).await, Err(RegistryError::Backend(_))));
        assert!(started.elapsed() <= PATIENCE, "gave up within the bound: {:?}", started.elapsed());
    }
}
