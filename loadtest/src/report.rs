//! What a run prints and writes: a table row per step, the maximum sustained rate per
//! system, the Callmesh / Kamailio ratios, the load generator's ceiling, and `results.json`.

use serde::Serialize;

use crate::outcome::StepOutcome;

/// Header of the per-step table.
pub fn header() -> String {
    format!(
        "{:<20} {:>7} {:>8} {:>7} {:>6} {:>9} {:>22} {:>7} {:>8} {:>9} {:>20}  {}",
        "system",
        "offered",
        "achieved",
        "ok",
        "failed",
        "retrans",
        "setup p50/p95/p99 ms",
        "cpu %",
        "rss MiB",
        "sipp cpu%",
        "rtp exp/echo/relay",
        "verdict"
    )
}

/// One row of the per-step table.
pub fn row(s: &StepOutcome) -> String {
    let setup = s.setup.map_or("-".into(), |p| format!("{}/{}/{}", p.p50_ms, p.p95_ms, p.p99_ms));
    let retrans = format!("{}/{}", s.uac.retransmissions, s.uas.as_ref().map_or(0, |u| u.retransmissions));
    let rtp = s.rtp.as_ref().map_or("-".into(), |r| {
        let opt = |v: Option<u64>| v.map_or("?".into(), |v| v.to_string());
        format!("{}/{}/{}", r.expected_each_way, opt(r.echoed_by_far_end), opt(r.relayed))
    });
    let sipp_cpu: f64 = s.generator_usage.iter().map(|u| u.cpu_pct).sum();
    let verdict = if s.passed { "PASS".to_owned() } else { format!("FAIL: {}", s.fail_reasons.join(", ")) };
    format!(
        "{:<20} {:>7} {:>8.1} {:>7} {:>6} {:>9} {:>22} {:>7.1} {:>8.1} {:>9.1} {:>20}  {}{}",
        s.system,
        s.offered_cps,
        s.uac.achieved_cps,
        s.uac.successful,
        s.uac.failed,
        retrans,
        setup,
        s.system_cpu_pct(),
        s.system_peak_rss_kib() as f64 / 1024.0,
        sipp_cpu,
        rtp,
        verdict,
        if s.foreign_cpu_pct > 15.0 {
            format!(" (noise: {:.0}% CPU outside the test)", s.foreign_cpu_pct)
        } else {
            String::new()
        }
    ) + &s
        .setup_captured
        .map_or(String::new(), |p| format!(" [captured setup p50/p95/p99 {}/{}/{} ms]", p.p50_ms, p.p95_ms, p.p99_ms))
        + &s.queue.map_or(String::new(), |q| {
            let ms = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v}"));
            format!(
                " [reached agents {}, occupancy {}%; offer wait p50/p99 ≤ {}/{} ms, answer wait ≤ {}/{} ms]",
                q.reached_agents,
                q.occupancy_pct,
                ms(q.offer_wait_p50_ms),
                ms(q.offer_wait_p99_ms),
                ms(q.answer_wait_p50_ms),
                ms(q.answer_wait_p99_ms)
            )
        })
}

/// A system's result over the run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SystemSummary {
    pub system: String,
    pub max_sustained_cps: Option<u32>,
    pub first_failure_cps: Option<u32>,
    /// Most simultaneous calls of a passing step.
    pub max_concurrent_passed: Option<u64>,
    /// CPU of the system at its best passing step, percent of one core.
    pub cpu_pct_at_max: Option<f64>,
    /// Setup time from the packet capture of its confirm step, if taken.
    pub captured_p50_ms: Option<f64>,
    pub captured_p99_ms: Option<f64>,
}

/// The ratio of two systems at one offered rate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepRatio {
    pub offered_cps: u32,
    pub achieved: f64,
    /// System CPU per call, Callmesh over the other (below 1: Callmesh is cheaper).
    pub cpu_per_call: Option<f64>,
    pub both_passed: bool,
}

/// Callmesh / other at every rate both systems ran (last result per rate).
pub fn ratios(steps: &[StepOutcome], ours: &str, theirs: &str) -> Vec<StepRatio> {
    let last = |system: &str, rate: u32| steps.iter().rev().find(|s| s.system == system && s.offered_cps == rate);
    let mut rates: Vec<u32> = steps.iter().filter(|s| s.system == ours).map(|s| s.offered_cps).collect();
    rates.sort_unstable();
    rates.dedup();
    rates
        .into_iter()
        .filter_map(|rate| {
            let (a, b) = (last(ours, rate)?, last(theirs, rate)?);
            let per_call = |s: &StepOutcome| s.system_cpu_pct() / s.uac.achieved_cps.max(1e-9);
            Some(StepRatio {
                offered_cps: rate,
                achieved: round2(a.uac.achieved_cps / b.uac.achieved_cps.max(1e-9)),
                cpu_per_call: (b.system_cpu_pct() > 0.0).then(|| round2(per_call(a) / per_call(b))),
                both_passed: a.passed && b.passed,
            })
        })
        .collect()
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A system's summary from its steps and its ladder's verdicts.
pub fn summarize(steps: &[StepOutcome], system: &str, max: Option<u32>, first_fail: Option<u32>) -> SystemSummary {
    let mine = || steps.iter().filter(|s| s.system == system);
    let best = mine().rfind(|s| s.passed && Some(s.offered_cps) == max);
    let captured = mine().filter(|s| s.passed).filter_map(|s| s.setup_captured).next_back();
    SystemSummary {
        system: system.to_owned(),
        max_sustained_cps: max,
        first_failure_cps: first_fail,
        max_concurrent_passed: mine().filter(|s| s.passed).map(|s| s.uac.max_concurrent).max(),
        cpu_pct_at_max: best.map(StepOutcome::system_cpu_pct),
        captured_p50_ms: captured.map(|p| p.p50_ms),
        captured_p99_ms: captured.map(|p| p.p99_ms),
    }
}

/// Everything a run wrote to `results.json`.
#[derive(Debug, Serialize)]
pub struct Results<'a> {
    pub command: String,
    pub started: String,
    pub host: Host,
    pub plan: &'a crate::scenario::Plan,
    pub limits: &'a crate::outcome::Limits,
    pub systems: Vec<SystemSummary>,
    /// Callmesh / Kamailio per step, when compared.
    pub ratios: Vec<StepRatio>,
    /// SIPp direct at the rate where a system failed: did the load generator itself hold?
    pub generator_ceiling: Vec<StepOutcome>,
    pub steps: &'a [StepOutcome],
}

/// The machine and the versions of what ran.
#[derive(Debug, Serialize)]
pub struct Host {
    pub cores: usize,
    pub kernel: String,
    pub sipp: String,
    pub kamailio: Option<String>,
    pub rtpengine: Option<String>,
    pub callmesh_commit: Option<String>,
    pub note: &'static str,
}

impl Host {
    pub fn probe(with_kamailio: bool) -> Host {
        let first_line = |cmd: &str, args: &[&str], needle: &str| {
            let out = std::process::Command::new(cmd).args(args).output().ok()?;
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            text.lines().find(|l| l.contains(needle)).map(|l| l.trim().to_owned())
        };
        Host {
            cores: crate::usage::cores(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
            sipp: first_line("sipp", &["-v"], "SIPp").unwrap_or_default(),
            kamailio: with_kamailio.then(|| first_line("kamailio", &["-v"], "version")).flatten(),
            rtpengine: with_kamailio.then(|| first_line("rtpengine", &["--version"], "")).flatten(),
            callmesh_commit: first_line("git", &["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short", "HEAD"], ""),
            note: "SIPp (caller and far end) and the system under test share this machine's cores",
        }
    }
}

/// The current time in UTC, ISO 8601 (`2026-11-22T01:37:22Z`).
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    iso8601(secs)
}

/// Seconds since the epoch as an ISO 8601 UTC time (days to civil date, proleptic Gregorian).
fn iso8601(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (year, month, day) = contracts::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_printed_in_iso_8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_795_311_442), "2026-11-22T01:37:22Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }

    use super::*;

    fn step(system: &str, rate: u32, achieved: f64, cpu: f64, passed: bool) -> StepOutcome {
        let mut s: StepOutcome = serde_json::from_str(include_str!("../tests/fixtures/step.json")).unwrap();
        s.system = system.into();
        s.offered_cps = rate;
        s.uac.achieved_cps = achieved;
        s.system_usage[0].cpu_pct = cpu;
        s.system_usage.truncate(1);
        s.passed = passed;
        s
    }

    #[test]
    fn ratios_compare_the_same_rate_and_cpu_per_call() {
        let steps = [
            step("cm", 1000, 1000.0, 20.0, true),
            step("kam", 1000, 1000.0, 40.0, true),
            step("cm", 2000, 2000.0, 40.0, true),
            step("kam", 2000, 1600.0, 100.0, false),
            step("cm", 3000, 3000.0, 60.0, true),
        ];
        let r = ratios(&steps, "cm", "kam");
        assert_eq!(r.len(), 2, "3000 was run by one system only");
        assert_eq!((r[0].achieved, r[0].cpu_per_call, r[0].both_passed), (1.0, Some(0.5), true));
        assert_eq!((r[1].achieved, r[1].cpu_per_call, r[1].both_passed), (1.25, Some(0.32), false));
    }

    #[test]
    fn a_summary_takes_the_best_passing_step() {
        let steps =
            [step("cm", 1000, 1000.0, 20.0, true), step("cm", 2000, 2000.0, 41.0, true), step("cm", 3000, 2500.0, 90.0, false)];
        let s = summarize(&steps, "cm", Some(2000), Some(3000));
        assert_eq!((s.max_sustained_cps, s.first_failure_cps, s.cpu_pct_at_max), (Some(2000), Some(3000), Some(41.0)));
        assert!(row(&steps[2]).contains("FAIL"));
    }
}
