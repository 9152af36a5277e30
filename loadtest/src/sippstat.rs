//! Reading what SIPp wrote during a step: its statistics file (`-trace_stat -fd 1`), its
//! per-call response times (`-trace_rtt`), its error log (`-trace_err`) and its screen dumps
//! (RTP echo counters).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The counters of one SIPp run, from the rows of its statistics file.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct SippCounters {
    pub outgoing: u64,
    pub incoming: u64,
    pub successful: u64,
    pub failed: u64,
    pub retransmissions: u64,
    pub failed_unexpected: u64,
    pub failed_timeout: u64,
    pub failed_max_retrans: u64,
    pub out_of_call: u64,
    pub dead_call: u64,
    pub watchdog_major: u64,
    /// The most simultaneous calls seen in any row.
    pub max_concurrent: u64,
    /// Calls created per second, from SIPp's `CallRate(C)` when the last call was created.
    pub achieved_cps: f64,
}

/// Parses a SIPp statistics file (`;`-separated, header row first). `count` is the number
/// of calls the run was asked for: the achieved rate is read where that many existed.
pub fn parse_stats(text: &str, count: u64) -> Result<SippCounters, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().ok_or("empty statistics file")?.split(';').map(str::trim).collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(';').map(str::trim).collect()).collect();
    let last = rows.last().ok_or("statistics file has no data row")?;
    let col = |row: &Vec<&str>, name: &str| -> f64 {
        header.iter().position(|h| *h == name).and_then(|i| row.get(i)).and_then(|v| v.parse().ok()).unwrap_or(0.0)
    };
    let counter = |name: &str| col(last, &format!("{name}(C)")) as u64;
    let outgoing = counter("OutgoingCall");
    let created_row = rows.iter().find(|r| count > 0 && col(r, "OutgoingCall(C)") as u64 >= count).unwrap_or(last);
    Ok(SippCounters {
        outgoing,
        incoming: counter("IncomingCall"),
        successful: counter("SuccessfulCall"),
        failed: counter("FailedCall"),
        retransmissions: counter("Retransmissions"),
        failed_unexpected: counter("FailedUnexpectedMessage"),
        failed_timeout: counter("FailedTimeoutOnRecv"),
        failed_max_retrans: counter("FailedMaxUDPRetrans"),
        out_of_call: counter("OutOfCallMsgs"),
        dead_call: counter("DeadCallMsgs"),
        watchdog_major: counter("WatchdogMajor"),
        max_concurrent: rows.iter().map(|r| col(r, "CurrentCall") as u64).max().unwrap_or(0),
        achieved_cps: col(created_row, "CallRate(C)"),
    })
}

/// Percentiles of a set of samples (milliseconds).
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// Linear interpolation between closest ranks; `None` without samples.
    pub fn of(mut values: Vec<f64>) -> Option<Percentiles> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let k = (values.len() - 1) as f64 * p / 100.0;
            let (lo, hi) = (k.floor() as usize, (k.ceil() as usize).min(values.len() - 1));
            let v = values[lo] + (values[hi] - values[lo]) * (k - lo as f64);
            (v * 1000.0).round() / 1000.0
        };
        Some(Percentiles { samples: values.len(), p50_ms: at(50.0), p95_ms: at(95.0), p99_ms: at(99.0), max_ms: at(100.0) })
    }
}

/// Response times of the first timed response (INVITE → 200) from `-trace_rtt` files
/// (`date_ms;response_time_ms;rtd_no`). SIPp takes them from a coarse clock (one jiffy).
pub fn parse_rtt(text: &str) -> Vec<f64> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(';');
            let (_, ms, rtd) = (f.next()?, f.next()?, f.next()?);
            (rtd == "1").then(|| ms.parse().ok()).flatten()
        })
        .collect()
}

/// Unexpected messages SIPp let calls continue on (`-default_behaviors all,-abortunexp`):
/// (late provisional responses, anything else).
pub fn count_unexpected(errors_log: &str) -> (u64, u64) {
    let marker = "Continuing call on unexpected message";
    let mut late_1xx = 0;
    let mut other = 0;
    for line in errors_log.lines().filter(|l| l.contains(marker)) {
        let received = line.split("received '").nth(1).unwrap_or("");
        if received.starts_with("SIP/2.0 1") {
            late_1xx += 1;
        } else {
            other += 1;
        }
    }
    (late_1xx, other)
}

/// The largest value of a screen counter line such as `   1234 Total echo RTP pckts 1st
/// stream` over all screen dumps.
pub fn screen_counter(screen: &str, label: &str) -> Option<u64> {
    screen.lines().filter(|l| l.contains(label)).filter_map(|l| l.split_whitespace().next()?.parse().ok()).max()
}

/// Why SIPp stopped, when its exit code says it could not run at all (254: a socket it could
/// not bind, 255: another fatal error): its last error line, which names the cause.
pub fn fatal_error(code: Option<i32>, output: &str) -> Option<String> {
    let code = code.filter(|c| matches!(c, 254 | 255))?;
    let line = output.lines().rev().find(|l| l.contains("Unable") || l.to_ascii_lowercase().contains("error"));
    // SIPp's error lines begin with a date, a time and a timestamp, tab- and colon-separated.
    let why = line.map(|l| l.rsplit_once(": ").map_or(l, |(_, why)| why).trim().to_owned());
    Some(format!("SIPp exited with {code}: {}", why.unwrap_or_else(|| "no error line".into())))
}

/// The text of every file in `dir` whose name ends with `suffix`, joined.
pub fn read_matching(dir: &Path, prefix: &str, suffix: &str) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && name.ends_with(suffix) {
            out.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = include_str!("../tests/fixtures/uac_stat.csv");

    #[test]
    fn a_sipp_that_could_not_run_says_why() {
        let output = "Resolving remote host '127.0.0.1'... Done.\n2026-12-01\t02:27:58.863833\t1796092078.863833: \
                      Unable to bind video RTP socket (IP=127.0.0.1, port=43002), errno = 98 (Address already in use)\n";
        assert_eq!(
            fatal_error(Some(254), output).as_deref(),
            Some(
                "SIPp exited with 254: Unable to bind video RTP socket (IP=127.0.0.1, port=43002), errno = 98 (Address already in use)"
            )
        );
        assert_eq!(fatal_error(Some(255), "").as_deref(), Some("SIPp exited with 255: no error line"));
        assert_eq!(fatal_error(Some(1), output), None, "1 is a run with failed calls, judged by its counters");
        assert_eq!(fatal_error(None, output), None);
    }

    #[test]
    fn a_real_sipp_statistics_file_gives_its_last_counters_and_the_rate_when_all_calls_existed() {
        let c = parse_stats(STATS, 200).unwrap();
        assert_eq!((c.outgoing, c.successful, c.failed, c.retransmissions), (200, 200, 0, 0));
        assert_eq!(c.max_concurrent, 1);
        // The rate of the row where OutgoingCall reached 200, not of the last row.
        assert!((c.achieved_cps - 99.6512).abs() < 1e-9, "{}", c.achieved_cps);
    }

    #[test]
    fn a_run_that_never_created_all_its_calls_reports_the_last_rate() {
        let c = parse_stats(STATS, 1000).unwrap();
        assert!((c.achieved_cps - 99.6016).abs() < 1e-9);
    }

    #[test]
    fn statistics_without_rows_are_an_error() {
        assert!(parse_stats("", 1).is_err());
        assert!(parse_stats("StartTime;CurrentCall\n", 1).is_err());
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let p = Percentiles::of((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!((p.samples, p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms), (100, 50.5, 95.05, 99.01, 100.0));
        assert_eq!(Percentiles::of(vec![3.0]).unwrap().p99_ms, 3.0);
        assert!(Percentiles::of(Vec::new()).is_none());
    }

    #[test]
    fn rtt_files_keep_the_first_timed_response_only() {
        let text = "Date_ms;response_time_ms;rtd_no\n12.001;4;1\n13.0;9;2\n24.001;0.5;1\nbroken\n";
        assert_eq!(parse_rtt(text), vec![4.0, 0.5]);
        assert_eq!(parse_rtt(include_str!("../tests/fixtures/rtt_sample.csv")), vec![0.0, 0.0]);
    }

    #[test]
    fn unexpected_messages_split_late_provisionals_from_the_rest() {
        let log = "2026 Continuing call on unexpected message for Call-Id '1-2@h': while expecting '200' (index 2), received 'SIP/2.0 180 Ringing\n\
                   2026 Continuing call on unexpected message for Call-Id '3@h': while expecting '200' (index 2), received 'SIP/2.0 503 Busy\n\
                   2026 Something else entirely\n";
        assert_eq!(count_unexpected(log), (1, 1));
    }

    #[test]
    fn screen_counters_take_the_latest_and_largest_dump() {
        let screen = "  10 Total echo RTP pckts 1st stream\n...\n  472 Total echo RTP pckts 1st stream\n 3 Total echo RTP pckts 2nd stream\n";
        assert_eq!(screen_counter(screen, "Total echo RTP pckts 1st stream"), Some(472));
        assert_eq!(screen_counter(screen, "missing"), None);
    }
}
