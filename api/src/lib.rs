//! The integrator's API (package `callmesh.v1`, gRPC on tonic): agents, queues, calls in
//! progress, the event feed (resumable from a sequence number) and the call records. A
//! stateless role: everything it says it reads from the registry and the journals, so any
//! number of API nodes give the same answers. `grpc.health.v1` and server reflection are
//! served beside it (open: probes and grpcurl need them); the rest needs a bearer token of
//! `api.tokens`, unless the API is configured open.
//!
//! - [`events`]: the feed; [`cdrs`]: the records' export; [`calls`], [`agents`] (with the
//!   queues' statistics), [`nodes`]: the registry's view, and what an operator asks.
//! - [`auth`]: bearer tokens; [`json`]: records as JSON lines (`callmesh cdr export`);
//!   [`board`]: the wallboard's snapshots.

pub mod agents;
pub mod auth;
pub mod board;
pub mod calls;
pub mod cdrs;
pub mod day;
pub mod events;
pub mod json;
pub mod nodes;
mod originate;

use std::net::SocketAddr;
use std::sync::Arc;

use cluster::bus::Bus;
use cluster::journal::Journal;
use cluster::registry::Registry;
use contracts::{agents_server::AgentsServer, calls_server::CallsServer, cdrs_server::CdrsServer};
use contracts::{events_server::EventsServer, nodes_server::NodesServer, queues_server::QueuesServer};
use router::acd::{AgentSpec, QueueSpec};

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// Bearer tokens accepted.
    pub tokens: Vec<String>,
    /// Calls without a token are served too.
    pub open: bool,
    /// The node's id (sender of the events it publishes).
    pub node_id: String,
    /// The queues and agents configured (what the routers serve).
    pub queues: Vec<QueueSpec>,
    pub agents: Vec<AgentSpec>,
    /// The dial plan (where an originated call's number goes).
    pub routes: Vec<router::Route>,
}

/// What the services stand on.
pub struct Backend {
    pub bus: Arc<dyn Bus>,
    pub registry: Arc<dyn Registry>,
    pub journal: Arc<dyn Journal>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("binding the API on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("the API's view of the agents: {0}")]
    Store(String),
    #[error("server reflection: {0}")]
    Reflection(String),
}

/// A running API: where it listens, and the wallboard's view of the same records.
pub struct Served {
    pub addr: SocketAddr,
    pub board: agents::AgentsApi,
}

/// Serves the API.
pub async fn serve(config: ApiConfig, backend: Backend) -> Result<Served, ApiError> {
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| ApiError::Bind(config.listen, e))?;
    let bound = listener.local_addr().map_err(|e| ApiError::Bind(config.listen, e))?;
    let auth = auth::Auth::new(config.tokens.clone(), config.open);
    let agents = agents::AgentsApi::start(&config, &backend).await?;
    let (health, health_service) = tonic_health::server::health_reporter();
    let services = ["Events", "Cdrs", "Calls", "Nodes", "Agents", "Queues"].map(|s| format!("callmesh.v1.{s}"));
    for name in services {
        health.set_service_status(name, tonic_health::ServingStatus::Serving).await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(contracts::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ApiError::Reflection(e.to_string()))?;
    let journal = backend.journal.clone();
    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(EventsServer::with_interceptor(events::EventsApi::new(journal.clone()), auth.clone()))
        .add_service(CdrsServer::with_interceptor(cdrs::CdrsApi::new(journal), auth.clone()))
        .add_service(CallsServer::with_interceptor(calls::CallsApi::new(&config, &backend), auth.clone()))
        .add_service(NodesServer::with_interceptor(
            nodes::NodesApi::new(backend.registry.clone(), backend.bus.clone(), config.node_id.clone()),
            auth.clone(),
        ))
        .add_service(AgentsServer::with_interceptor(agents.clone(), auth.clone()))
        .add_service(QueuesServer::with_interceptor(agents.clone(), auth));
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        if let Err(e) = router.serve_with_incoming(incoming).await {
            tracing::error!(error = %e, "the API stopped");
        }
    });
    Ok(Served { addr: bound, board: agents })
}
