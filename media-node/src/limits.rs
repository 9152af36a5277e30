//! When a media node declines new calls: at its configured number of sessions (relays and
//! room seats), or while its process uses more CPU than allowed, as a share of all the
//! machine's cores (rtpengine's `max-sessions` and `max-cpu`). CPU is measured every second
//! from `/proc/self/stat`. A declining node says so in its heartbeat, so placement asks it
//! last, and answers allocations with an error naming the limit, so the session asks the
//! next node; calls in progress are not touched.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A node's limits (`None`: no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub max_sessions: Option<usize>,
    /// Percent of the whole machine (all cores), 1–100.
    pub max_cpu_percent: Option<f32>,
}

impl Limits {
    /// Why a node with `sessions` sessions and `cpu_percent` CPU in use declines a new call.
    pub fn declines(&self, sessions: usize, cpu_percent: f32) -> Option<String> {
        if let Some(max) = self.max_sessions.filter(|max| sessions >= *max) {
            return Some(format!("busy: {sessions} sessions, the limit is {max}"));
        }
        let max = self.max_cpu_percent.filter(|max| cpu_percent >= *max)?;
        Some(format!("busy: CPU at {cpu_percent:.0} %, the limit is {max:.0} %"))
    }
}

/// The process' CPU use over the last second, as a percent of all cores.
#[derive(Debug, Clone, Default)]
pub struct CpuMeter {
    percent_bits: Arc<AtomicU32>,
}

/// Clock ticks per second of `/proc` times (`USER_HZ`, 100 on Linux whatever the kernel's HZ).
const USER_HZ: f64 = 100.0;

impl CpuMeter {
    /// A meter updated every second until the returned meter and its clones are dropped.
    pub fn start() -> CpuMeter {
        let meter = CpuMeter::default();
        let weak = Arc::downgrade(&meter.percent_bits);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut last: Option<(Instant, u64)> = None;
            loop {
                tick.tick().await;
                let Some(bits) = weak.upgrade() else { return };
                let (Some(ticks), now) = (process_ticks(), Instant::now()) else { continue };
                if let Some((then, before)) = last {
                    let busy = ticks.saturating_sub(before) as f64 / USER_HZ;
                    let percent = 100.0 * busy / now.duration_since(then).as_secs_f64().max(1e-3) / cores;
                    bits.store((percent as f32).to_bits(), Ordering::Relaxed);
                }
                last = Some((now, ticks));
            }
        });
        meter
    }

    pub fn percent(&self) -> f32 {
        f32::from_bits(self.percent_bits.load(Ordering::Relaxed))
    }
}

/// User and system clock ticks this process has used (`/proc/self/stat` fields 14 and 15).
fn process_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_declines_at_either_limit_and_not_below() {
        let limits = Limits { max_sessions: Some(2), max_cpu_percent: Some(80.0) };
        assert_eq!(limits.declines(1, 79.0), None);
        assert_eq!(limits.declines(2, 10.0).as_deref(), Some("busy: 2 sessions, the limit is 2"));
        assert_eq!(limits.declines(0, 85.0).as_deref(), Some("busy: CPU at 85 %, the limit is 80 %"));
        assert_eq!(Limits::default().declines(100_000, 100.0), None);
    }

    #[test]
    fn this_process_has_used_cpu_ticks() {
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {
            std::hint::black_box(spin.elapsed());
        }
        assert!(process_ticks().is_some_and(|t| t > 0));
    }
}
