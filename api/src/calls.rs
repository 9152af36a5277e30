//! `callmesh.v1.Calls`: the calls in progress, as their records in the registry say (every
//! session node writes its calls' there; a call is listed once its record is written,
//! when it is answered or its media is placed).

use std::sync::Arc;

use cluster::contracts::SessionRecord;
use cluster::registry::{Bucket, Registry};
use contracts::calls_server::Calls;
use contracts::{CallInfo, GetCallRequest, ListCallsRequest, ListCallsResponse};
use prost::Message;
use session_node::parties::{caller_confirmed, leg_of, parties};
use tonic::{Request, Response, Status};

pub struct CallsApi {
    registry: Arc<dyn Registry>,
}

impl CallsApi {
    pub fn new(registry: Arc<dyn Registry>) -> Self {
        CallsApi { registry }
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
        let id = request.into_inner().session_id;
        if !cluster::registry::is_valid_key(&id) {
            return Err(Status::invalid_argument("not a session id"));
        }
        match self.record(&id).await? {
            Some(record) => Ok(Response::new(info(&record))),
            None => Err(Status::not_found(format!("no call {id} in progress"))),
        }
    }
}
