//! The cluster the chaos scenario kills nodes of: three nats-servers in one JetStream
//! cluster, and two Callmesh processes of each role — two edges sharing one SIP address
//! (`sip.reuse_port`), two routers, two session nodes, two media nodes — with buckets
//! replicated three times and every call routed to the far end SIPp.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::procs::Proc;
use crate::scenario::Ports;

/// The roles, in start order (edges last: calls come once everything else is up).
const ROLES: [&str; 4] = ["media", "session", "router", "edge"];

/// One Callmesh process.
pub struct Node {
    pub id: String,
    pub role: &'static str,
    pub metrics: SocketAddr,
    pub proc: Proc,
    pub dead: bool,
}

/// The running cluster.
pub struct Cluster {
    pub nats: Vec<Option<Proc>>,
    pub nodes: Vec<Node>,
}

/// What the scenario kills, in turn.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Victim {
    /// The session node running the most calls.
    SessionNode,
    /// The media node relaying the most calls.
    MediaNode,
    /// The edge that took the most calls.
    Edge,
    /// The first NATS server (every node was given all three).
    NatsServer,
    Router,
}

pub const VICTIMS: [Victim; 5] = [Victim::SessionNode, Victim::MediaNode, Victim::Edge, Victim::NatsServer, Victim::Router];

impl Cluster {
    pub fn start(bin: &Path, ports: &Ports, dir: &Path) -> anyhow::Result<Cluster> {
        let client: Vec<u16> = (0..3).map(|_| testkit::ports::free_local_addr().port()).collect();
        let routes: Vec<u16> = (0..3).map(|_| testkit::ports::free_local_addr().port()).collect();
        let mut nats = Vec::new();
        for i in 0..3 {
            let others: Vec<u16> = (0..3).filter(|j| *j != i).map(|j| routes[j]).collect();
            let store = dir.join(format!("jetstream-{i}"));
            let cmd = testkit::nats::command(&format!("n{i}"), client[i], &store, Some((routes[i], &others)));
            let mut p = Proc::spawn(&format!("nats-server-{i}"), cmd, dir)?;
            p.wait_for_output("Server is ready", Duration::from_secs(20))?;
            nats.push(Some(p));
        }
        let urls: Vec<String> = client.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
        let config = dir.join("callmesh.toml");
        std::fs::write(
            &config,
            format!(
                "[nats]\nurl = \"{}\"\nreplicas = 3\n\n[sip]\nlisten = \"{}\"\nreuse_port = true\n\n\
                 [[routes]]\nuser = \".*\"\ntarget = \"sip:${{user}}@{}\"\n",
                urls.join(","),
                ports.system_sip,
                ports.uas_sip
            ),
        )?;
        let mut nodes = Vec::new();
        for role in ROLES {
            for i in 0..2u16 {
                let id = format!("{role}-{i}");
                let metrics = testkit::ports::free_local_addr();
                let mut cmd = Command::new(bin);
                cmd.args([role, "--node-id", &id, "--config"]).arg(&config);
                // LOADTEST_CALLMESH_LOG=<filter> logs more of what the nodes do.
                let log = std::env::var("LOADTEST_CALLMESH_LOG").unwrap_or_else(|_| "warn".into());
                cmd.arg("--set").arg(format!("http.listen={metrics}")).env("RUST_LOG", log);
                if role == "media" {
                    // Ten thousand ports each, below the ephemeral range.
                    let low = 10_000 + i * 10_000;
                    cmd.arg("--set").arg(format!("media.rtp_ports={low}-{}", low + 9_999));
                }
                let mut proc = Proc::spawn(&id, cmd, dir)?;
                proc.wait_for_output("ready:", Duration::from_secs(30))?;
                nodes.push(Node { id, role, metrics, proc, dead: false });
            }
        }
        Ok(Cluster { nats, nodes })
    }

    /// Kills `victim` with SIGKILL: what died.
    pub fn kill(&mut self, victim: Victim) -> String {
        let (role, metric) = match victim {
            Victim::NatsServer => {
                if let Some(mut p) = self.nats[0].take() {
                    p.signal(libc::SIGKILL);
                    p.wait(Duration::from_secs(5));
                }
                return "nats-server-0".into();
            }
            Victim::SessionNode => ("session", "callmesh_session_calls_active"),
            Victim::MediaNode => ("media", "callmesh_media_sessions_active"),
            Victim::Edge => ("edge", "callmesh_edge_calls_total"),
            Victim::Router => ("router", "callmesh_router_calls_routed_total"),
        };
        let load = |n: &Node| testkit::metrics::scrape(n.metrics).ok().and_then(|m| m.get(metric).copied()).unwrap_or(0);
        let Some(node) = self.nodes.iter_mut().filter(|n| n.role == role && !n.dead).max_by_key(|n| load(n)) else {
            return format!("no {role} left");
        };
        node.proc.signal(libc::SIGKILL);
        node.proc.wait(Duration::from_secs(5));
        node.dead = true;
        node.id.clone()
    }

    /// The metrics addresses of the live nodes of `role`.
    pub fn live(&self, role: &str) -> Vec<SocketAddr> {
        self.nodes.iter().filter(|n| n.role == role && !n.dead).map(|n| n.metrics).collect()
    }

    /// Counter or gauge `name` summed over the live nodes of `role`.
    pub fn sum(&self, role: &str, name: &str) -> u64 {
        self.live(role).iter().filter_map(|a| testkit::metrics::scrape(*a).ok()?.get(name).copied()).sum()
    }

    /// Stops everything, Callmesh first.
    pub fn stop(mut self) {
        while let Some(mut n) = self.nodes.pop() {
            n.proc.stop(Duration::from_secs(5));
        }
        for p in self.nats.iter_mut().flatten() {
            p.stop(Duration::from_secs(5));
        }
    }
}
