//! A whole run: the plan from the command line, one ladder per system with their steps
//! alternating, a confirm step with a packet capture at each system's best rate, SIPp's own
//! ceiling where a system failed, then the report.

use std::path::PathBuf;

use crate::ladder::{self, Ladder};
use crate::outcome::{Limits, StepOutcome};
use crate::prepare::{self, Tool};
use crate::report::{self, Results};
use crate::scenario::{Plan, Ports, Scenario};
use crate::step::Step;
use crate::systems::{Setup, System};
use crate::{Ceiling, Cli, Compare};

/// A failed step during which other processes took this much CPU (% of a core) is re-run.
const NOISE_PCT: f64 = 15.0;
const NOISY_RETRIES: u32 = 2;

pub fn run(cli: &Cli) -> anyhow::Result<()> {
    if cli.scenario == Scenario::Chaos {
        anyhow::ensure!(cli.compare.is_none(), "the chaos scenario runs Callmesh's cluster alone: drop --compare");
        return crate::chaos::run(cli);
    }
    anyhow::ensure!(cli.target.is_callmesh(), "--target is all-in-one or cluster");
    let compare = cli.compare == Some(Compare::Kamailio);
    anyhow::ensure!(
        !(compare && cli.scenario == Scenario::Queue),
        "Kamailio has no ACD: run the queue scenario without --compare"
    );
    anyhow::ensure!(
        !(compare && cli.scenario == Scenario::Register),
        "the Kamailio baseline is a proxy without a registrar: run the register scenario without --compare"
    );
    anyhow::ensure!(!(compare && cli.free_ports), "Kamailio's script needs the standard ports: drop --free-ports");
    let plan = plan(cli);
    let levels = levels(cli, &plan);
    anyhow::ensure!(!levels.is_empty(), "no rates to run");
    let limits = Limits { max_p99_ms: cli.max_p99_ms, max_rtp_loss_pct: cli.max_rtp_loss_pct, ..Limits::default() };

    let mut tools = vec![
        Tool { program: "sipp", package: "sip-tester", optional: false },
        Tool { program: "tcpdump", package: "tcpdump", optional: true },
    ];
    if cli.target == System::Cluster {
        tools.push(Tool { program: "nats-server", package: "nats-server", optional: false });
    }
    if compare {
        tools.push(Tool { program: "kamailio", package: "kamailio", optional: false });
        if plan.anchors_media() {
            tools.push(Tool { program: "rtpengine", package: "rtpengine-daemon", optional: false });
            tools.push(Tool { program: "rtpengine-ctl", package: "rtpengine-utils", optional: false });
        }
    }
    prepare::ensure_tools(&tools, !cli.no_install)?;
    if plan.has_rtp() {
        anyhow::ensure!(
            std::path::Path::new(crate::scenario::PCAP).exists(),
            "{} is missing (package sip-tester)",
            crate::scenario::PCAP
        );
    }
    let callmesh_bin = match &cli.callmesh_bin {
        Some(p) => p.clone(),
        None => prepare::build_callmesh()?,
    };
    let ports = if cli.free_ports { Ports::free() } else { Ports::standard() };
    for addr in [ports.system_sip, ports.uas_sip, ports.uac_sip] {
        anyhow::ensure!(
            std::net::UdpSocket::bind(addr).is_ok(),
            "{addr} is in use (a SIP server already running?): stop it, or run with --free-ports"
        );
    }
    let setup = Setup { callmesh_bin, ports };
    let out = cli.out.clone().unwrap_or_else(|| default_out(cli.scenario));
    std::fs::create_dir_all(&out)?;
    let capture = !cli.no_confirm && prepare::is_installed("tcpdump");

    let mut systems = vec![cli.target];
    if compare {
        systems.push(System::Kamailio);
    }
    if cli.ceiling == Ceiling::Full && plan.has_far_end() {
        systems.push(System::SippDirect);
    }
    eprintln!(
        "{:?} scenario, {} s steps, levels {:?}; SIPp and the systems share this machine's {} cores; results in {}",
        cli.scenario,
        plan.step_secs,
        levels,
        crate::usage::cores(),
        out.display()
    );
    let quiet = std::time::Duration::from_secs(cli.quiet_secs);
    let mut runner = Runner { plan: &plan, setup: &setup, limits: &limits, quiet, out: out.clone(), steps: Vec::new() };
    println!("{}", report::header());
    let mut ladders: Vec<(System, Ladder)> = systems.iter().map(|s| (*s, Ladder::new(levels.clone(), cli.refine))).collect();
    while ladders.iter().any(|(_, l)| l.next().is_some()) {
        for (system, ladder) in ladders.iter_mut() {
            if let Some(level) = ladder.next() {
                let passed = runner.step(*system, level, "")?.passed;
                ladder.record(level, passed);
            }
        }
    }
    if capture {
        for (system, ladder) in &ladders {
            if let Some(best) = ladder.max_sustained() {
                runner.step(*system, best, "-confirm")?;
            }
        }
    }
    let mut ceiling = Vec::new();
    if cli.ceiling == Ceiling::Check && plan.has_far_end() {
        for (system, ladder) in &ladders {
            if let Some(failed) = ladder.first_failure().filter(|_| *system != System::SippDirect) {
                let direct = runner.step(System::SippDirect, failed, "")?;
                println!(
                    "load generator ceiling: SIPp direct at {} cps {} — {}'s failure at that rate is {}",
                    direct.offered_cps,
                    if direct.passed { "passes" } else { "fails too" },
                    system.label(&plan),
                    if direct.passed { "its own" } else { "limited by SIPp on this machine" }
                );
                ceiling.push(direct);
            }
        }
    }

    let summaries: Vec<_> = ladders
        .iter()
        .map(|(s, l)| {
            let to_rate = |level: u32| runner.rate_of(level);
            report::summarize(&runner.steps, &s.label(&plan), l.max_sustained().map(to_rate), l.first_failure().map(to_rate))
        })
        .collect();
    let ratios =
        if compare { report::ratios(&runner.steps, &cli.target.label(&plan), &System::Kamailio.label(&plan)) } else { vec![] };
    println!();
    for s in &summaries {
        println!(
            "{:<20} max sustained {} cps{} with 0 failed calls{}{}{}",
            s.system,
            s.max_sustained_cps.map_or("none".into(), |r| r.to_string()),
            match (plan.scenario, s.max_concurrent_passed) {
                (Scenario::Concurrent, Some(n)) => format!(" ({n} simultaneous calls)"),
                _ => String::new(),
            },
            s.first_failure_cps.map_or(String::new(), |r| format!(" (first failure at {r})")),
            s.cpu_pct_at_max.map_or(String::new(), |c| format!(", {c:.0}% CPU")),
            match (s.captured_p50_ms, s.captured_p99_ms) {
                (Some(a), Some(b)) => format!(", captured setup p50/p99 {a}/{b} ms"),
                _ => String::new(),
            }
        );
    }
    if let [ours, theirs, ..] = summaries.as_slice()
        && compare
    {
        if let (Some(a), Some(b)) = (ours.max_sustained_cps, theirs.max_sustained_cps) {
            println!("Callmesh / Kamailio max sustained: {:.2}", f64::from(a) / f64::from(b));
        }
        for r in &ratios {
            println!(
                "  at {:>6} cps: achieved ratio {:.2}, CPU per call ratio {}{}",
                r.offered_cps,
                r.achieved,
                r.cpu_per_call.map_or("-".into(), |v| format!("{v:.2}")),
                if r.both_passed { "" } else { " (not both passed)" }
            );
        }
    }
    let results = Results {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        started: report::now_utc(),
        host: report::Host::probe(compare),
        plan: &plan,
        limits: &limits,
        systems: summaries,
        ratios,
        generator_ceiling: ceiling,
        steps: &runner.steps,
    };
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    let title = format!("{:?} scenario ({} s steps)", cli.scenario, plan.step_secs);
    match crate::chart::draw(&runner.steps, &title, &out.join("chart.png")) {
        Ok(()) => println!("wrote {} and {}", out.join("results.json").display(), out.join("chart.png").display()),
        Err(e) => println!("wrote {}; no chart: {e:#}", out.join("results.json").display()),
    }
    Ok(())
}

/// The scenario with the command line's parameters and the scenario's defaults.
fn plan(cli: &Cli) -> Plan {
    let plays = match cli.scenario {
        Scenario::Media => cli.plays.unwrap_or(1),
        Scenario::Concurrent if !cli.no_rtp => cli.plays.unwrap_or(4),
        _ => 0,
    };
    let hold_secs = cli.hold_secs.unwrap_or(match cli.scenario {
        Scenario::Concurrent => 60,
        Scenario::Queue => 2,
        _ => 0,
    });
    let (users, agents) = (cli.users.max(1), cli.agents.max(1));
    Plan { scenario: cli.scenario, step_secs: cli.step_secs.max(1), hold_ms: hold_secs * 1000, plays, users, agents }
}

/// The ladder's levels: rates in calls/s, or simultaneous calls in the concurrent scenario.
fn levels(cli: &Cli, plan: &Plan) -> Vec<u32> {
    if let [start, step, max] = cli.linear[..] {
        return ladder::linear(start, step, max);
    }
    if !cli.rates.is_empty() {
        return cli.rates.clone();
    }
    match plan.scenario {
        Scenario::Basic => vec![500, 1000, 2000, 3000, 4000, 5000, 5500, 6000, 7000, 8000],
        Scenario::Media => vec![25, 50, 75, 100, 150, 200, 250, 300, 400],
        Scenario::Concurrent if plan.has_rtp() => vec![300, 450, 600, 900, 1200, 1500],
        Scenario::Concurrent => vec![1000, 2500, 5000, 10_000],
        Scenario::Register => vec![250, 500, 1000, 2000, 3000, 4000, 5000],
        Scenario::Queue => vec![10, 25, 50, 75, 100, 150, 200],
        Scenario::Chaos => vec![100],
    }
}

fn default_out(scenario: Scenario) -> PathBuf {
    let stamp = report::now_utc().replace([':', '-'], "").replace('T', "-");
    prepare::workspace_dir().join("target").join("loadtest").join(format!("{scenario:?}-{stamp}").to_lowercase())
}

/// Runs steps and keeps their outcomes.
struct Runner<'a> {
    plan: &'a Plan,
    setup: &'a Setup,
    limits: &'a Limits,
    quiet: std::time::Duration,
    out: PathBuf,
    steps: Vec<StepOutcome>,
}

impl Runner<'_> {
    /// The call rate of a ladder level.
    fn rate_of(&self, level: u32) -> u32 {
        if self.plan.scenario == Scenario::Concurrent { self.plan.rate_for_concurrency(level) } else { level }
    }

    /// One step at `level`, re-run when it failed while other processes were busy.
    fn step(&mut self, system: System, level: u32, suffix: &str) -> anyhow::Result<StepOutcome> {
        let rate = self.rate_of(level);
        let label = system.label(self.plan);
        let mut attempt = 0;
        loop {
            let retry = if attempt > 0 { format!("-retry{attempt}") } else { String::new() };
            let dir = self.out.join(&label).join(format!("r{rate}{suffix}{retry}"));
            let capture = suffix == "-confirm";
            let step =
                Step { system, rate, plan: self.plan, setup: self.setup, limits: self.limits, quiet: self.quiet, dir, capture };
            let outcome = step.run()?;
            println!("{}", report::row(&outcome));
            let noisy = !outcome.passed && outcome.foreign_cpu_pct > NOISE_PCT && attempt < NOISY_RETRIES;
            self.steps.push(outcome.clone());
            if !noisy {
                return Ok(outcome);
            }
            eprintln!("step failed while other processes used {:.0}% CPU: running it again", outcome.foreign_cpu_pct);
            attempt += 1;
        }
    }
}
