//! `callmesh.v1.Nodes`: the nodes alive, from their heartbeats in the registry, and a drain
//! asked of one over the bus (`DrainNode` on `callmesh.node.<node>.drain`): it stops taking
//! new work and finishes what it has, as on SIGTERM, and keeps running until stopped.

use std::sync::Arc;
use std::time::Duration;

use cluster::bus::{Bus, BusError, typed};
use cluster::contracts::{DrainNode, DrainNodeReply, NodeHeartbeat, Role};
use cluster::membership;
use cluster::registry::Registry;
use cluster::subjects::{self, NodeId};
use contracts::nodes_server::Nodes;
use contracts::{DrainRequest, ListNodesRequest, ListNodesResponse, NodeInfo};
use tonic::{Request, Response, Status};

/// A node whose heartbeat is older than this is not listed.
const MEMBER_TTL: Duration = Duration::from_secs(15);
/// How long a node has to say it drains.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

pub struct NodesApi {
    registry: Arc<dyn Registry>,
    bus: Arc<dyn Bus>,
    node: String,
}

impl NodesApi {
    pub fn new(registry: Arc<dyn Registry>, bus: Arc<dyn Bus>, node: String) -> Self {
        NodesApi { registry, bus, node }
    }

    async fn members(&self) -> Result<Vec<NodeHeartbeat>, Status> {
        membership::members(self.registry.as_ref(), MEMBER_TTL).await.map_err(|e| Status::unavailable(e.to_string()))
    }
}

fn role_name(role: i32) -> &'static str {
    match Role::try_from(role) {
        Ok(Role::Edge) => "edge",
        Ok(Role::Router) => "router",
        Ok(Role::Session) => "session",
        Ok(Role::Media) => "media",
        Ok(Role::Api) => "api",
        Ok(Role::All) => "all",
        _ => "unknown",
    }
}

fn info(hb: &NodeHeartbeat) -> NodeInfo {
    NodeInfo {
        node_id: hb.node_id.clone(),
        role: role_name(hb.role).into(),
        addresses: hb.addresses.clone(),
        draining: hb.draining,
        active_calls: hb.load.as_ref().map_or(0, |l| l.active_calls),
        started_at_unix_ms: hb.started_at_unix_ms,
        version: hb.version.clone(),
    }
}

#[tonic::async_trait]
impl Nodes for NodesApi {
    async fn list(&self, _: Request<ListNodesRequest>) -> Result<Response<ListNodesResponse>, Status> {
        let mut nodes: Vec<NodeInfo> = self.members().await?.iter().map(info).collect();
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        Ok(Response::new(ListNodesResponse { nodes }))
    }

    async fn drain(&self, request: Request<DrainRequest>) -> Result<Response<NodeInfo>, Status> {
        let id = request.into_inner().node_id;
        let node = NodeId::new(id.clone()).map_err(|_| Status::invalid_argument(format!("{id:?} is not a node id")))?;
        let ask = DrainNode { meta: contracts::meta(&self.node) };
        let reply: DrainNodeReply =
            match typed::request(self.bus.as_ref(), &subjects::node_drain(&node), &ask, DRAIN_TIMEOUT).await {
                Ok(reply) => reply,
                Err(BusError::NoResponders(_)) => return Err(Status::not_found(format!("no node {id} answers"))),
                Err(e) => return Err(Status::unavailable(e.to_string())),
            };
        let listed = self.members().await?.into_iter().find(|m| m.node_id == id);
        let mut node = listed.as_ref().map(info).unwrap_or_else(|| NodeInfo { node_id: id, ..Default::default() });
        node.draining = reply.draining;
        Ok(Response::new(node))
    }
}
