//! One constant-rate step: a quiet box, a fresh far end and system, SIPp calling at the
//! rate until its calls are done, CPU and memory read around it, then everything stopped
//! and the step judged.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::outcome::{Limits, ProcessUsage, QueueFigures, RtpCounts, StepOutcome};
use crate::procs::Proc;
use crate::scenario::{PCAP_PACKETS, Plan, scenarios_dir};
use crate::sippstat::{self, Percentiles};
use crate::systems::{self, Setup, System};
use crate::usage::{self, ForeignSnapshot};

/// What to run.
pub struct Step<'a> {
    pub system: System,
    pub rate: u32,
    pub plan: &'a Plan,
    pub setup: &'a Setup,
    pub limits: &'a Limits,
    pub dir: PathBuf,
    /// Longest wait for an idle machine before the step.
    pub quiet: Duration,
    /// Take a two-second packet capture of the caller's port mid-step for precise setup times.
    pub capture: bool,
}

const ECHO_COUNTER: &str = "Total echo RTP pckts 1st stream";

impl Step<'_> {
    pub fn run(&self) -> anyhow::Result<StepOutcome> {
        std::fs::create_dir_all(&self.dir)?;
        if !self.quiet.is_zero() {
            usage::wait_quiet(10.0, self.quiet);
        }
        let (plan, ports) = (self.plan, &self.setup.ports);
        let calls = plan.calls(self.rate);
        let bound = plan.bound_secs(self.rate);
        let mut uas = match plan.has_far_end() {
            true => Some(self.start_far_end(bound)?),
            false => None,
        };
        let system = systems::start(self.system, plan, self.setup, &self.dir)?;
        let mut groups = system.groups();
        groups.extend(uas.iter().map(|p| (p.name.clone(), p.pid())));
        let pgids: Vec<i32> = groups.iter().map(|(_, g)| *g).collect();
        let foreign0 = ForeignSnapshot::take(&pgids);
        let ticks0: Vec<u64> = pgids.iter().map(|g| usage::group_ticks(*g)).collect();
        let memory0: u64 = system.groups().iter().map(|(_, g)| usage::group_memory_kib(*g)).sum();
        let t0 = Instant::now();

        let bar = progress(calls, &format!("{} @ {} cps", self.system.label(plan), self.rate));
        let sampler = Sampler::start(pgids.clone(), self.dir.join("uac_stat.csv"), bar.clone());
        let uac_cmd = plan.uac_command(system.target, self.rate, ports, &scenarios_dir(), &self.dir)?;
        let mut uac = Proc::spawn("sipp-uac", uac_cmd, &self.dir)?;
        let capture = self.capture.then(|| self.start_capture());
        let uac_exit = uac.wait(Duration::from_secs(bound + 10));
        if uac_exit.is_none() {
            uac.stop(Duration::from_secs(3));
        }
        let uac_wall = t0.elapsed().as_secs_f64();
        let relayed = plan.has_rtp().then(|| system.relayed_rtp()).flatten();
        let waits = (plan.scenario == crate::scenario::Scenario::Queue).then(|| {
            let q = |name: &str, q: f64| system.histogram_quantile(name, q);
            let (offer, answer) = ("callmesh_session_acd_offer_wait_seconds", "callmesh_session_acd_answer_wait_seconds");
            let talk_ms = system.counter("callmesh_session_acd_talk_ms_total");
            (system.histogram_count(answer), talk_ms, [q(offer, 0.5), q(offer, 0.99), q(answer, 0.5), q(answer, 0.99)])
        });
        let echoed = match (&mut uas, plan.has_rtp()) {
            (Some(uas), true) => screen_counter(uas, &self.dir),
            _ => None,
        };
        let ticks1: Vec<u64> = pgids.iter().map(|g| usage::group_ticks(*g)).collect();
        let wall = t0.elapsed().as_secs_f64();
        let foreign = ForeignSnapshot::take(&pgids);
        let peaks = sampler.finish();
        bar.finish_and_clear();
        if let Some(mut uas) = uas {
            // On SIGTERM SIPp writes its final statistics and exits.
            uas.stop(Duration::from_secs(5));
        }
        system.stop();
        if let Some(c) = capture {
            let _ = c.join();
        }

        let hz = usage::ticks_per_sec();
        let pct = |ticks: u64| (1000.0 * ticks as f64 / hz / wall).round() / 10.0;
        let usage_of = |i: usize| ProcessUsage {
            name: groups[i].0.clone(),
            cpu_pct: pct(ticks1[i] - ticks0[i]),
            peak_rss_kib: peaks[i].max(usage::group_memory_kib(pgids[i])),
        };
        let n_system = groups.len() - usize::from(plan.has_far_end());
        let mut generator_usage: Vec<ProcessUsage> = (n_system..groups.len()).map(usage_of).collect();
        let uac_cpu = uac_exit.map_or(0.0, |e| (1000.0 * e.cpu_secs / uac_wall).round() / 10.0);
        generator_usage.push(ProcessUsage { name: "sipp-uac".into(), cpu_pct: uac_cpu, peak_rss_kib: 0 });

        let stats = std::fs::read_to_string(self.dir.join("uac_stat.csv")).unwrap_or_default();
        let uac_counters = sippstat::parse_stats(&stats, calls)
            .map_err(|e| anyhow::anyhow!("caller SIPp wrote no statistics ({e}):\n{}", crate::procs::tail(&uac.output())))?;
        let prefix = plan.uac_prefix();
        let (late_1xx, unexpected_other) = sippstat::count_unexpected(&sippstat::read_matching(&self.dir, prefix, "_errors.log"));
        let system_usage: Vec<ProcessUsage> = (0..n_system).map(usage_of).collect();
        let peak_system: u64 = system_usage.iter().map(|u| u.peak_rss_kib).sum();
        let mut outcome = StepOutcome {
            system: self.system.label(plan),
            offered_cps: self.rate,
            calls,
            uas: sippstat::parse_stats(&std::fs::read_to_string(self.dir.join("uas_stat.csv")).unwrap_or_default(), 0).ok(),
            late_1xx,
            unexpected_other,
            setup: Percentiles::of(sippstat::parse_rtt(&sippstat::read_matching(&self.dir, prefix, "_rtt.csv"))),
            setup_captured: crate::capture::setup_percentiles(&self.dir.join("lat.pcap"), ports.uac_sip.port()),
            queue: waits.map(
                |(reached, talk_ms, [offer_wait_p50_ms, offer_wait_p99_ms, answer_wait_p50_ms, answer_wait_p99_ms])| {
                    QueueFigures {
                        reached_agents: reached,
                        occupancy_pct: (1000.0 * talk_ms as f64 / (f64::from(plan.agents.max(1)) * uac_wall * 1000.0)).round()
                            / 10.0,
                        offer_wait_p50_ms,
                        offer_wait_p99_ms,
                        answer_wait_p50_ms,
                        answer_wait_p99_ms,
                    }
                },
            ),
            rss_per_call_kib: (plan.scenario == crate::scenario::Scenario::Concurrent && uac_counters.max_concurrent > 0)
                .then(|| (peak_system.saturating_sub(memory0) as f64 / uac_counters.max_concurrent as f64 * 10.0).round() / 10.0),
            rtp: plan.has_rtp().then(|| RtpCounts {
                expected_each_way: uac_counters.successful * u64::from(plan.plays) * PCAP_PACKETS,
                echoed_by_far_end: echoed,
                relayed: relayed.filter(|_| self.system != System::SippDirect),
            }),
            uac: uac_counters,
            system_usage,
            generator_usage,
            foreign_cpu_pct: pct(foreign0.ticks_until(&foreign)),
            wall_secs: (wall * 10.0).round() / 10.0,
            passed: false,
            fail_reasons: Vec::new(),
        };
        outcome.judge(self.limits);
        if uac_exit.is_none() {
            outcome.passed = false;
            outcome.fail_reasons.push(format!("caller SIPp still running after {bound} s"));
        }
        if let Some(why) = sippstat::fatal_error(uac_exit.and_then(|e| e.code), &uac.output()) {
            outcome.passed = false;
            outcome.fail_reasons.push(format!("caller {why}"));
        }
        std::fs::write(self.dir.join("result.json"), serde_json::to_string_pretty(&outcome)?)?;
        Ok(outcome)
    }

    fn start_far_end(&self, bound: u64) -> anyhow::Result<Proc> {
        let mut cmd = self.plan.uas_command(&self.setup.ports, &scenarios_dir(), bound + 30);
        cmd.current_dir(&self.dir);
        let p = Proc::spawn("sipp-uas", cmd, &self.dir)?;
        if !testkit::ports::wait_until_bound(self.setup.ports.uas_sip, false, Duration::from_secs(10)) {
            anyhow::bail!("the far end SIPp did not bind {}:\n{}", self.setup.ports.uas_sip, crate::procs::tail(&p.output()));
        }
        Ok(p)
    }

    /// tcpdump on the caller's SIP port for two seconds from the middle of the step.
    fn start_capture(&self) -> thread::JoinHandle<()> {
        let (dir, port, half) = (self.dir.clone(), self.setup.ports.uac_sip.port(), self.plan.step_secs / 2);
        thread::spawn(move || {
            thread::sleep(Duration::from_secs(half));
            let mut cmd = std::process::Command::new("tcpdump");
            cmd.args(["-i", "lo", "-n", "-s", "512", "-B", "16384", "-c", "200000", "-w", "lat.pcap"]);
            cmd.arg(format!("udp port {port}")).current_dir(&dir);
            if let Ok(mut p) = Proc::spawn("tcpdump", cmd, &dir) {
                thread::sleep(Duration::from_secs(2));
                p.signal(libc::SIGINT);
                p.wait(Duration::from_secs(5));
            }
        })
    }
}

/// SIPp's echo counter: SIGUSR2 makes it append its screen to its screen log (bounded wait).
fn screen_counter(uas: &mut Proc, dir: &std::path::Path) -> Option<u64> {
    let read = || sippstat::read_matching(dir, "uas", "_screen.log");
    let before = read().len();
    uas.signal(libc::SIGUSR2);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let text = read();
        if let Some(v) = text.get(before..).and_then(|fresh| sippstat::screen_counter(fresh, ECHO_COUNTER)) {
            return Some(v);
        }
        thread::sleep(Duration::from_millis(50));
    }
    None
}

fn progress(calls: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(calls);
    let style = ProgressStyle::with_template("{msg:32} [{elapsed_precise}] {wide_bar} {pos}/{len} calls")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(label.to_owned());
    bar
}

/// Samples, once a second, the memory of every watched process group (keeping the peak)
/// and the caller's progress from its statistics file.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Vec<u64>>,
}

impl Sampler {
    fn start(pgids: Vec<i32>, uac_stats: PathBuf, bar: ProgressBar) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let mut peaks = vec![0u64; pgids.len()];
            while !flag.load(Ordering::Relaxed) {
                for (peak, g) in peaks.iter_mut().zip(&pgids) {
                    *peak = (*peak).max(usage::group_memory_kib(*g));
                }
                if let Ok(c) = std::fs::read_to_string(&uac_stats).map(|t| sippstat::parse_stats(&t, 0)) {
                    bar.set_position(c.map(|c| c.outgoing).unwrap_or(0));
                }
                for _ in 0..10 {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    thread::sleep(Duration::from_millis(100));
                }
            }
            peaks
        });
        Sampler { stop, handle }
    }

    fn finish(self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}
