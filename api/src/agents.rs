//! `callmesh.v1.Agents` and `callmesh.v1.Queues`: the agents and queues the routers serve,
//! as their records in the registry's `agents` bucket stand (the routers' own store, kept
//! current by a watch), and an agent's status set by compare-and-set — the routers plan
//! from the record, so an agent logged in is offered callers within a planning tick. The
//! queues' figures of the day (answered, within the service level, abandoned, average speed
//! of answer) come from the day's call records (`crate::day`), so every API node gives the
//! same.

use std::collections::BTreeMap;
use std::sync::Arc;

use cluster::bus::{Bus, typed};
use cluster::journal::Journal;
use cluster::subjects;
use contracts::agents_server::Agents;
use contracts::queues_server::Queues;
use contracts::{
    AgentInfo, AgentStatus, AgentStatusChange, ListAgentsRequest, ListAgentsResponse, ListQueuesRequest, ListQueuesResponse,
    QueueEvent, QueueStats, SetAgentStatusRequest, queue_event,
};
use router::acd::{AcdStore, AgentRecord, AgentSpec, QueueSpec, RegistryStore, Status as AcdStatus, wire};
use tonic::{Request, Response, Status};

use crate::day::Day;
use crate::{ApiConfig, ApiError, Backend};

/// Compare-and-set attempts at an agent's record before giving up (routers write it too).
const ATTEMPTS: usize = 10;

/// Both services over one view of the records. Cheap to clone.
#[derive(Clone)]
pub struct AgentsApi(Arc<Inner>);

struct Inner {
    store: RegistryStore,
    /// The queues' figures of the day, from the call records.
    day: Day,
    journal: Arc<dyn Journal>,
    bus: Arc<dyn Bus>,
    node: String,
    queues: Vec<QueueSpec>,
    agents: Vec<AgentSpec>,
}

fn unavailable(e: impl std::fmt::Display) -> Status {
    Status::unavailable(e.to_string())
}

impl AgentsApi {
    pub async fn start(config: &ApiConfig, backend: &Backend) -> Result<AgentsApi, ApiError> {
        let store = RegistryStore::start(backend.registry.clone()).await.map_err(|e| ApiError::Store(e.to_string()))?;
        let levels = config.queues.iter().map(|q| (q.name.clone(), q.service_level_ms)).collect();
        Ok(AgentsApi(Arc::new(Inner {
            store,
            day: Day::follow(backend.journal.clone(), levels),
            journal: backend.journal.clone(),
            bus: backend.bus.clone(),
            node: config.node_id.clone(),
            queues: config.queues.clone(),
            agents: config.agents.clone(),
        })))
    }

    fn info(&self, spec: &AgentSpec, record: Option<&AgentRecord>) -> AgentInfo {
        let wired = record.map(wire::agent_to_wire).unwrap_or_default();
        let since = record.map_or(0, |r| match r.state {
            router::acd::State::Waiting => r.idle_since_ms,
            _ => r.answered_at_ms.max(r.idle_since_ms),
        });
        AgentInfo {
            agent: spec.id.clone(),
            queues: spec.tiers.iter().map(|t| t.queue.clone()).collect(),
            skills: spec.skills.keys().cloned().collect(),
            status: wired.status,
            state: wired.state,
            state_since_ms: since,
            calls_answered: wired.calls_answered,
        }
    }

    /// Every configured agent as its record stands.
    pub async fn agents(&self) -> Result<Vec<AgentInfo>, Status> {
        let records = self.0.store.agents().await.map_err(unavailable)?;
        Ok(self.0.agents.iter().map(|spec| self.info(spec, records.get(&spec.id).map(|(r, _)| r))).collect())
    }

    /// Every configured queue as it stands, with the day's figures.
    pub async fn queues(&self) -> Result<Vec<QueueStats>, Status> {
        let records: BTreeMap<String, AgentRecord> =
            self.0.store.agents().await.map_err(unavailable)?.into_iter().map(|(id, (r, _))| (id, r)).collect();
        let callers: Vec<_> = self.0.store.callers().await.map_err(unavailable)?.into_iter().map(|(c, _)| c).collect();
        let specs: Vec<&QueueSpec> = self.0.queues.iter().collect();
        let mut queues = router::acd::feed::stats(&specs, &self.0.agents, &records, &callers, contracts::unix_ms());
        for stats in &mut queues {
            let day = self.0.day.counts(&stats.queue);
            stats.answered = day.answered;
            stats.answered_within_service_level = day.within_service_level;
            stats.abandoned = day.abandoned;
            stats.average_speed_of_answer_ms = day.answered_wait_ms.checked_div(day.answered).unwrap_or(0);
        }
        Ok(queues)
    }

    /// The service level each queue aims at (answered within this long).
    pub fn service_levels(&self) -> BTreeMap<String, u64> {
        self.0.queues.iter().map(|q| (q.name.clone(), q.service_level_ms)).collect()
    }

    /// The event journal (for what follows the feed).
    pub fn journal(&self) -> Arc<dyn Journal> {
        self.0.journal.clone()
    }
}

fn status_from(status: i32) -> Result<AcdStatus, Status> {
    match AgentStatus::try_from(status) {
        Ok(AgentStatus::Available) => Ok(AcdStatus::Available),
        Ok(AgentStatus::OnBreak) => Ok(AcdStatus::OnBreak),
        Ok(AgentStatus::LoggedOut) => Ok(AcdStatus::LoggedOut),
        Err(_) => Err(Status::invalid_argument(format!("no agent status {status}"))),
    }
}

#[tonic::async_trait]
impl Agents for AgentsApi {
    async fn list(&self, _: Request<ListAgentsRequest>) -> Result<Response<ListAgentsResponse>, Status> {
        Ok(Response::new(ListAgentsResponse { agents: self.agents().await? }))
    }

    async fn set_status(&self, request: Request<SetAgentStatusRequest>) -> Result<Response<AgentInfo>, Status> {
        let request = request.into_inner();
        let status = status_from(request.status)?;
        let Some(spec) = self.0.agents.iter().find(|a| a.id == request.agent) else {
            return Err(Status::not_found(format!("no agent {:?}", request.agent)));
        };
        for _ in 0..ATTEMPTS {
            let now = contracts::unix_ms();
            let current = self.0.store.agent(&spec.id).await.map_err(unavailable)?;
            let (mut record, revision) = match current {
                Some((record, revision)) => (record, Some(revision)),
                None => (AgentRecord::new(status, now), None),
            };
            if record.status != status {
                record.status = status;
                record.no_answers_in_a_row = 0;
                if status == AcdStatus::Available {
                    record.idle_since_ms = now;
                }
            }
            match self.0.store.put_agent(&spec.id, &record, revision).await {
                Ok(_) => {
                    let change = AgentStatusChange { agent: spec.id.clone(), status: request.status };
                    let event = QueueEvent {
                        meta: contracts::meta(&self.0.node),
                        at_unix_ms: now,
                        event: Some(queue_event::Event::AgentStatus(change)),
                    };
                    if let Err(e) = typed::publish(self.0.bus.as_ref(), &subjects::acd_events(), &event).await {
                        tracing::warn!(error = %e, "agent status event not published");
                    }
                    return Ok(Response::new(self.info(spec, Some(&record))));
                }
                Err(router::acd::StoreError::Conflict) => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(Status::aborted("the agent's record kept changing: try again"))
    }
}

#[tonic::async_trait]
impl Queues for AgentsApi {
    async fn list(&self, _: Request<ListQueuesRequest>) -> Result<Response<ListQueuesResponse>, Status> {
        Ok(Response::new(ListQueuesResponse { queues: self.queues().await? }))
    }
}
