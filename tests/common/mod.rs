//! Running Callmesh for end-to-end tests: the `callmesh` binary built by cargo, all roles in
//! one process or a cluster of processes with its own nats-server; its metrics read over
//! HTTP; waits bounded and named.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub mod browser;
pub mod faults;
pub mod raw_sip;
pub mod recordings;
pub mod tones;

use testkit::nats::NatsServer;
use testkit::ports::{free_addr, free_local_addr};
use testkit::process::Spawned;

pub const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/loadtest/scenarios");

pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(SCENARIOS).join(name)
}

/// A running Callmesh: its processes, SIP addresses (one per edge) and HTTP addresses.
pub struct Callmesh {
    pub processes: Vec<Spawned>,
    pub sip: Vec<SocketAddr>,
    pub http: Vec<SocketAddr>,
    _nats: Option<NatsServer>,
    dir: tempfile::TempDir,
    /// The configuration every process of `processes_on` shares (to start more).
    common: toml::Table,
}

/// An RTP port range nobody else in this test run uses (ranges of 200 ports).
pub fn rtp_range() -> (u16, u16) {
    let slot = free_local_addr().port() % 150;
    let min = 30_000 + slot * 200;
    (min, min + 199)
}

/// `extra` TOML with `defaults` (section, key, value) added where `extra` sets nothing.
fn merge(extra: &str, defaults: &[(&str, &str, String)]) -> toml::Table {
    let mut table: toml::Table = extra.parse().expect("test configuration is TOML");
    for (section, key, value) in defaults {
        let entry = table.entry(*section).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = entry {
            t.entry(*key).or_insert_with(|| toml::Value::String(value.clone()));
        }
    }
    table
}

fn spawn(dir: &tempfile::TempDir, name: &str, args: &[String], config: &toml::Table) -> (Spawned, SocketAddr) {
    spawn_with(dir, name, args, config, &[])
}

/// Starts `callmesh` with `args`, `config` (plus a free HTTP address) and `env`, and waits
/// until it is ready.
fn spawn_with(
    dir: &tempfile::TempDir,
    name: &str,
    args: &[String],
    config: &toml::Table,
    env: &[(&str, String)],
) -> (Spawned, SocketAddr) {
    let http = free_local_addr();
    let path = dir.path().join(format!("{name}.toml"));
    let mut config = config.clone();
    config.insert(
        "http".into(),
        toml::Value::Table(toml::Table::from_iter([("listen".to_owned(), toml::Value::String(http.to_string()))])),
    );
    // Processes that serve the API (`all`, `api`) each on a free port, unless the test chose one.
    if let toml::Value::Table(api) = config.entry("api").or_insert_with(|| toml::Value::Table(toml::Table::new())) {
        api.entry("listen").or_insert_with(|| toml::Value::String(free_local_addr().to_string()));
    }
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callmesh"));
    // TEST_CALLMESH_LOG=<filter> shows more of what the processes under test do.
    let log = std::env::var("TEST_CALLMESH_LOG").unwrap_or_else(|_| "warn".into());
    cmd.args(args).arg("--config").arg(&path).env("RUST_LOG", log);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let mut p = Spawned::spawn(name, cmd).unwrap();
    p.wait_for_line("ready:", Duration::from_secs(30)).unwrap();
    // The banner ends with the HTTP line: wait for it, so tests read the whole banner.
    p.wait_for_line("  HTTP  http://", Duration::from_secs(5)).unwrap();
    (p, http)
}

impl Callmesh {
    /// `callmesh all` with `extra` TOML (routes, users, settings) on free ports.
    pub fn all_in_one(extra: &str) -> Callmesh {
        Callmesh::all_in_one_with(extra, &[])
    }

    /// `callmesh all` with `extra` TOML and environment variables `env`.
    pub fn all_in_one_with(extra: &str, env: &[(&str, String)]) -> Callmesh {
        let dir = tempfile::tempdir().unwrap();
        let (min, max) = rtp_range();
        let config =
            merge(extra, &[("sip", "listen", free_local_addr().to_string()), ("media", "rtp_ports", format!("{min}-{max}"))]);
        let sip = config["sip"]["listen"].as_str().unwrap().parse().unwrap();
        let (p, http) = spawn_with(&dir, "callmesh-all", &["all".into()], &config, env);
        Callmesh { processes: vec![p], sip: vec![sip], http: vec![http], _nats: None, dir, common: toml::Table::new() }
    }

    /// One process per role on a real nats-server — edge, router, session, media, in that
    /// order — each with `env` and its role's name as node id.
    pub fn one_per_role(extra: &str, env: &[(&str, String)]) -> Callmesh {
        let dir = tempfile::tempdir().unwrap();
        let nats = NatsServer::start().unwrap();
        let (min, max) = rtp_range();
        let sip = free_local_addr();
        let common = merge(
            extra,
            &[
                ("nats", "url", nats.url.clone()),
                ("media", "rtp_ports", format!("{min}-{max}")),
                ("sip", "listen", sip.to_string()),
            ],
        );
        let (mut processes, mut http) = (Vec::new(), Vec::new());
        for role in ["edge", "router", "session", "media"] {
            let args = [role.to_owned(), "--node-id".into(), format!("{role}-0")];
            let (p, h) = spawn_with(&dir, role, &args, &common, env);
            processes.push(p);
            http.push(h);
        }
        Callmesh { processes, sip: vec![sip], http, _nats: Some(nats), dir, common: toml::Table::new() }
    }

    /// Processes of the given roles on a real nats-server, each `(role, node id, its own
    /// TOML)` over `extra`; the edge (if any) on a free address first in `sip`.
    pub fn processes(extra: &str, processes: &[(&str, &str, &str)]) -> Callmesh {
        let nats = NatsServer::start().unwrap();
        let mut cm = Callmesh::processes_on(&nats.url, extra, processes);
        cm._nats = Some(nats);
        cm
    }

    /// Processes as [`Callmesh::processes`] makes them, on the NATS servers at `urls`
    /// (comma-separated) that the caller runs.
    pub fn processes_on(urls: &str, extra: &str, processes: &[(&str, &str, &str)]) -> Callmesh {
        let dir = tempfile::tempdir().unwrap();
        let sip = free_local_addr();
        let common = merge(extra, &[("nats", "url", urls.to_owned()), ("sip", "listen", sip.to_string())]);
        let (mut spawned, mut http) = (Vec::new(), Vec::new());
        for (role, id, own) in processes {
            let mut config: toml::Table = own.parse().expect("a process's TOML");
            for (key, value) in &common {
                match (config.get_mut(key), value) {
                    (Some(toml::Value::Table(mine)), toml::Value::Table(shared)) => {
                        for (k, v) in shared {
                            mine.entry(k).or_insert_with(|| v.clone());
                        }
                    }
                    (None, v) => {
                        config.insert(key.clone(), v.clone());
                    }
                    _ => {}
                }
            }
            let (p, h) = spawn(&dir, id, &[(*role).into(), "--node-id".into(), (*id).into()], &config);
            spawned.push(p);
            http.push(h);
        }
        Callmesh { processes: spawned, sip: vec![sip], http, _nats: None, dir, common }
    }

    /// Starts one more process of `role` named `id`, as `processes_on` did the others
    /// (a node restarted, or added); its index is the last.
    pub fn start(&mut self, role: &str, id: &str) {
        let (p, h) = spawn(&self.dir, id, &[role.into(), "--node-id".into(), id.into()], &self.common);
        self.processes.push(p);
        self.http.push(h);
    }

    /// A cluster on a real nats-server: two edges (127.0.0.2 and 127.0.0.3), a router, two
    /// session nodes and a media node, each its own process.
    pub fn cluster(extra: &str) -> Callmesh {
        let dir = tempfile::tempdir().unwrap();
        let nats = NatsServer::start().unwrap();
        let (min, max) = rtp_range();
        let common = merge(extra, &[("nats", "url", nats.url.clone()), ("media", "rtp_ports", format!("{min}-{max}"))]);
        let mut processes = Vec::new();
        let (mut sip, mut http) = (Vec::new(), Vec::new());
        for (i, ip) in ["127.0.0.2", "127.0.0.3"].iter().enumerate() {
            let addr = free_addr(ip);
            let config = merge(&toml::to_string(&common).unwrap(), &[("sip", "listen", addr.to_string())]);
            let (p, h) = spawn(&dir, &format!("edge{i}"), &["edge".into(), "--node-id".into(), format!("edge-{i}")], &config);
            processes.push(p);
            sip.push(addr);
            http.push(h);
        }
        for (role, id) in [("router", "router-0"), ("session", "session-0"), ("session", "session-1"), ("media", "media-0")] {
            let (p, h) = spawn(&dir, id, &[role.into(), "--node-id".into(), id.into()], &common);
            processes.push(p);
            http.push(h);
        }
        Callmesh { processes, sip, http, _nats: Some(nats), dir, common: toml::Table::new() }
    }

    /// Every metric of every process, summed by name.
    pub fn metrics(&self) -> HashMap<String, u64> {
        let mut out = HashMap::new();
        for addr in &self.http {
            for (k, v) in scrape(*addr) {
                *out.entry(k).or_insert(0) += v;
            }
        }
        out
    }

    /// `name` as process `i` alone reports it.
    pub fn metric_of(&self, i: usize, name: &str) -> u64 {
        scrape(self.http[i]).get(&format!("callmesh_{name}")).copied().unwrap_or(0)
    }

    pub fn metric(&self, name: &str) -> u64 {
        self.metrics().get(&format!("callmesh_{name}")).copied().unwrap_or(0)
    }

    /// Waits until metric `name` satisfies `ok` (bounded; the panic names the wait).
    pub fn wait_metric(&self, name: &str, what: &str, ok: impl Fn(u64) -> bool) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.metric(name);
            if ok(v) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what} (callmesh_{name} = {v})\n{}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until no call is left anywhere (sessions and media released).
    pub fn wait_idle(&self) {
        self.wait_metric("session_calls_active", "every session to end", |v| v == 0);
        self.wait_metric("media_sessions_active", "every media session to be released", |v| v == 0);
    }

    /// The URL of the cluster's nats-server (none for `all` on the in-process bus).
    pub fn nats_url(&self) -> Option<&str> {
        self._nats.as_ref().map(|n| n.url.as_str())
    }

    pub fn output(&self) -> String {
        self.processes.iter().map(|p| p.output()).collect::<Vec<_>>().join("\n---\n")
    }

    /// A file in the test's scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `GET /metrics` on `addr`, as name → value.
pub fn scrape(addr: SocketAddr) -> HashMap<String, u64> {
    testkit::metrics::scrape(addr).expect("metrics endpoint")
}

/// `GET /readyz` on `addr`: the status code and the checks' report.
pub fn readyz(addr: SocketAddr) -> (u16, String) {
    testkit::metrics::request(addr, "GET", "/readyz").expect("readiness endpoint")
}

/// Waits until `GET /readyz` on `addr` answers `status` (bounded; the panic names the wait).
pub fn wait_readyz(addr: SocketAddr, status: u16, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = readyz(addr);
        if code == status {
            return body;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: /readyz still {code}\n{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
