//! What one step measured and whether it passed: every call set up and torn down with no
//! failure and no retransmission, the offered rate reached, setup time within its bound and,
//! with media, RTP loss within its bound.

use serde::{Deserialize, Serialize};

use crate::sippstat::{Percentiles, SippCounters};

/// CPU and memory of one process (or process group) over a step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessUsage {
    pub name: String,
    /// Percent of one core (the box has `cores × 100`).
    pub cpu_pct: f64,
    /// Peak resident memory (proportional share for process groups), KiB.
    pub peak_rss_kib: u64,
}

/// RTP counted during a media step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RtpCounts {
    /// Packets the callers sent (calls × packets per call); as many should come back.
    pub expected_each_way: u64,
    /// Packets the far end echoed (it counts what reached it).
    pub echoed_by_far_end: Option<u64>,
    /// Packets the system's media relay forwarded, both directions.
    pub relayed: Option<u64>,
}

impl RtpCounts {
    /// Loss from caller to far end, percent.
    pub fn forward_loss_pct(&self) -> Option<f64> {
        let echoed = self.echoed_by_far_end? as f64;
        (self.expected_each_way > 0).then(|| round3(100.0 * (1.0 - echoed / self.expected_each_way as f64)))
    }

    /// Loss over both directions through the relay, percent.
    pub fn relay_loss_pct(&self) -> Option<f64> {
        let relayed = self.relayed? as f64;
        (self.expected_each_way > 0).then(|| round3(100.0 * (1.0 - relayed / (2.0 * self.expected_each_way as f64))))
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Limits a step must stay within to pass.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Limits {
    /// SIPp's setup time p99 above this means setup time degraded.
    pub max_p99_ms: f64,
    pub max_rtp_loss_pct: f64,
    /// Achieved rate below this fraction of the offered rate fails the step.
    pub min_rate_fraction: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_p99_ms: 100.0, max_rtp_loss_pct: 0.1, min_rate_fraction: 0.95 }
    }
}

/// One constant-rate step against one system.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepOutcome {
    pub system: String,
    pub offered_cps: u32,
    pub calls: u64,
    pub uac: SippCounters,
    pub uas: Option<SippCounters>,
    /// Provisional responses that arrived after the 200 (not a failure; see the README).
    pub late_1xx: u64,
    pub unexpected_other: u64,
    /// INVITE → 200 at the caller, from SIPp (jiffy resolution).
    pub setup: Option<Percentiles>,
    /// INVITE → 200 from a packet capture at the caller's port (microsecond resolution).
    pub setup_captured: Option<Percentiles>,
    /// The system under test, per process.
    pub system_usage: Vec<ProcessUsage>,
    /// SIPp's own processes.
    pub generator_usage: Vec<ProcessUsage>,
    pub rtp: Option<RtpCounts>,
    /// Memory the system grew by per simultaneous call, KiB (concurrent scenario).
    pub rss_per_call_kib: Option<f64>,
    /// Calls into a queue: how many reached an agent, and the callers' waits (queue scenario).
    pub queue: Option<QueueFigures>,
    /// CPU used by processes outside the test during the step, percent of one core.
    pub foreign_cpu_pct: f64,
    pub wall_secs: f64,
    pub passed: bool,
    pub fail_reasons: Vec<String>,
}

/// A queue step's figures, from the session nodes' metrics: callers put through to an
/// agent, the agents' occupancy (talk time over the agents' time while callers came), their
/// wait to the first offer and to an agent put through (bucket upper bounds, ms).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct QueueFigures {
    pub reached_agents: u64,
    #[serde(default)]
    pub occupancy_pct: f64,
    pub offer_wait_p50_ms: Option<f64>,
    pub offer_wait_p99_ms: Option<f64>,
    pub answer_wait_p50_ms: Option<f64>,
    pub answer_wait_p99_ms: Option<f64>,
}

impl StepOutcome {
    /// Total CPU of the system under test, percent of one core.
    pub fn system_cpu_pct(&self) -> f64 {
        self.system_usage.iter().map(|p| p.cpu_pct).sum()
    }

    /// Total peak memory of the system under test, KiB.
    pub fn system_peak_rss_kib(&self) -> u64 {
        self.system_usage.iter().map(|p| p.peak_rss_kib).sum()
    }

    /// Sets `passed` and `fail_reasons` from the counters.
    pub fn judge(&mut self, limits: &Limits) {
        let mut reasons = Vec::new();
        let c = &self.uac;
        if c.successful != self.calls {
            reasons.push(format!("successful {}/{}", c.successful, self.calls));
        }
        if c.failed > 0 {
            reasons.push(format!("failed {}", c.failed));
        }
        let uas_retrans = self.uas.as_ref().map_or(0, |u| u.retransmissions);
        if c.retransmissions > 0 || uas_retrans > 0 {
            reasons.push(format!("retransmissions {}/{}", c.retransmissions, uas_retrans));
        }
        if self.unexpected_other > 0 {
            reasons.push(format!("unexpected messages {}", self.unexpected_other));
        }
        if c.achieved_cps < limits.min_rate_fraction * f64::from(self.offered_cps) {
            reasons.push(format!("achieved {:.1} cps", c.achieved_cps));
        }
        if let Some(q) = self.queue.filter(|q| q.reached_agents < c.successful) {
            reasons.push(format!("reached agents {}/{}", q.reached_agents, c.successful));
        }
        if let Some(p99) = self.setup.map(|s| s.p99_ms).filter(|p| *p > limits.max_p99_ms) {
            reasons.push(format!("setup p99 {p99} ms"));
        }
        if let Some(rtp) = &self.rtp {
            for (what, loss) in
                [("RTP loss to far end", rtp.forward_loss_pct()), ("RTP loss through relay", rtp.relay_loss_pct())]
            {
                if let Some(loss) = loss.filter(|l| *l > limits.max_rtp_loss_pct) {
                    reasons.push(format!("{what} {loss}%"));
                }
            }
            if rtp.echoed_by_far_end.is_none() {
                reasons.push("far end RTP counter unreadable".into());
            }
        }
        self.passed = reasons.is_empty();
        self.fail_reasons = reasons;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(calls: u64, cps: u32) -> StepOutcome {
        StepOutcome {
            system: "s".into(),
            offered_cps: cps,
            calls,
            uac: SippCounters { outgoing: calls, successful: calls, achieved_cps: f64::from(cps), ..Default::default() },
            uas: Some(SippCounters::default()),
            late_1xx: 3,
            unexpected_other: 0,
            setup: Percentiles::of(vec![1.0, 2.0, 4.0]),
            setup_captured: None,
            system_usage: vec![],
            generator_usage: vec![],
            rtp: None,
            rss_per_call_kib: None,
            queue: None,
            foreign_cpu_pct: 0.0,
            wall_secs: 1.0,
            passed: false,
            fail_reasons: vec![],
        }
    }

    #[test]
    fn a_clean_step_passes_and_late_provisionals_do_not_count() {
        let mut s = clean(100, 50);
        s.judge(&Limits::default());
        assert!(s.passed, "{:?}", s.fail_reasons);
    }

    #[test]
    fn every_kind_of_trouble_is_named() {
        let mut s = clean(100, 50);
        s.uac.successful = 98;
        s.uac.failed = 2;
        s.uas.as_mut().unwrap().retransmissions = 7;
        s.unexpected_other = 1;
        s.uac.achieved_cps = 40.0;
        s.setup = Percentiles::of(vec![1.0, 250.0]);
        s.judge(&Limits::default());
        assert!(!s.passed);
        assert_eq!(
            s.fail_reasons,
            vec![
                "successful 98/100",
                "failed 2",
                "retransmissions 0/7",
                "unexpected messages 1",
                "achieved 40.0 cps",
                "setup p99 247.51 ms"
            ]
        );
    }

    #[test]
    fn rtp_loss_beyond_the_limit_fails_in_either_measure() {
        let mut s = clean(10, 5);
        s.rtp = Some(RtpCounts { expected_each_way: 10_000, echoed_by_far_end: Some(9_995), relayed: Some(19_000) });
        s.judge(&Limits::default());
        assert_eq!(s.fail_reasons, vec!["RTP loss through relay 5%"], "0.05 % to the far end is within the 0.1 % limit");
        s.rtp = Some(RtpCounts { expected_each_way: 10_000, echoed_by_far_end: None, relayed: None });
        s.judge(&Limits::default());
        assert_eq!(s.fail_reasons, vec!["far end RTP counter unreadable"]);
    }
}
