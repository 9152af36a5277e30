//! `Calls.Originate` (click-to-call): where the agent is rung (its configured contact, or
//! the devices it registered), what the number is (a SIP URI, or the dial plan's target
//! for that user: a URI, or the user's registered devices), and which edge carries both —
//! then a session node is asked to place the call (`OriginateCall`, request/reply).

use std::time::Duration;

use cluster::bus::typed;
use cluster::contracts::{self, OriginateCall, OriginateReply, Role};
use cluster::{locations, membership, subjects};
use contracts::{OriginateRequest, OriginateResponse};
use router::routes::{self, Target};
use tonic::Status;

use crate::calls::CallsApi;

/// How long a session node has to place the call.
const PLACE_TIMEOUT: Duration = Duration::from_secs(5);
/// A node whose heartbeat is older than this does not carry calls.
const MEMBER_TTL: Duration = Duration::from_secs(15);

fn unavailable(e: impl std::fmt::Display) -> Status {
    Status::unavailable(e.to_string())
}

impl CallsApi {
    /// The contacts of a registered user (newest first), and the flow of the newest.
    async fn registered(&self, user: &str) -> Result<(Vec<String>, Option<contracts::Peer>), Status> {
        let mut bindings = locations::lookup(self.registry.as_ref(), user, contracts::unix_ms()).await.map_err(unavailable)?;
        bindings.sort_by_key(|b| std::cmp::Reverse(b.expires_unix_ms));
        let flow = bindings.first().and_then(|b| b.source.clone());
        Ok((bindings.into_iter().map(|b| b.contact).collect(), flow))
    }

    /// The number's URI and flow: a SIP URI as it is, else what the dial plan routes it to.
    async fn number(&self, number: &str) -> Result<(String, Option<contracts::Peer>), Status> {
        if sip::message::Uri::parse(number).is_ok() {
            return Ok((number.to_owned(), None));
        }
        let route = routes::find(&self.routes, number).ok_or_else(|| Status::not_found(format!("no route for {number:?}")))?;
        match &route.target {
            Target::Registered => {
                let (contacts, flow) = self.registered(number).await?;
                let first =
                    contacts.into_iter().next().ok_or_else(|| Status::not_found(format!("{number} is not registered")))?;
                Ok((first, flow))
            }
            Target::Uri(_) => Ok((route.target.expand(number).unwrap_or_default(), None)),
            other => Err(Status::failed_precondition(format!("{number} routes to {other:?}: only a SIP target is dialled"))),
        }
    }

    /// An edge alive to carry the calls: its id and its SIP URI.
    async fn edge(&self) -> Result<(String, String), Status> {
        let members = membership::members(self.registry.as_ref(), MEMBER_TTL).await.map_err(unavailable)?;
        members
            .into_iter()
            .filter(|m| !m.draining && matches!(Role::try_from(m.role), Ok(Role::Edge | Role::All)))
            .find_map(|m| {
                let sip = m.addresses.iter().find(|a| a.starts_with("sip:"))?;
                Some((m.node_id.clone(), format!("{sip};transport=udp")))
            })
            .ok_or_else(|| Status::unavailable("no SIP edge is alive"))
    }

    pub(crate) async fn originate_call(&self, request: OriginateRequest) -> Result<OriginateResponse, Status> {
        let spec = self
            .agents
            .iter()
            .find(|a| a.id == request.agent)
            .ok_or_else(|| Status::not_found(format!("no agent {:?}", request.agent)))?;
        let (agent_contacts, agent_flow) = match &spec.contact {
            Some(contact) => (vec![contact.clone()], None),
            None => self.registered(&spec.id).await?,
        };
        if agent_contacts.is_empty() {
            return Err(Status::failed_precondition(format!("agent {} has no contact and is not registered", spec.id)));
        }
        if !request.caller_id.is_empty() && sip::message::Uri::parse(&request.caller_id).is_err() {
            return Err(Status::invalid_argument(format!("caller id {:?} is not a SIP URI", request.caller_id)));
        }
        let (target, target_flow) = self.number(&request.number).await?;
        let (edge_id, edge_uri) = self.edge().await?;
        // The number sees the agent calling, at the edge, unless told otherwise.
        let caller_id = match request.caller_id.is_empty() {
            true => format!("sip:{}@{}", spec.id, edge_uri.trim_start_matches("sip:").split(';').next().unwrap_or_default()),
            false => request.caller_id,
        };
        let call = OriginateCall {
            meta: contracts::meta(&self.node),
            agent: spec.id.clone(),
            agent_contacts,
            agent_flow,
            target,
            target_flow,
            edge_id,
            edge_uri,
            caller_id,
            ring_secs: request.ring_secs,
        };
        let reply: OriginateReply =
            typed::request(self.bus.as_ref(), &subjects::originate(), &call, PLACE_TIMEOUT).await.map_err(unavailable)?;
        match reply.error.is_empty() {
            true => Ok(OriginateResponse { session_id: reply.session_id }),
            false => Err(Status::failed_precondition(reply.error)),
        }
    }
}
