//! The systems a run measures, started fresh for every step and stopped after it: Callmesh
//! in one process or as a cluster of processes on its own nats-server, Kamailio (with
//! rtpengine when media is anchored) from Debian's packages, or nothing at all (SIPp to SIPp
//! direct, the load generator's ceiling).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::procs::Proc;
use crate::scenario::{Plan, Ports, Scenario, user_name, user_password};

/// A system under test.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// `callmesh all`: every role in one process on the in-process bus.
    AllInOne,
    /// One process per role (edge, router, session, media) on a nats-server.
    Cluster,
    /// Kamailio as a stateful proxy, with rtpengine when the scenario anchors media.
    Kamailio,
    /// No system: SIPp's caller straight to SIPp's far end.
    SippDirect,
}

impl System {
    pub fn label(self, plan: &Plan) -> String {
        match self {
            System::AllInOne => "callmesh-all-in-one".into(),
            System::Cluster => "callmesh-cluster".into(),
            System::Kamailio if plan.anchors_media() => "kamailio+rtpengine".into(),
            System::Kamailio => "kamailio".into(),
            System::SippDirect => "sipp-direct".into(),
        }
    }

    pub fn is_callmesh(self) -> bool {
        matches!(self, System::AllInOne | System::Cluster)
    }
}

/// What starting a system needs.
pub struct Setup {
    pub callmesh_bin: PathBuf,
    pub ports: Ports,
}

/// A started system.
pub struct Running {
    /// Where callers send their requests.
    pub target: SocketAddr,
    pub procs: Vec<Proc>,
    metrics: Vec<SocketAddr>,
    rtpengine: bool,
}

impl Running {
    /// (name, process group) of every process of the system.
    pub fn groups(&self) -> Vec<(String, i32)> {
        self.procs.iter().map(|p| (p.name.clone(), p.pid())).collect()
    }

    /// RTP packets the system's relay forwarded so far, both directions.
    pub fn relayed_rtp(&self) -> Option<u64> {
        if self.rtpengine {
            let out =
                Command::new("rtpengine-ctl").args(["-ip", "127.0.0.1", "-port", "9900", "list", "totals"]).output().ok()?;
            return rtpengine_relayed(&String::from_utf8_lossy(&out.stdout));
        }
        let mut total = None;
        for addr in &self.metrics {
            let m = testkit::metrics::scrape(*addr).ok()?;
            if let Some(v) = m.get("callmesh_media_rtp_packets_relayed_total") {
                *total.get_or_insert(0) += v;
            }
        }
        total
    }

    /// The `q`-quantile (0-1) of histogram `name` summed over the system's processes: the
    /// upper bound of the bucket it falls in, in ms (`None`: no observation).
    pub fn histogram_quantile(&self, name: &str, q: f64) -> Option<f64> {
        histogram_quantile(&self.metrics, name, q)
    }

    /// Counter `name` summed over the system's processes.
    pub fn counter(&self, name: &str) -> u64 {
        self.metrics.iter().filter_map(|a| testkit::metrics::scrape(*a).ok()).filter_map(|m| m.get(name).copied()).sum()
    }

    /// Observations of histogram `name` over the system's processes.
    pub fn histogram_count(&self, name: &str) -> u64 {
        let key = format!("{name}_count");
        self.metrics.iter().filter_map(|a| testkit::metrics::scrape(*a).ok()).filter_map(|m| m.get(&key).copied()).sum()
    }

    /// Stops every process, the one started last first.
    pub fn stop(mut self) {
        while let Some(mut p) = self.procs.pop() {
            p.stop(Duration::from_secs(5));
        }
    }
}

/// The `q`-quantile (0-1) of histogram `name` summed over the processes whose metrics are
/// at `metrics`: the upper bound of the bucket it falls in, in ms (`None`: no observation).
pub fn histogram_quantile(metrics: &[SocketAddr], name: &str, q: f64) -> Option<f64> {
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    for addr in metrics {
        let Ok(m) = testkit::metrics::scrape(*addr) else { continue };
        for (key, count) in m {
            let Some(le) = key.strip_prefix(&format!("{name}_bucket{{le=\"")).and_then(|r| r.strip_suffix("\"}")) else {
                continue;
            };
            let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            match buckets.iter_mut().find(|(b, _)| *b == bound) {
                Some((_, c)) => *c += count,
                None => buckets.push((bound, count)),
            }
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    let want = (q * total as f64).ceil() as u64;
    let (bound, _) = buckets.iter().find(|(_, c)| *c >= want.max(1))?;
    (total > 0).then_some(bound * 1000.0)
}

/// `Total relayed packets (userspace)` from `rtpengine-ctl list totals`.
fn rtpengine_relayed(totals: &str) -> Option<u64> {
    totals
        .lines()
        .find(|l| l.contains("Total relayed packets (userspace)"))
        .and_then(|l| l.rsplit(':').next()?.trim().parse().ok())
}

/// Starts `system` for `plan`, ready to take calls; its logs go to `dir`.
pub fn start(system: System, plan: &Plan, setup: &Setup, dir: &Path) -> anyhow::Result<Running> {
    let ports = &setup.ports;
    match system {
        System::SippDirect => Ok(Running { target: ports.uas_sip, procs: vec![], metrics: vec![], rtpengine: false }),
        System::AllInOne => {
            let config = write_config(plan, ports, dir)?;
            let http = SocketAddr::from(([127, 0, 0, 1], ports.http[0]));
            let p = callmesh(setup, "callmesh-all", &["all"], &config, http, dir)?;
            Ok(Running { target: ports.system_sip, procs: vec![p], metrics: vec![http], rtpengine: false })
        }
        System::Cluster => {
            let config = write_config(plan, ports, dir)?;
            let nats_port = testkit::ports::free_local_addr().port();
            let mut nats = Command::new("nats-server");
            nats.args(["-a", "127.0.0.1", "-p", &nats_port.to_string(), "-js", "-sd"]).arg(dir.join("jetstream"));
            let mut nats = Proc::spawn("nats-server", nats, dir)?;
            nats.wait_for_output("Server is ready", Duration::from_secs(20))?;
            let url = format!("nats://127.0.0.1:{nats_port}");
            let mut procs = vec![nats];
            let mut metrics = Vec::new();
            for (i, role) in ["media", "session", "router", "edge"].into_iter().enumerate() {
                let http = SocketAddr::from(([127, 0, 0, 1], ports.http[i]));
                let id = format!("{role}-0");
                procs.push(callmesh(
                    setup,
                    &format!("callmesh-{role}"),
                    &[role, "--nats", &url, "--node-id", &id],
                    &config,
                    http,
                    dir,
                )?);
                metrics.push(http);
            }
            Ok(Running { target: ports.system_sip, procs, metrics, rtpengine: false })
        }
        System::Kamailio => {
            anyhow::ensure!(
                ports.system_sip.port() == 5060 && ports.uas_sip.port() == 5070,
                "Kamailio's script listens on 5060 and forwards to 5070"
            );
            let mut procs = Vec::new();
            let script = if plan.anchors_media() {
                let mut rtpe = Command::new("rtpengine");
                rtpe.args(["--config-file=none", "--foreground", "--log-stderr", "--log-level=4", "--table=-1"]);
                rtpe.args(["--interface=127.0.0.1", "--listen-ng=127.0.0.1:2223", "--listen-cli=127.0.0.1:9900"]);
                rtpe.args(["--port-min=30000", "--port-max=40000", "--delete-delay=0", "--timeout=60"]);
                procs.push(Proc::spawn("rtpengine", rtpe, dir)?);
                wait_bound("rtpengine", "127.0.0.1:2223".parse()?, &procs)?;
                "kamailio-rtpengine.cfg"
            } else {
                "kamailio-proxy.cfg"
            };
            let mut kam = Command::new("kamailio");
            kam.arg("-f").arg(baselines_dir().join(script)).args(["-DD", "-E", "-m", "2048", "-M", "16", "-A", "WORKERS=4"]);
            procs.push(Proc::spawn("kamailio", kam, dir)?);
            wait_bound("kamailio", ports.system_sip, &procs)?;
            let rtpengine = plan.anchors_media();
            Ok(Running { target: ports.system_sip, procs, metrics: vec![], rtpengine })
        }
    }
}

fn wait_bound(name: &str, addr: SocketAddr, procs: &[Proc]) -> anyhow::Result<()> {
    if !testkit::ports::wait_until_bound(addr, false, Duration::from_secs(20)) {
        let log = procs.last().map(|p| crate::procs::tail(&p.output())).unwrap_or_default();
        anyhow::bail!("{name} did not bind {addr} within 20 s:\n{log}");
    }
    Ok(())
}

/// Starts one Callmesh process and waits until it says it is ready.
fn callmesh(setup: &Setup, name: &str, args: &[&str], config: &Path, http: SocketAddr, dir: &Path) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(&setup.callmesh_bin);
    // No API: the load test measures calls (and the host's 9070 may be taken).
    cmd.args(args).arg("--config").arg(config).arg("--set").arg(format!("http.listen={http}")).args(["--set", "api.listen="]);
    cmd.env("RUST_LOG", "warn");
    let mut p = Proc::spawn(name, cmd, dir)?;
    p.wait_for_output("ready:", Duration::from_secs(30))?;
    Ok(p)
}

/// The Callmesh configuration of a run: SIP and RTP on loopback, every call routed to the
/// far end, and the storm's users when registering.
fn write_config(plan: &Plan, ports: &Ports, dir: &Path) -> anyhow::Result<PathBuf> {
    // Every call to the far end; in the queue scenario into one queue whose agents are the
    // far end, each at its own user there.
    let target = match plan.scenario {
        Scenario::Queue => "queue:load".to_owned(),
        _ => format!("sip:${{user}}@{}", ports.uas_sip),
    };
    let mut toml = format!(
        "[sip]\nlisten = \"{}\"\n\n[media]\nrtp_ports = \"{}-{}\"\n\n[[routes]]\nuser = \".*\"\ntarget = \"{target}\"\n",
        ports.system_sip, ports.rtp_min, ports.rtp_max
    );
    if plan.scenario == Scenario::Queue {
        toml.push_str("\n[[queues]]\nname = \"load\"\nring_secs = 10\n");
        for i in 0..plan.agents {
            toml.push_str(&format!(
                "\n[[agents]]\nuser = \"agent{i}\"\nqueues = [\"load\"]\ncontact = \"sip:agent{i}@{}\"\n",
                ports.uas_sip
            ));
        }
    }
    if plan.scenario == Scenario::Register {
        for i in 0..plan.users {
            toml.push_str(&format!("\n[[users]]\nusername = \"{}\"\npassword = \"{}\"\n", user_name(i), user_password(i)));
        }
    }
    let path = dir.join("callmesh.toml");
    std::fs::write(&path, toml)?;
    Ok(path)
}

/// Kamailio scripts of the baseline.
fn baselines_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("baselines")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtpengine_totals_give_the_userspace_relay_count() {
        let totals = "Total managed sessions                           :4\n Total relayed packets (userspace)                :1888\n Total relayed packet errors (userspace)          :0\n";
        assert_eq!(rtpengine_relayed(totals), Some(1888));
        assert_eq!(rtpengine_relayed("garbage"), None);
    }

    #[test]
    fn the_callmesh_configuration_routes_to_the_far_end_and_lists_the_storm_users() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Plan { scenario: Scenario::Register, step_secs: 1, hold_ms: 0, plays: 0, users: 3, agents: 1 };
        let text = std::fs::read_to_string(write_config(&plan, &Ports::standard(), dir.path()).unwrap()).unwrap();
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(table["routes"][0]["target"].as_str(), Some("sip:${user}@127.0.0.1:5070"));
        assert_eq!(table["users"].as_array().unwrap().len(), 3);
        assert_eq!(table["media"]["rtp_ports"].as_str(), Some("20000-59999"));
    }
}
