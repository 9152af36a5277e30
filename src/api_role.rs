//! The API role: the gRPC API (the `callmesh-api` crate) on `api.listen`, over this node's
//! bus, registry and journals, with the queues and agents of its configuration. Without
//! tokens configured (and not open), a token is made up and printed at start.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use cluster::journal::Journal;
use cluster::registry::Registry;

use crate::config::api::made_up_token;
use crate::roles::Node;

/// The API a node serves.
pub struct RunningApi {
    pub addr: SocketAddr,
    /// The token made up at start, when none was configured.
    pub made_up_token: Option<String>,
    /// The wallboard's view (`/wallboard` on the HTTP port).
    pub board: api::agents::AgentsApi,
}

/// Serves the API for `node`.
pub(crate) async fn start(
    listen: SocketAddr,
    node: &Node,
    registry: Arc<dyn Registry>,
    journal: Arc<dyn Journal>,
) -> anyhow::Result<RunningApi> {
    let settings = &node.config.api;
    let made_up = (settings.tokens.is_empty() && !settings.open).then(made_up_token);
    let config = api::ApiConfig {
        listen,
        tokens: settings.tokens.iter().cloned().chain(made_up.clone()).collect(),
        open: settings.open,
        node_id: node.id.to_string(),
        queues: node.config.acd.queues.clone(),
        agents: node.config.acd.agents.iter().map(|(a, _)| a.clone()).collect(),
        routes: node.config.routes.clone(),
    };
    let backend = api::Backend { bus: node.bus.clone(), registry, journal };
    let served = api::serve(config, backend).await.with_context(|| format!("starting the API on {listen}"))?;
    Ok(RunningApi { addr: served.addr, made_up_token: made_up, board: served.board })
}
