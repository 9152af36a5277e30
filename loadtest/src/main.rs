//! `loadtest`: measures Callmesh with SIPp the way operators measure a SIP platform, and
//! side by side with Kamailio (+ rtpengine) in the same run.
//!
//! `cargo run --release -p loadtest -- --target all-in-one --scenario basic [--compare kamailio]`
//! builds Callmesh, then for each system climbs a ladder of constant-rate steps (each with a
//! fresh system and far end) until calls fail or setup time degrades, bisects, confirms the
//! best rate with a packet capture for precise setup times, checks SIPp's own ceiling where
//! a system failed, and writes `results.json` and `chart.png`.

mod blast;
mod capture;
mod chaos;
mod chart;
mod ladder;
mod outcome;
mod prepare;
mod procs;
mod report;
mod run;
mod scenario;
mod sippstat;
mod step;
mod systems;
mod usage;

use std::path::PathBuf;

use clap::Parser;

use crate::scenario::Scenario;
use crate::systems::System;

/// Systems to compare against.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Kamailio 5.6 as a stateful proxy; with rtpengine (userspace) when media is anchored.
    Kamailio,
}

/// How the load generator's own ceiling is checked.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ceiling {
    /// SIPp direct at each rate where a system failed.
    Check,
    /// A whole ladder of SIPp direct, alternating with the systems.
    Full,
    Off,
}

#[derive(Parser, Debug)]
#[command(about = "Measures Callmesh with SIPp, side by side with Kamailio + rtpengine")]
pub struct Cli {
    /// How Callmesh runs: one process, or one process per role on a nats-server.
    #[arg(long, value_enum, default_value = "all-in-one")]
    pub target: System,
    #[arg(long, value_enum, default_value = "basic")]
    pub scenario: Scenario,
    /// Also measure this system, alternating steps with Callmesh.
    #[arg(long, value_enum)]
    pub compare: Option<Compare>,
    /// Rates to climb (calls/s), e.g. `500,1000,2000`; concurrent: simultaneous calls.
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<u32>,
    /// Or a linear ladder: first rate, increment, last rate.
    #[arg(long, num_args = 3, value_names = ["START", "STEP", "MAX"])]
    pub linear: Vec<u32>,
    /// Seconds of each constant-rate step.
    #[arg(long, default_value_t = 20)]
    pub step_secs: u64,
    /// Bisections between the last passing and the first failing rate.
    #[arg(long, default_value_t = 2)]
    pub refine: u32,
    /// Seconds a signaling-only call is held before BYE (basic: 0; concurrent: 60).
    #[arg(long)]
    pub hold_secs: Option<u64>,
    /// Times each media call plays the 7 s G.711 capture (media: 1; concurrent: 4).
    #[arg(long)]
    pub plays: Option<u32>,
    /// Concurrent calls without RTP (signaling and anchored media ports only).
    #[arg(long)]
    pub no_rtp: bool,
    /// Users in the registration storm.
    #[arg(long, default_value_t = 1000)]
    pub users: u32,
    /// Agents of the queue (queue scenario): each answers at the far end; a caller holds
    /// for --hold-secs (2) after it is answered by the queue.
    #[arg(long, default_value_t = 100)]
    pub agents: u32,
    /// Setup time p99 (SIPp, ms) above which a step fails as degraded.
    #[arg(long, default_value_t = 100.0)]
    pub max_p99_ms: f64,
    /// RTP loss (percent) above which a media step fails.
    #[arg(long, default_value_t = 0.1)]
    pub max_rtp_loss_pct: f64,
    #[arg(long, value_enum, default_value = "check")]
    pub ceiling: Ceiling,
    /// Before each step, wait at most this long for the machine to be idle (0: do not wait).
    #[arg(long, default_value_t = 60)]
    pub quiet_secs: u64,
    /// Skip the confirm step (packet capture at the best rate).
    #[arg(long)]
    pub no_confirm: bool,
    /// Where results go (default: target/loadtest/<scenario>-<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A prebuilt callmesh binary (default: `cargo build --release` it).
    #[arg(long)]
    pub callmesh_bin: Option<PathBuf>,
    /// Free ports instead of the standard 5060/5070/5080 (not with --compare).
    #[arg(long)]
    pub free_ports: bool,
    /// Do not apt-get install missing tools.
    #[arg(long)]
    pub no_install: bool,
}

fn main() {
    // `loadtest rtp …`: the RTP blaster (`blast/`), its own arguments.
    if std::env::args().nth(1).as_deref() == Some("rtp") {
        let args = blast::Args::parse_from(std::env::args().skip(1));
        let result = blast::run(&args);
        procs::stop_all();
        if let Err(e) = result {
            eprintln!("loadtest rtp: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    let cli = Cli::parse();
    if let Err(e) = ctrlc::set_handler(|| {
        eprintln!("\ninterrupted: stopping every process this run started");
        procs::stop_all();
        std::process::exit(130);
    }) {
        eprintln!("warning: cannot handle Ctrl-C ({e}); processes are still stopped on normal exit");
    }
    let result = run::run(&cli);
    procs::stop_all();
    if let Err(e) = result {
        eprintln!("loadtest: {e:#}");
        std::process::exit(1);
    }
}
