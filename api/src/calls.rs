//! `callmesh.v1.Calls`: the calls in progress, as their records in the registry say (every
//! session node writes its calls' there; a call is listed once its record is written,
//! when it is answered or its media is placed); and what an operator asks of one — hang
//! up, transfer, record — told to its session over the bus (`CallControl`), whose
//! outcome follows in the event feed; and calls placed for an operator (`crate::originate`).

use std::sync::Arc;

use cluster::bus::{Bus, typed};
use cluster::contracts::SessionRecord;
use cluster::registry::{Bucket, Registry};
use cluster::subjects::{self, SessionId};
use contracts::calls_server::Calls;
use contracts::{CallInfo, CallRequest, GetCallRequest, ListCallsRequest, ListCallsResponse, TransferRequest};
use contracts::{ControlHangup, ControlRecord, ControlTransfer, OriginateRequest, OriginateResponse, call_control};
use prost::Message;
use session_node::parties::{caller_confirmed, leg_of, parties};
use tonic::{Request, Response, Status};

pub struct CallsApi {
    pub(crate) registry: Arc<dyn Registry>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) node: String,
    /// The agents and the dial plan, for calls placed for an operator (`originate.rs`).
    pub(crate) agents: Vec<router::acd::AgentSpec>,
    pub(crate) routes: Vec<router::Route>,
}

impl CallsApi {
    pub fn new(config: &crate::ApiConfig, backend: &crate::Backend) -> Self {
        CallsApi {
            registry: backend.registry.clone(),
            bus: backend.bus.clone(),
            node: config.node_id.clone(),
            agents: config.agents.clone(),
            routes: config.routes.clone(),
        }
    }

    /// The call in progress named `id`, or why not.
    async fn call(&self, id: &str) -> Result<SessionRecord, Status> {
        if !cluster::registry::is_valid_key(id) {
            return Err(Status::invalid_argument("not a session id"));
        }
        self.record(id).await?.ok_or_else(|| Status::not_found(format!("no call {id} in progress")))
    }

    /// Tells the session of `record` what the operator asks (on its events subject, which
    /// its owner follows); returns the call as it was.
    async fn control(&self, record: SessionRecord, action: call_control::Action) -> Result<Response<CallInfo>, Status> {
        let session = SessionId::new(record.session_id.clone()).map_err(|e| Status::internal(e.to_string()))?;
        let event = contracts::control_event(&self.node, &record.session_id, action);
        typed::publish(self.bus.as_ref(), &subjects::session_events(&session), &event)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(info(&record)))
    }

    async fn record(&self, key: &str) -> Result<Option<SessionRecord>, Status> {
        let entry = self.registry.get(Bucket::Sessions, key).await.map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(entry.and_then(|e| SessionRecord::decode(e.value).ok()).filter(|r| !r.session_id.is_empty()))
    }
}

/// What the API says of a call, from its record.
pub fn info(record: &SessionRecord) -> CallInfo {
    let (caller, callee, call_ids) = match &record.engine {
        Some(state) => {
            let (caller, callee) = parties(state);
            (caller, callee, state.legs.iter().map(|l| leg_of(l).call_id).filter(|c| !c.is_empty()).collect())
        }
        None => Default::default(),
    };
    let queue = record.queue.as_ref();
    let agent = match (&record.agent_leg, queue) {
        (Some(leg), _) => leg.agent.clone(),
        (None, Some(q)) => q.bridged_agent.clone(),
        _ => String::new(),
    };
    CallInfo {
        session_id: record.session_id.clone(),
        kind: if record.kind.is_empty() { "call".into() } else { record.kind.clone() },
        owner: record.owner.clone(),
        caller,
        callee,
        answered: record.answered || record.answered_at_unix_ms > 0 || record.engine.as_ref().is_some_and(caller_confirmed),
        start_ms: record.started_at_unix_ms,
        queue: queue.map(|q| q.queue.clone()).unwrap_or_default(),
        agent,
        call_ids,
    }
}

#[tonic::async_trait]
impl Calls for CallsApi {
    async fn list(&self, _: Request<ListCallsRequest>) -> Result<Response<ListCallsResponse>, Status> {
        let keys = self.registry.keys(Bucket::Sessions, "").await.map_err(|e| Status::unavailable(e.to_string()))?;
        let mut calls = Vec::new();
        for key in keys {
            if let Some(record) = self.record(&key).await? {
                calls.push(info(&record));
            }
        }
        calls.sort_by_key(|c| c.start_ms);
        Ok(Response::new(ListCallsResponse { calls }))
    }

    async fn get(&self, request: Request<GetCallRequest>) -> Result<Response<CallInfo>, Status> {
        Ok(Response::new(info(&self.call(&request.into_inner().session_id).await?)))
    }

    async fn hangup(&self, request: Request<CallRequest>) -> Result<Response<CallInfo>, Status> {
        let record = self.call(&request.into_inner().session_id).await?;
        self.control(record, call_control::Action::Hangup(ControlHangup {})).await
    }

    async fn transfer(&self, request: Request<TransferRequest>) -> Result<Response<CallInfo>, Status> {
        let request = request.into_inner();
        if sip::message::Uri::parse(&request.target).is_err() {
            return Err(Status::invalid_argument(format!("{:?} is not a SIP URI", request.target)));
        }
        let record = self.call(&request.session_id).await?;
        if !record.kind.is_empty() {
            return Err(Status::failed_precondition(format!("a {} call is not transferred (relayed calls only)", record.kind)));
        }
        self.control(record, call_control::Action::Transfer(ControlTransfer { target: request.target })).await
    }

    async fn start_recording(&self, request: Request<CallRequest>) -> Result<Response<CallInfo>, Status> {
        let record = self.call(&request.into_inner().session_id).await?;
        self.control(record, call_control::Action::Record(ControlRecord { on: true })).await
    }

    async fn stop_recording(&self, request: Request<CallRequest>) -> Result<Response<CallInfo>, Status> {
        let record = self.call(&request.into_inner().session_id).await?;
        self.control(record, call_control::Action::Record(ControlRecord { on: false })).await
    }

    async fn originate(&self, request: Request<OriginateRequest>) -> Result<Response<OriginateResponse>, Status> {
        Ok(Response::new(self.originate_call(request.into_inner()).await?))
    }
}
