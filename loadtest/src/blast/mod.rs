//! `loadtest rtp`: the RTP blaster. SIPp's pcap playback tops out near 600 calls with RTP
//! here, so this sets up N calls through a relay — Callmesh (`callmesh all`, calls made by
//! SIP) or rtpengine (userspace, driven by its ng protocol as Kamailio would) — then sends a
//! 20 ms packet each way on every call and measures, over a window after a warm-up: packets
//! the relay delivered per second, the relay's CPU (its process group, from `/proc`), and so
//! packets per second per core; loss and jitter at the receivers. The relay runs on core 0,
//! the blaster on the others, so neither preempts the other and the relay's CPU is its own
//! (on loopback, delivering a packet to its receiver is part of sending it: both relays pay
//! that alike). With `--transcode` the
//! callee side speaks Opus and the caller G.711 (Callmesh transcodes each packet); with
//! `--record` Callmesh records every call.
//!
//! `cargo run --release -p loadtest -- rtp --relay both --calls 500 --secs 20`

mod ng;
mod rtp;
mod sip;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::procs::Proc;
use crate::usage;
use ng::{Ng, Value};
use rtp::{Stream, Tally};

/// Which relays to measure.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relay {
    Callmesh,
    Rtpengine,
    Both,
}

#[derive(clap::Parser, Debug)]
#[command(name = "loadtest rtp", about = "Blasts RTP through Callmesh's media relay and rtpengine, side by side")]
pub struct Args {
    #[arg(long, value_enum, default_value = "both")]
    pub relay: Relay,
    /// Simultaneous calls, each with a 20 ms packet each way.
    #[arg(long, default_value_t = 500)]
    pub calls: usize,
    /// Seconds measured (after 3 s of warm-up).
    #[arg(long, default_value_t = 20)]
    pub secs: u64,
    /// The callee side speaks Opus only, the caller G.711: every packet is transcoded.
    #[arg(long)]
    pub transcode: bool,
    /// Callmesh records every call (stereo WAV).
    #[arg(long)]
    pub record: bool,
    /// A prebuilt callmesh binary (default: `cargo build --release` it).
    #[arg(long)]
    pub callmesh_bin: Option<PathBuf>,
    /// Where logs and `results.json` go (default: target/loadtest/rtp-<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// One relay's figures.
#[derive(Debug, serde::Serialize)]
struct Figures {
    relay: String,
    calls: usize,
    transcode: bool,
    record: bool,
    secs: u64,
    delivered_pps: f64,
    relay_cpu_cores: f64,
    pps_per_core: f64,
    calls_per_core: f64,
    loss_percent: f64,
    mean_jitter_ms: f64,
}

/// The core the relay runs on; the blaster takes the others (with one core, both share it).
const RELAY_CORE: usize = 0;

/// Runs the current thread (and the threads it starts) on every core but the relay's.
fn leave_relay_core() {
    let cores = usage::cores();
    if cores < 2 {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        (0..cores).filter(|c| *c != RELAY_CORE).for_each(|c| libc::CPU_SET(c, &mut set));
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// `program` run on the relay's core only (`taskset`, util-linux).
fn on_relay_core(program: &Path) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg(RELAY_CORE.to_string()).arg(program);
    cmd
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    leave_relay_core();
    let out = args.out.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        crate::prepare::workspace_dir().join("target/loadtest").join(format!("rtp-{stamp}"))
    });
    std::fs::create_dir_all(&out)?;
    let mut results = Vec::new();
    if args.relay != Relay::Rtpengine {
        let bin = match &args.callmesh_bin {
            Some(bin) => bin.clone(),
            None => crate::prepare::build_callmesh()?,
        };
        results.push(measure(args, &out, |dir, streams| callmesh(args, &bin, dir, streams))?);
    }
    if args.relay != Relay::Callmesh {
        anyhow::ensure!(!args.record, "rtpengine is not measured recording");
        let tool = crate::prepare::Tool { program: "rtpengine", package: "rtpengine-daemon", optional: false };
        crate::prepare::ensure_tools(&[tool], true)?;
        results.push(measure(args, &out, |dir, streams| rtpengine(args, dir, streams))?);
    }
    for f in &results {
        println!(
            "{:<9} {} calls{}{}: {:.0} packets/s delivered, relay CPU {:.2} cores → {:.0} packets/s per core, \
             {:.0} calls per core; loss {:.3} %, jitter {:.2} ms",
            f.relay,
            f.calls,
            if f.transcode { " transcoded" } else { "" },
            if f.record { " recorded" } else { "" },
            f.delivered_pps,
            f.relay_cpu_cores,
            f.pps_per_core,
            f.calls_per_core,
            f.loss_percent,
            f.mean_jitter_ms
        );
    }
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    eprintln!("results in {}", out.join("results.json").display());
    Ok(())
}

/// The streams of every call once set up: what A sends, what B sends.
struct Setup {
    procs: Vec<Proc>,
    streams: [Vec<Stream>; 2],
    name: &'static str,
}

/// Sets up the calls with `start`, blasts, and measures.
fn measure(
    args: &Args,
    out: &Path,
    start: impl FnOnce(&Path, [&[Arc<UdpSocket>]; 2]) -> anyhow::Result<Setup>,
) -> anyhow::Result<Figures> {
    let sockets = [rtp::sockets()?, rtp::sockets()?];
    let setup = start(out, [&sockets[0], &sockets[1]])?;
    let (counting, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let transcode = args.transcode;
    let clock = move |side: usize| if transcode && side == 1 { 48_000 } else { 8000 };
    let receivers: Vec<_> = (0..2)
        .flat_map(|side| sockets[side].iter().map(move |s| (side, s.clone())))
        .map(|(side, s)| {
            let (counting, stop) = (counting.clone(), stop.clone());
            std::thread::spawn(move || rtp::receive(s, clock(side), counting, stop))
        })
        .collect();
    let sender = {
        let (sockets, streams, stop) = (sockets.clone(), setup.streams.clone(), stop.clone());
        std::thread::spawn(move || rtp::send(sockets, streams, stop))
    };
    std::thread::sleep(Duration::from_secs(3));
    let pgids: Vec<i32> = setup.procs.iter().map(Proc::pid).collect();
    let ticks = || pgids.iter().map(|g| usage::group_ticks(*g)).sum::<u64>();
    let before = ticks();
    counting.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(args.secs));
    counting.store(false, Ordering::Relaxed);
    let cpu_secs = ticks().saturating_sub(before) as f64 / usage::ticks_per_sec();
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    let mut tally = Tally::default();
    for r in receivers {
        tally.add(r.join().map_err(|_| anyhow::anyhow!("a receiver panicked"))?);
    }
    drop(setup.procs);
    let secs = args.secs as f64;
    let cores = cpu_secs / secs;
    let pps = tally.packets as f64 / secs;
    Ok(Figures {
        relay: setup.name.into(),
        calls: args.calls,
        transcode: args.transcode,
        record: args.record,
        secs: args.secs,
        delivered_pps: pps,
        relay_cpu_cores: cores,
        pps_per_core: pps / cores.max(1e-6),
        calls_per_core: args.calls as f64 / cores.max(1e-6),
        loss_percent: tally.loss_percent(),
        mean_jitter_ms: tally.mean_jitter_ms(),
    })
}

fn addr(s: &UdpSocket) -> SocketAddr {
    s.local_addr().expect("a bound socket has an address")
}

/// `callmesh all` with every call routed back to this process, calls made over SIP.
fn callmesh(args: &Args, bin: &Path, dir: &Path, sockets: [&[Arc<UdpSocket>]; 2]) -> anyhow::Result<Setup> {
    let uas = UdpSocket::bind("127.0.0.1:0")?;
    let sip = testkit::ports::free_local_addr();
    let http = testkit::ports::free_local_addr();
    let mut toml = format!(
        "[sip]\nlisten = \"{sip}\"\n[media]\nrtp_ports = \"40000-59999\"\nrecordings_dir = \"{}\"\n\
         [[routes]]\nuser = \".*\"\ntarget = \"sip:${{user}}@{}\"\n",
        dir.join("recordings").display(),
        addr(&uas)
    );
    if args.record {
        toml.push_str("record = true\n");
    }
    let config = dir.join("callmesh-rtp.toml");
    std::fs::write(&config, toml)?;
    let mut cmd = on_relay_core(bin);
    // No API: the blaster measures the relay (and several runs may share the host).
    cmd.args(["all", "--config"]).arg(&config).arg("--set").arg(format!("http.listen={http}")).args(["--set", "api.listen="]);
    cmd.env("RUST_LOG", "warn");
    let mut p = Proc::spawn("callmesh-rtp", cmd, dir)?;
    p.wait_for_output("ready:", Duration::from_secs(30))?;
    let agents = sip::Agents::new(sip, uas)?;
    let (g711, opus) = (Arc::new(vec![0xffu8; 160]), Arc::new(opus_frame()?));
    let mut streams = [Vec::new(), Vec::new()];
    for i in 0..args.calls {
        let (a, b) = (addr(&sockets[0][i % rtp::SOCKETS]), addr(&sockets[1][i % rtp::SOCKETS]));
        let call = agents.call(i, a, b, if args.transcode { "opus" } else { "PCMU" })?;
        streams[0].push(Stream { to: call.a_to, payload_type: 0, payload: g711.clone(), ts_step: 160 });
        let b_stream = if args.transcode {
            Stream { to: call.b_to, payload_type: call.b_payload_type, payload: opus.clone(), ts_step: 960 }
        } else {
            Stream { to: call.b_to, payload_type: 0, payload: g711.clone(), ts_step: 160 }
        };
        streams[1].push(b_stream);
    }
    Ok(Setup { procs: vec![p], streams, name: "callmesh" })
}

/// 20 ms of a 440 Hz tone as one Opus packet (8 kHz, as a G.711 gateway's would be).
fn opus_frame() -> anyhow::Result<Vec<u8>> {
    use media::codec::{AudioCodec, Opus};
    let mut opus = Opus::new(8000)?;
    let mut out = Vec::new();
    opus.encode(&media::audio::tone::sine(440.0, 8000, 160, 6000.0), &mut out)?;
    Ok(out)
}

/// rtpengine (userspace) with each call offered and answered over ng.
fn rtpengine(args: &Args, dir: &Path, sockets: [&[Arc<UdpSocket>]; 2]) -> anyhow::Result<Setup> {
    let control = testkit::ports::free_local_addr();
    let mut cmd = on_relay_core(Path::new("rtpengine"));
    cmd.args(["--config-file=none", "--foreground", "--log-stderr", "--log-level=4", "--table=-1"]);
    cmd.args(["--interface=127.0.0.1", "--port-min=40000", "--port-max=59999", "--timeout=60"]);
    cmd.arg(format!("--listen-ng={control}"));
    let p = Proc::spawn("rtpengine", cmd, dir)?;
    anyhow::ensure!(testkit::ports::wait_until_bound(control, false, Duration::from_secs(20)), "rtpengine did not start");
    let mut ng = Ng::new(control)?;
    let (g711, opus) = (Arc::new(vec![0xffu8; 160]), Arc::new(opus_frame()?));
    let mut streams = [Vec::new(), Vec::new()];
    for i in 0..args.calls {
        let (a, b) = (addr(&sockets[0][i % rtp::SOCKETS]), addr(&sockets[1][i % rtp::SOCKETS]));
        let (call_id, replace) =
            (format!("blast-{i}"), || Value::List(vec![Value::Str("origin"), Value::Str("session-connection")]));
        let a_sdp = sip::sdp(a, "0", "a=rtpmap:0 PCMU/8000\r\n");
        let mut offer = vec![
            ("command", Value::Str("offer")),
            ("call-id", Value::Str(&call_id)),
            ("from-tag", Value::Str("a")),
            ("sdp", Value::Str(&a_sdp)),
            ("replace", replace()),
        ];
        if args.transcode {
            // As Kamailio's `rtpengine_offer("codec-transcode=opus")`: the callee is offered Opus too.
            offer.push(("codec", Value::Dict(vec![("transcode", Value::List(vec![Value::Str("opus/48000/2")]))])));
        }
        let to_b = ng.command(offer)?;
        let (b_pt, b_sdp) = if args.transcode {
            let (pt, rtpmap) = sip::pick(&to_b, "opus").context("rtpengine offered the callee no Opus")?;
            (pt, sip::sdp(b, &pt.to_string(), &rtpmap))
        } else {
            (0, sip::sdp(b, "0", "a=rtpmap:0 PCMU/8000\r\n"))
        };
        let to_a = ng.command(vec![
            ("command", Value::Str("answer")),
            ("call-id", Value::Str(&call_id)),
            ("from-tag", Value::Str("a")),
            ("to-tag", Value::Str("b")),
            ("sdp", Value::Str(&b_sdp)),
            ("replace", replace()),
        ])?;
        streams[0].push(Stream { to: sip::media_addr(&to_a)?, payload_type: 0, payload: g711.clone(), ts_step: 160 });
        let b_stream = if args.transcode {
            Stream { to: sip::media_addr(&to_b)?, payload_type: b_pt, payload: opus.clone(), ts_step: 960 }
        } else {
            Stream { to: sip::media_addr(&to_b)?, payload_type: 0, payload: g711.clone(), ts_step: 160 }
        };
        streams[1].push(b_stream);
    }
    Ok(Setup { procs: vec![p], streams, name: "rtpengine" })
}
