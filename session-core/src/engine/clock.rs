//! Instants in the persisted state: an engine's timers are `Instant`s, which mean nothing on
//! another node, so the snapshot writes them as wall-clock milliseconds and the restore reads
//! them back against its own clock.

use std::time::{Duration, Instant};

/// The wall-clock reading of `at`, knowing `now` reads `wall_ms`.
pub(super) fn to_wall(at: Instant, now: Instant, wall_ms: u64) -> u64 {
    // Rounded so that the instant read back is never later than `at` (a timer due then still
    // fires at that time): down in the future, up in the past.
    if at >= now {
        wall_ms + (at - now).as_millis() as u64
    } else {
        wall_ms.saturating_sub((now - at).as_nanos().div_ceil(1_000_000) as u64)
    }
}

/// The instant of wall time `at_ms`, when `now` reads `wall_ms` — in the past too (a timer
/// that was overdue when the state was written stays overdue by as much).
pub(super) fn from_wall(at_ms: u64, now: Instant, wall_ms: u64) -> Instant {
    if at_ms >= wall_ms {
        now + Duration::from_millis(at_ms - wall_ms)
    } else {
        now.checked_sub(Duration::from_millis(wall_ms - at_ms)).unwrap_or(now)
    }
}
