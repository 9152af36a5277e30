//! RFC 3261 transaction timers by their RFC names (Table 4, and L/M of RFC 6026), the
//! T1/T2/T4 they derive from, and the small per-transaction table of deadlines.

use std::time::{Duration, Instant};

/// The base timer values (RFC 3261 §17.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate; default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses; default 4 s.
    pub t2: Duration,
    /// Maximum duration a message remains in the network; default 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

impl TimerConfig {
    /// 64·T1: transaction timeouts (B, F, H, J, L, M).
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: at least 32 s on unreliable transports, zero on reliable ones.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t1x64().max(Duration::from_secs(32)) }
    }

    /// Timers I and K: T4 on unreliable transports, zero on reliable ones.
    pub fn t4_unless_reliable(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer J: 64·T1 on unreliable transports, zero on reliable ones.
    pub fn timer_j(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t1x64() }
    }
}

/// A transaction timer, named as in RFC 3261 Table 4 and RFC 6026.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmit (client, unreliable).
    A,
    /// INVITE transaction timeout (client).
    B,
    /// Wait time for response retransmits (client INVITE, Completed).
    D,
    /// Non-INVITE request retransmit (client, unreliable).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE response retransmit (server, unreliable).
    G,
    /// Wait time for ACK receipt (server INVITE, Completed).
    H,
    /// Wait time for ACK retransmits (server INVITE, Confirmed).
    I,
    /// Wait time for non-INVITE request retransmits (server, Completed).
    J,
    /// Wait time for response retransmits (client non-INVITE, Completed).
    K,
    /// Wait time in Accepted for INVITE retransmits (server, RFC 6026).
    L,
    /// Wait time in Accepted for 2xx retransmits (client, RFC 6026).
    M,
    /// 2xx retransmission by the UAS core until ACK (RFC 3261 §13.3.1.4): not a
    /// transaction timer in the RFC, but driven the same way. It gives up with Timer L.
    Retransmit2xx,
}

/// The deadlines of one transaction: at most a few run at once (A and B, G and H,
/// Retransmit2xx and L), so a small fixed table keeps transactions compact.
#[derive(Debug, Clone, Default)]
pub struct TimerTable {
    slots: [Option<(Timer, Instant)>; 4],
}

impl TimerTable {
    pub fn set(&mut self, timer: Timer, deadline: Instant) {
        let slot = match self.slots.iter().position(|s| matches!(s, Some((t, _)) if *t == timer)) {
            Some(i) => i,
            None => match self.slots.iter().position(Option::is_none) {
                Some(i) => i,
                None => {
                    debug_assert!(false, "more than four timers at once");
                    0
                }
            },
        };
        self.slots[slot] = Some((timer, deadline));
    }

    pub fn stop(&mut self, timer: Timer) {
        for s in &mut self.slots {
            if matches!(s, Some((t, _)) if *t == timer) {
                *s = None;
            }
        }
    }

    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.slots.iter().flatten().find(|(t, _)| *t == timer).map(|(_, d)| *d)
    }

    pub fn is_set(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    pub fn stop_all(&mut self) {
        self.slots = Default::default();
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.slots.iter().flatten().map(|(_, d)| *d).min()
    }

    /// Removes and returns the earliest timer due at `now`, if any.
    pub fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let (timer, _) = self.slots.iter().flatten().filter(|(_, d)| *d <= now).min_by_key(|(_, d)| *d).copied()?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_timers_pop_in_deadline_order() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        t.set(Timer::B, t0 + Duration::from_secs(32));
        t.set(Timer::A, t0 + Duration::from_millis(500));
        assert_eq!(t.next(), Some(t0 + Duration::from_millis(500)));
        assert_eq!(t.pop_expired(t0), None);
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(40)), Some(Timer::A));
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(40)), Some(Timer::B));
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(40)), None);
    }

    #[test]
    fn reliable_transports_zero_the_wait_timers() {
        let c = TimerConfig::default();
        assert_eq!(c.timer_d(true), Duration::ZERO);
        assert_eq!(c.timer_d(false), Duration::from_secs(32));
        assert_eq!(c.timer_j(false), Duration::from_secs(32));
        assert_eq!(c.t4_unless_reliable(false), Duration::from_secs(5));
    }
}
