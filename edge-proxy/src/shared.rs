//! Several edges on one SIP address (`sip.reuse_port`, SO_REUSEPORT): the kernel gives each
//! peer's datagrams to one of the edges' sockets, which need not be the edge that sent the
//! peer a request. So each edge marks the branch of the requests it sends with its id, and
//! an edge that receives a response it has no transaction for, marked by another edge,
//! relays it to that edge over the bus (`EdgeCommand.relay`), which takes it as if it had
//! arrived there. When an edge dies, the kernel gives its peers to the others.

use cluster::bus::typed;
use cluster::contracts::{self, EdgeCommand, Relay, edge_command};
use cluster::subjects::{self, NodeId};
use sip::message::{Message, Via};
use sip::transaction::{Peer, TransportKind};

use crate::node::Edge;
use crate::peers;

impl Edge {
    /// A `Via` for a request this edge sends: a fresh branch that names this edge.
    pub(crate) fn via(&self, transport: TransportKind) -> Via {
        self.handle.via_marked(transport, self.id.as_str())
    }

    /// The edge that sent the request `response` answers, when it is not this one.
    pub(crate) fn sent_by_another(&self, response: &Message) -> Option<NodeId> {
        let (_, edge) = response.branch()?.split_once('.')?;
        (edge != self.id.as_str()).then(|| NodeId::new(edge).ok()).flatten()
    }

    /// Hands `response`, received from `peer`, to the edge that sent its request.
    pub(crate) async fn relay(&self, owner: NodeId, response: Message, peer: Peer) {
        let relay = Relay { message: response.as_bytes().clone(), source: Some(peers::to_contract(peer)) };
        let command = EdgeCommand {
            meta: contracts::meta(self.id.as_str()),
            session_id: String::new(),
            command: Some(edge_command::Command::Relay(relay)),
        };
        self.stats.relayed.inc();
        if let Err(e) = typed::publish(self.bus.as_ref(), &subjects::edge_commands(&owner), &command).await {
            tracing::warn!(edge = %owner, error = %e, "response not relayed");
        }
    }
}
