//! CPU and memory from `/proc`: CPU ticks and proportional memory of a process group, the
//! box's idle time, and the CPU taken by processes outside the test (noise).

use std::collections::HashMap;
use std::time::Duration;

/// Clock ticks per second of `/proc` times.
pub fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// (pid, process group, utime + stime ticks) of every process.
fn all_processes() -> Vec<(i32, i32, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the parenthesised command name (which may contain spaces).
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // rest[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
        let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        out.push((pid, num(5) as i32, num(14) + num(15)));
    }
    out
}

/// CPU ticks used so far by every process in group `pgid`.
pub fn group_ticks(pgid: i32) -> u64 {
    all_processes().iter().filter(|(_, g, _)| *g == pgid).map(|(_, _, t)| t).sum()
}

/// Memory of group `pgid` now, KiB: the sum of each process's proportional share (so
/// memory shared between workers counts once), or the resident size of a lone process.
pub fn group_memory_kib(pgid: i32) -> u64 {
    let members: Vec<i32> = all_processes().iter().filter(|(_, g, _)| *g == pgid).map(|(p, _, _)| *p).collect();
    let field = |pid: i32, file: &str, key: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    match members.as_slice() {
        [one] => field(*one, "status", "VmHWM:").max(field(*one, "status", "VmRSS:")),
        many => many.iter().map(|p| field(*p, "smaps_rollup", "Pss:")).sum(),
    }
}

/// Ticks of every process outside `ours` (groups) and this process, to measure noise.
pub struct ForeignSnapshot(HashMap<i32, u64>);

impl ForeignSnapshot {
    pub fn take(ours: &[i32]) -> ForeignSnapshot {
        let me = std::process::id() as i32;
        let snapshot =
            all_processes().into_iter().filter(|(p, g, _)| *p != me && !ours.contains(g)).map(|(p, _, t)| (p, t)).collect();
        ForeignSnapshot(snapshot)
    }

    /// Ticks foreign processes used between `self` and `later`.
    pub fn ticks_until(&self, later: &ForeignSnapshot) -> u64 {
        later.0.iter().map(|(pid, t)| t.saturating_sub(self.0.get(pid).copied().unwrap_or(0))).sum()
    }
}

/// (busy, total) jiffies of the whole box from `/proc/stat`.
fn box_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Waits, at most `max_wait`, until the box is less than `busy_pct` busy over one second;
/// returns the busy percentage last seen (of all cores).
pub fn wait_quiet(busy_pct: f64, max_wait: Duration) -> f64 {
    let deadline = std::time::Instant::now() + max_wait;
    loop {
        let (b0, t0) = box_jiffies();
        std::thread::sleep(Duration::from_secs(1));
        let (b1, t1) = box_jiffies();
        let busy = 100.0 * (b1 - b0) as f64 / (t1 - t0).max(1) as f64;
        if busy < busy_pct || std::time::Instant::now() > deadline {
            return busy;
        }
    }
}

/// Number of cores this box has.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_group_has_cpu_time_and_memory() {
        // SAFETY: getpgrp has no preconditions.
        let pgid = unsafe { libc::getpgrp() };
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(0u64);
        }
        assert!(group_ticks(pgid) > 0);
        assert!(group_memory_kib(pgid) > 0);
    }

    #[test]
    fn a_snapshot_excludes_our_groups() {
        // SAFETY: getpgrp has no preconditions.
        let pgid = unsafe { libc::getpgrp() };
        let before = ForeignSnapshot::take(&[pgid]);
        assert!(!before.0.contains_key(&(std::process::id() as i32)));
        assert!(!before.0.is_empty(), "init and the test harness are outside our group");
    }
}
