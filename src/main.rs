//! `callmesh`: one binary for every role of the cluster. `callmesh` (= `callmesh all`) is a
//! whole call center in one process; `callmesh edge|router|session|media --nats URL` runs one
//! role of a cluster.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use callmesh::config::Config;
use callmesh::roles::{self, Role};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

// Every SIP message and bus hop allocates; glibc's allocator was ~18% of the call path's
// CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Callmesh: SIP call-center and media cluster")]
struct Cli {
    /// The role to run.
    #[arg(value_enum, default_value = "all")]
    role: Role,
    /// TOML configuration file (every setting has a default).
    #[arg(long)]
    config: Option<PathBuf>,
    /// NATS URL(s), comma-separated (same as nats.url).
    #[arg(long)]
    nats: Option<String>,
    /// Node id (same as node.id).
    #[arg(long)]
    node_id: Option<String>,
    /// Overrides one setting: `section.key=value`, e.g. `--set sip.listen=0.0.0.0:5060`.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let mut sets = cli.set.clone();
    sets.extend(cli.nats.iter().map(|u| format!("nats.url={u}")));
    sets.extend(cli.node_id.iter().map(|n| format!("node.id={n}")));
    let env = std::env::vars().filter(|(k, _)| k.starts_with("CALLMESH_")).collect();
    let config = Config::load(cli.config.as_deref(), &env, &sets).context("invalid configuration")?;
    if config.users.is_empty() && cli.role != Role::Router {
        tracing::warn!("no [[users]] configured: anyone may register");
    }
    let http = config.http_listen;
    let node = Arc::new(roles::start(cli.role, config).await?);
    let http = match http {
        Some(addr) => {
            Some(callmesh::http::serve(addr, node.clone()).await.with_context(|| format!("binding the HTTP endpoint {addr}"))?)
        }
        None => None,
    };
    print_ready(&node, http);
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    if let Ok(node) = Arc::try_unwrap(node) {
        node.stop().await;
    }
    Ok(())
}

fn print_ready(node: &roles::Node, http: Option<std::net::SocketAddr>) {
    let c = &node.config;
    println!("callmesh {:?} ready: node {}, bus {}", node.role, node.id, node.bus_name);
    if node.edge.is_some() {
        println!("  SIP   udp+tcp {}", c.sip_listen);
    }
    if node.media.is_some() {
        println!("  RTP   {} ports {}-{} (advertised as {})", c.media_bind, c.rtp_ports.min, c.rtp_ports.max, c.media_advertise);
    }
    if node.router.is_some() {
        println!("  routes {}", c.routes.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", "));
    }
    if let Some(h) = http {
        println!("  HTTP  http://{h}/metrics");
    }
}
