//! NATS servers for tests: one JetStream server, or a 3-server JetStream cluster, on free
//! ports, each with its own store directory, stopped when dropped.

use std::process::Command;
use std::time::Duration;

use crate::ports::free_local_addr;
use crate::process::Spawned;

/// The nats-server binary: `CALLMESH_NATS_SERVER` when set (a newer server than the
/// system's, to run the failure tests against), else `nats-server` on the path.
pub fn binary() -> String {
    std::env::var("CALLMESH_NATS_SERVER").unwrap_or_else(|_| "nats-server".into())
}

/// The command line of a JetStream `nats-server` named `name` on 127.0.0.1:`port`, its
/// store in `store`; with `cluster`, its cluster port and the other servers' cluster ports.
pub fn command(name: &str, port: u16, store: &std::path::Path, cluster: Option<(u16, &[u16])>) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-n", name]);
    cmd.arg("-sd").arg(store);
    if let Some((cluster_port, routes)) = cluster {
        let routes: Vec<String> = routes.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
        cmd.args(["--cluster_name", "callmesh-test", "--cluster", &format!("nats://127.0.0.1:{cluster_port}")]);
        cmd.args(["--routes", &routes.join(",")]);
    }
    cmd
}

/// A `nats-server` with JetStream.
pub struct NatsServer {
    pub url: String,
    pub name: String,
    process: Spawned,
    _store: tempfile::TempDir,
}

impl NatsServer {
    /// A single server.
    pub fn start() -> Result<NatsServer, String> {
        NatsServer::spawn("n0", free_local_addr().port(), None)
    }

    fn spawn(name: &str, port: u16, cluster: Option<(u16, &[u16])>) -> Result<NatsServer, String> {
        let store = tempfile::tempdir().map_err(|e| e.to_string())?;
        let cmd = command(name, port, store.path(), cluster);
        let mut process = Spawned::spawn(&format!("nats-server {name}"), cmd)?;
        process.wait_for_line("Server is ready", Duration::from_secs(20))?;
        Ok(NatsServer { url: format!("nats://127.0.0.1:{port}"), name: name.to_owned(), process, _store: store })
    }

    /// Stops the server abruptly (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        self.process.kill();
    }

    pub fn output(&self) -> String {
        self.process.output()
    }
}

/// A JetStream cluster of `n` servers.
pub struct NatsCluster {
    servers: Vec<Option<NatsServer>>,
    urls: Vec<String>,
}

impl NatsCluster {
    pub fn start(n: usize) -> Result<NatsCluster, String> {
        let client_ports: Vec<u16> = (0..n).map(|_| free_local_addr().port()).collect();
        let cluster_ports: Vec<u16> = (0..n).map(|_| free_local_addr().port()).collect();
        let mut servers = Vec::new();
        for i in 0..n {
            let routes: Vec<u16> = cluster_ports.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| *p).collect();
            servers.push(Some(NatsServer::spawn(&format!("n{i}"), client_ports[i], Some((cluster_ports[i], &routes)))?));
        }
        let urls = servers.iter().flatten().map(|s| s.url.clone()).collect();
        Ok(NatsCluster { servers, urls })
    }

    /// Every server's URL, comma-separated (what a client is given).
    pub fn urls(&self) -> String {
        self.urls.join(",")
    }

    pub fn url(&self, i: usize) -> &str {
        &self.urls[i]
    }

    /// What server `i` logged (empty once killed).
    pub fn output(&self, i: usize) -> String {
        self.servers[i].as_ref().map(|s| s.output()).unwrap_or_default()
    }

    /// Kills server `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(s) = self.servers[i].take() {
            s.kill();
        }
    }
}
