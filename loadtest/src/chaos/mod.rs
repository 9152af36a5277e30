//! `loadtest --scenario chaos`: calls with G.711 RTP both ways at a steady rate through a
//! cluster of two processes per role on a 3-server JetStream cluster (`cluster.rs`), while
//! one node of each role is killed with SIGKILL in turn — the session node running the most
//! calls, the media node relaying the most, an edge, a NATS server, a router — spread over
//! the run. SIPp calls (answering the re-INVITEs that move a call to another relay) and
//! SIPp answers, echoing RTP; a capture of the caller's side measures each call's audio
//! (`audio.rs`). The figures: calls failed at either end (the goal is none), each call's
//! longest audio gap, the takeover time of the session node's calls (from the session nodes'
//! `callmesh_session_takeover_seconds`), and what is left once the calls are over.
//!
//! `cargo run --release -p loadtest -- --scenario chaos --rates 50 --step-secs 60` (its own
//! cluster, whatever `--target` says)

mod audio;
mod cluster;

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use self::cluster::{Cluster, VICTIMS, Victim};
use crate::prepare::{self, Tool};
use crate::procs::Proc;
use crate::scenario::{PCAP, Ports, scenarios_dir, sipp};
use crate::sippstat::{self, SippCounters};
use crate::systems::histogram_quantile;
use crate::{Cli, report};

/// Seconds before the first death: calls (7.5 s long) are steadily up by then.
const WARM_UP_SECS: u64 = 10;

/// A death, and when.
#[derive(Debug, Serialize)]
struct Death {
    victim: Victim,
    node: String,
    at_secs: f64,
}

#[derive(Debug, Serialize)]
struct Takeover {
    calls: u64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

#[derive(Serialize)]
struct Results {
    command: String,
    started: String,
    host: report::Host,
    rate: u32,
    secs: u64,
    deaths: Vec<Death>,
    caller: SippCounters,
    callee: Option<SippCounters>,
    audio: audio::AudioFigures,
    takeover: Takeover,
    /// Packets the capture lost (its gaps are not the system's).
    capture_dropped: Option<u64>,
    /// Calls and relays still up on the live nodes after every call ended.
    left_calls: u64,
    left_relays: u64,
}

pub fn run(cli: &Cli) -> anyhow::Result<()> {
    let rate = cli.rates.first().copied().unwrap_or(100);
    let secs = cli.step_secs;
    anyhow::ensure!(secs >= 40, "the chaos run needs --step-secs 40 or more: five deaths a few seconds apart");
    let tools = [
        Tool { program: "sipp", package: "sip-tester", optional: false },
        Tool { program: "tcpdump", package: "tcpdump", optional: false },
        Tool { program: "nats-server", package: "nats-server", optional: false },
    ];
    prepare::ensure_tools(&tools, !cli.no_install)?;
    anyhow::ensure!(Path::new(PCAP).exists(), "{PCAP} is missing (package sip-tester)");
    let bin = match &cli.callmesh_bin {
        Some(p) => p.clone(),
        None => prepare::build_callmesh()?,
    };
    let out = cli.out.clone().unwrap_or_else(|| {
        let stamp = report::now_utc().replace([':', '-'], "").replace('T', "-");
        prepare::workspace_dir().join("target/loadtest").join(format!("chaos-{stamp}"))
    });
    std::fs::create_dir_all(&out)?;
    let ports = Ports::free();
    let started = report::now_utc();
    eprintln!(
        "chaos: {rate} calls/s for {secs} s, a death every few seconds from {WARM_UP_SECS} s; results in {}",
        out.display()
    );

    let mut cluster = Cluster::start(&bin, &ports, &out)?;
    let calls = u64::from(rate) * secs;
    let bound = secs * 3 + 60;
    let mut uas = sipp(ports.uas_sip, ports.uas_media, bound + 30);
    uas.current_dir(&out).arg("-sf").arg(scenarios_dir().join("chaos_uas.xml"));
    uas.args(["-rtp_echo", "-mb", "2048", "-trace_stat", "-stf", "uas_stat.csv"]);
    let mut uas = Proc::spawn("sipp-uas", uas, &out)?;
    anyhow::ensure!(
        testkit::ports::wait_until_bound(ports.uas_sip, false, Duration::from_secs(10)),
        "the far end SIPp did not start"
    );
    let mut capture = std::process::Command::new("tcpdump");
    capture.args(["-i", "lo", "-n", "-s", "1500", "-B", "262144", "-w"]).arg(out.join("chaos.pcap"));
    capture.arg(format!("udp port {} or udp dst port {}", ports.uac_sip.port(), ports.uac_media.port()));
    let mut capture = Proc::spawn("tcpdump", capture, &out)?;
    capture.wait_for_output("listening on", Duration::from_secs(10))?;

    let mut uac = sipp(ports.uac_sip, ports.uac_media, bound);
    uac.current_dir(&out).arg(ports.system_sip.to_string()).arg("-sf").arg(scenarios_dir().join("chaos_uac.xml"));
    uac.args(["-r", &rate.to_string(), "-rp", "1000", "-m", &calls.to_string(), "-l", &(rate * 40).to_string()]);
    uac.args(["-trace_stat", "-stf", "uac_stat.csv", "-default_behaviors", "all,-abortunexp"]);
    // A call that gets no answer it expects (a refusal, a BYE never answered) fails after 15 s.
    uac.args(["-recv_timeout", "15000"]);
    let t0 = Instant::now();
    let mut uac = Proc::spawn("sipp-uac", uac, &out)?;
    let mut deaths = Vec::new();
    let spacing = (secs - WARM_UP_SECS - 5) as f64 / VICTIMS.len() as f64;
    for (i, victim) in VICTIMS.into_iter().enumerate() {
        // The load generator's timeline: the next death at its planned second.
        let at = Duration::from_secs_f64(WARM_UP_SECS as f64 + spacing * i as f64);
        std::thread::sleep(at.saturating_sub(t0.elapsed()));
        let node = cluster.kill(victim);
        let at_secs = (t0.elapsed().as_secs_f64() * 10.0).round() / 10.0;
        eprintln!("{at_secs:>6.1} s  killed {node}");
        deaths.push(Death { victim, node, at_secs });
    }
    if uac.wait(Duration::from_secs(bound)).is_none() {
        eprintln!("caller SIPp still running after {bound} s: stopped");
        uac.stop(Duration::from_secs(3));
    }
    // The far end's last BYEs answered, then what is left on the live nodes (a call whose
    // caller's edge died before the ACK ends after Timer H, 32 s).
    let deadline = Instant::now() + Duration::from_secs(45);
    let left =
        |c: &Cluster| (c.sum("session", "callmesh_session_calls_active"), c.sum("media", "callmesh_media_sessions_active"));
    while left(&cluster) != (0, 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (left_calls, left_relays) = left(&cluster);
    let sessions = cluster.live("session");
    let taken = cluster.sum("session", "callmesh_session_takeover_seconds_count");
    let quantile = |q: f64| histogram_quantile(&sessions, "callmesh_session_takeover_seconds", q);
    let takeover = Takeover { calls: taken, p50_ms: quantile(0.5), p99_ms: quantile(0.99) };
    uas.stop(Duration::from_secs(5));
    // tcpdump writes what it captured with a lag under load, and drops the rest when told to
    // stop: stopped once its file has not grown for a second (at most 60 s).
    let pcap = out.join("chaos.pcap");
    let size = || std::fs::metadata(&pcap).map_or(0, |m| m.len());
    let (deadline, mut last, mut still) = (Instant::now() + Duration::from_secs(60), size(), Instant::now());
    while still.elapsed() < Duration::from_secs(1) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        if size() != last {
            (last, still) = (size(), Instant::now());
        }
    }
    capture.signal(libc::SIGINT);
    capture.wait(Duration::from_secs(10));
    let capture_dropped = dropped(&capture.output());
    cluster.stop();

    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    let caller = sippstat::parse_stats(&read("uac_stat.csv"), calls)
        .map_err(|e| anyhow::anyhow!("caller SIPp wrote no statistics ({e}):\n{}", crate::procs::tail(&uac.output())))?;
    let callee = sippstat::parse_stats(&read("uas_stat.csv"), 0).ok();
    let pcap = std::fs::read(&pcap)?;
    let audio =
        audio::figures(&audio::per_call(&pcap, ports.uac_sip.port(), ports.uac_media.port()).map_err(anyhow::Error::msg)?);
    let results = Results {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        started,
        host: report::Host::probe(false),
        rate,
        secs,
        deaths,
        caller,
        callee,
        audio,
        takeover,
        capture_dropped,
        left_calls,
        left_relays,
    };
    print(&results);
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    println!("wrote {}", out.join("results.json").display());
    Ok(())
}

fn print(r: &Results) {
    let failed_callee = r.callee.as_ref().map_or("-".into(), |c| c.failed.to_string());
    println!(
        "calls: {} made, {} completed, {} failed at the caller, {} at the callee",
        r.caller.outgoing, r.caller.successful, r.caller.failed, failed_callee
    );
    let a = &r.audio;
    println!(
        "audio: {} calls, {} silent, {} with a gap over 1 s; gap p50 {:.0} ms, p99 {:.0} ms, longest {:.0} ms{}",
        a.calls,
        a.silent,
        a.gaps_over_1s,
        a.gap_p50_ms,
        a.gap_p99_ms,
        a.longest_gap_ms,
        r.capture_dropped.filter(|d| *d > 0).map_or(String::new(), |d| format!(" (the capture dropped {d} packets)"))
    );
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0} ms"));
    println!(
        "takeover: {} calls, p50 {} p99 {} (bucket bounds, from the dead node's last heartbeat)",
        r.takeover.calls,
        ms(r.takeover.p50_ms),
        ms(r.takeover.p99_ms)
    );
    println!("left after the run: {} calls, {} relays", r.left_calls, r.left_relays);
}

/// tcpdump's "N packets dropped by kernel".
fn dropped(output: &str) -> Option<u64> {
    output.lines().find_map(|l| l.strip_suffix(" packets dropped by kernel")?.trim().parse().ok())
}
