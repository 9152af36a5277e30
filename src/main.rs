//! `callmesh`: one binary for every role of the cluster. `callmesh` (= `callmesh all`) is a
//! whole call center in one process; `callmesh edge|router|session|media --nats URL` runs one
//! role of a cluster. SIGTERM or Ctrl-C drains the node (no new calls; the ones in progress
//! finish, within `node.drain_timeout_secs`); a second one stops it at once. `callmesh drain`
//! asks the node running on this host (at `http.listen`) to drain and waits until it has: the
//! Helm chart's preStop hook. `callmesh api` serves the integrator's gRPC API (also part of
//! `all`); `callmesh ctl …` and `callmesh cdr export` are its command-line clients.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use callmesh::client;
use callmesh::config::Config;
use callmesh::roles::{self, Role};
use callmesh::telemetry::Telemetry;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

// Every SIP message and bus hop allocates; glibc's allocator was ~18% of the call path's
// CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What to run: a role, or a request to a running node.
#[derive(Debug, Clone, clap::Subcommand)]
enum Command {
    /// Every role in one process (the default).
    All,
    Edge,
    Router,
    Session,
    Media,
    /// The integrator's gRPC API (stateless: run as many as you like).
    Api,
    /// Ask the node at `http.listen` on this host to drain; wait until it has.
    Drain,
    /// Operators' commands over the API: agents, queues, calls, events.
    Ctl {
        #[command(subcommand)]
        command: client::ctl::Ctl,
        #[command(flatten)]
        api: client::ApiArgs,
    },
    /// Call detail records.
    Cdr {
        #[command(subcommand)]
        command: CdrCommand,
        #[command(flatten)]
        api: client::ApiArgs,
    },
}

#[derive(Debug, Clone, clap::Subcommand)]
enum CdrCommand {
    /// The records written since a time, one JSON object per line on stdout.
    Export {
        /// Unix ms, an RFC 3339 time or date, or a span back from now (`15m`, `2h`, `7d`).
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Parser)]
#[command(version, about = "Callmesh: SIP call-center and media cluster")]
struct Cli {
    /// The role to run (default `all`), or a request to a running node.
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML configuration file (every setting has a default).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// NATS URL(s), comma-separated (same as nats.url).
    #[arg(long, global = true)]
    nats: Option<String>,
    /// Node id (same as node.id).
    #[arg(long, global = true)]
    node_id: Option<String>,
    /// Overrides one setting: `section.key=value`, e.g. `--set sip.listen=0.0.0.0:5060`.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE", global = true)]
    set: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut sets = cli.set.clone();
    sets.extend(cli.nats.iter().map(|u| format!("nats.url={u}")));
    sets.extend(cli.node_id.iter().map(|n| format!("node.id={n}")));
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let config = Config::load(cli.config.as_deref(), &env, &sets).context("invalid configuration")?;
    let role = match cli.command.unwrap_or(Command::All) {
        Command::All => Role::All,
        Command::Edge => Role::Edge,
        Command::Router => Role::Router,
        Command::Session => Role::Session,
        Command::Media => Role::Media,
        Command::Api => Role::Api,
        Command::Drain => return callmesh::drain_client::request(&config).await,
        Command::Ctl { command, api } => return client::ctl::run(&command, &api, config.api.listen).await,
        Command::Cdr { command: CdrCommand::Export { since }, api } => {
            return client::cdr::export(&api, config.api.listen, since.as_deref()).await;
        }
    };
    let id = roles::node_id(role, &config)?;
    let telemetry = Telemetry::init(role.name(), id.as_str(), &env).context("OpenTelemetry export")?;
    for name in &config.skipped_variables {
        tracing::debug!(variable = %name, "not a CALLMESH_<SECTION>_<KEY> setting: ignored");
    }
    if config.users.is_empty() && matches!(role, Role::All | Role::Edge) {
        tracing::warn!("no [[users]] configured: anyone may register");
    }
    let http = config.http_listen;
    let node = Arc::new(roles::start(role, id, config).await?);
    let http = match http {
        Some(addr) => {
            Some(callmesh::http::serve(addr, node.clone()).await.with_context(|| format!("binding the HTTP endpoint {addr}"))?)
        }
        None => None,
    };
    print_ready(&node, http);
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = interrupt.recv() => {}
    }
    tracing::info!(timeout = ?node.config.drain_timeout, "draining");
    tokio::select! {
        left = node.drain_and_wait() => match left.as_slice() {
            [] => tracing::info!("drained"),
            left => tracing::warn!(?left, "drain timeout: stopping with work left"),
        },
        _ = term.recv() => tracing::warn!("second signal: stopping now"),
        _ = interrupt.recv() => tracing::warn!("second signal: stopping now"),
    }
    node.stop().await;
    telemetry.shutdown().await;
    Ok(())
}

fn print_ready(node: &roles::Node, http: Option<std::net::SocketAddr>) {
    let c = &node.config;
    println!("callmesh {:?} ready: node {}, bus {}", node.role, node.id, node.bus_name);
    if node.edge.is_some() {
        println!("  SIP   udp+tcp {} (advertised as {})", c.sip_listen, node.advertised.sip);
    }
    if node.media.is_some() {
        println!(
            "  RTP   {} ports {}-{} (advertised as {})",
            c.media_bind, c.rtp_ports.min, c.rtp_ports.max, node.advertised.media
        );
    }
    if node.router.is_some() {
        println!("  routes {}", c.routes.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", "));
    }
    if let Some(api) = &node.api {
        match &api.made_up_token {
            Some(token) => println!("  API   grpc {} (token {token}: set api.tokens to choose one)", api.addr),
            None => println!("  API   grpc {}", api.addr),
        }
    }
    // Last: tests wait for this line to know the banner is whole.
    if let Some(h) = http {
        let board = if node.api.is_some() { " /wallboard" } else { "" };
        println!("  HTTP  http://{h}/metrics /healthz /readyz{board}");
    }
}
