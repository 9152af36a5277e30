//! One router's ACD: it plans from the shared records (`plan.rs`) and applies the plan by
//! compare-and-set (`store.rs`), and it takes what the sessions report — an agent answered,
//! declined, a caller hung up, a call ended — the same way. Any router may handle anything:
//! the records say what is true.
//!
//! An offer is a reservation with a timeout (TaskRouter's): the caller's record is marked
//! offered first, then each agent's record reserved — a write that only succeeds while the
//! agent is free, so no agent is ever offered two callers at once. An agent the reservation
//! could not be written for is dropped from the offer (and with none left, the caller waits
//! again). A router that dies between the two writes leaves an offer that lapses at its
//! deadline, and another router takes it back. What sessions report is in `reports.rs`.

use std::collections::BTreeMap;

use super::model::{AgentRecord, AgentSpec, CallerRecord, CallerState, Overflow, QueueSpec, Reservation, State, Status};
use super::plan::{self, Intent, View};
use super::store::{AcdStore, Revision, StoreError};
use super::strategy::{Mark, Strategy};

/// What the ACD tells the sessions and the event feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdEvent {
    /// `caller` joined `queue` (a caller who called back: having waited that long before).
    Joined { caller: String, queue: String, priority: u32, waited_before_ms: u64 },
    /// Ring `agent` for `caller` until `until_ms`.
    Offer { caller: String, agent: String, until_ms: u64 },
    /// Stop ringing `agent` for `caller` (another answered, the caller left, the offer lapsed).
    Cancel { caller: String, agent: String },
    /// `agent` answered `caller`: bridge them.
    Bridge { caller: String, agent: String },
    /// `caller` leaves the queue for `target`.
    Overflow { caller: String, target: Overflow },
    /// `agent` let `caller` ring out (or declined).
    NoAnswer { caller: String, agent: String },
    /// `agent` was put on break after too many offers unanswered in a row.
    OnBreak { agent: String },
    /// `caller` hung up before an agent answered.
    Abandoned { caller: String },
}

/// Why an agent did not take an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decline {
    NoAnswer,
    Busy,
    Rejected,
}

/// A store failure after some of an operation was decided: what was decided must still
/// reach the sessions (a caller bridged, an offer made), whatever came after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub error: StoreError,
    pub events: Vec<AcdEvent>,
}

/// What an operation decided, or how it failed after deciding part of it.
pub type Outcome = Result<Vec<AcdEvent>, Failed>;

pub(super) fn outcome(events: Vec<AcdEvent>, result: Result<(), StoreError>) -> Outcome {
    match result {
        Ok(()) => Ok(events),
        Err(error) => Err(Failed { error, events }),
    }
}

/// Read-modify-write attempts before giving up on a record others keep changing.
pub(super) const ATTEMPTS: usize = 8;

/// One router's ACD.
pub struct Acd {
    router: String,
    queues: BTreeMap<String, QueueSpec>,
    agents: Vec<AgentSpec>,
    /// What this router decided, per queue, since it started.
    counts: std::sync::Mutex<BTreeMap<String, Counts>>,
}

/// A queue's outcomes as one router decided them: callers answered (and how long they
/// waited), answered within the service level, abandoned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub answered: u64,
    pub answered_within_service_level: u64,
    pub answer_wait_ms: u64,
    pub abandoned: u64,
}

impl Counts {
    pub(super) fn answered(&mut self, waited_ms: u64, queue: Option<&QueueSpec>) {
        self.answered += 1;
        self.answer_wait_ms += waited_ms;
        if queue.is_some_and(|q| waited_ms <= q.service_level_ms) {
            self.answered_within_service_level += 1;
        }
    }
}

impl Acd {
    pub fn new(router: &str, queues: Vec<QueueSpec>, agents: Vec<AgentSpec>) -> Acd {
        let queues = queues.into_iter().map(|q| (q.name.clone(), q)).collect();
        Acd { router: router.into(), queues, agents, counts: Default::default() }
    }

    pub fn queue(&self, name: &str) -> Option<&QueueSpec> {
        self.queues.get(name)
    }

    /// What this router decided for `queue` since it started.
    pub fn counts(&self, queue: &str) -> Counts {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).get(queue).copied().unwrap_or_default()
    }

    pub(super) fn count(&self, queue: &str, f: impl FnOnce(&mut Counts)) {
        f(self.counts.lock().unwrap_or_else(|e| e.into_inner()).entry(queue.to_owned()).or_default());
    }

    /// The queues and agents it serves.
    pub fn served(&self) -> (Vec<&QueueSpec>, &[AgentSpec]) {
        (self.queues.values().collect(), &self.agents)
    }

    pub(super) fn spec(&self, agent: &str) -> Option<&AgentSpec> {
        self.agents.iter().find(|a| a.id == agent)
    }

    /// Creates the records of configured agents that have none (with `status`).
    pub async fn ensure_agents(
        &self,
        store: &dyn AcdStore,
        status: impl Fn(&AgentSpec) -> Status,
        now: u64,
    ) -> Result<(), StoreError> {
        for spec in &self.agents {
            if store.agent(&spec.id).await?.is_none() {
                match store.put_agent(&spec.id, &AgentRecord::new(status(spec), now), None).await {
                    Ok(_) | Err(StoreError::Conflict) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// A caller arrives: it waits, or overflows at once when the queue is full.
    pub async fn join(&self, store: &dyn AcdStore, caller: CallerRecord) -> Outcome {
        let mut events = Vec::new();
        let result = self.join_in(store, caller, &mut events).await;
        outcome(events, result)
    }

    pub(super) async fn join_in(
        &self,
        store: &dyn AcdStore,
        mut caller: CallerRecord,
        events: &mut Vec<AcdEvent>,
    ) -> Result<(), StoreError> {
        let Some(queue) = self.queues.get(&caller.queue) else {
            events.push(AcdEvent::Overflow { caller: caller.session, target: Overflow::Refuse(404) });
            return Ok(());
        };
        if queue.max_len > 0 {
            let waiting = store.callers().await?.iter().filter(|(c, _)| c.queue == queue.name).count();
            if waiting >= queue.max_len {
                events.push(AcdEvent::Overflow { caller: caller.session, target: queue.overflow.clone() });
                return Ok(());
            }
        }
        let waited_before_ms = self.resume(store, &mut caller).await?;
        match store.put_caller(&caller, None).await {
            Ok(_) => {
                let (queue, priority) = (caller.queue.clone(), caller.priority);
                events.push(AcdEvent::Joined { caller: caller.session, queue, priority, waited_before_ms });
                Ok(())
            }
            // Joined already (the report came twice).
            Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Plans from the records and applies the plan.
    pub async fn tick(&self, store: &dyn AcdStore, now: u64, random: impl FnMut(u64) -> u64) -> Outcome {
        let mut events = Vec::new();
        let result = self.tick_in(store, now, random, &mut events).await;
        outcome(events, result)
    }

    async fn tick_in(
        &self,
        store: &dyn AcdStore,
        now: u64,
        random: impl FnMut(u64) -> u64,
        events: &mut Vec<AcdEvent>,
    ) -> Result<(), StoreError> {
        let records: BTreeMap<String, AgentRecord> = store.agents().await?.into_iter().map(|(id, (r, _))| (id, r)).collect();
        let callers: Vec<CallerRecord> = store.callers().await?.into_iter().map(|(c, _)| c).collect();
        let memory = store.memory().await?;
        let view = View {
            now_ms: now,
            queues: &self.queues,
            agents: &self.agents,
            records: &records,
            callers: &callers,
            memory: &memory,
        };
        let intents = plan::plan(&view, random);
        self.drop_adrift(store, &callers, now, events).await?;
        self.drop_lapsed_places(store, now).await?;
        for intent in intents {
            match intent {
                Intent::Offer { caller, agents } => self.offer(store, &caller, agents, now, events).await?,
                Intent::Lapse { caller } => self.lapse(store, &caller, now, events).await?,
                Intent::Overflow { caller, target } => {
                    if let Some((rec, rev)) = store.caller(&caller).await?
                        && rec.state == CallerState::Waiting
                        && store.delete_caller(&caller, rev).await.is_ok()
                    {
                        events.push(AcdEvent::Overflow { caller, target });
                    }
                }
            }
        }
        Ok(())
    }

    async fn offer(
        &self,
        store: &dyn AcdStore,
        session: &str,
        agents: Vec<String>,
        now: u64,
        events: &mut Vec<AcdEvent>,
    ) -> Result<(), StoreError> {
        let Some((caller, rev)) = store.caller(session).await? else { return Ok(()) };
        let Some(queue) = self.queues.get(&caller.queue) else { return Ok(()) };
        // Agents added to an offer ringing already (ring-progressively) ring until its end:
        // every reservation of one offer lapses together.
        let (mut offered, since, until) = match &caller.state {
            CallerState::Waiting => (Vec::new(), now, now + queue.ring_ms),
            CallerState::Offered { agents, since_ms, until_ms, .. } if queue.strategy == Strategy::RingProgressively => {
                (agents.clone(), *since_ms, *until_ms)
            }
            // Offered meanwhile by another router (our plan was made from an older reading).
            CallerState::Offered { .. } | CallerState::Bridged { .. } => return Ok(()),
        };
        let before = offered.len();
        offered.extend(agents.iter().cloned());
        let mut marked = caller.clone();
        marked.state =
            CallerState::Offered { agents: offered.clone(), router: self.router.clone(), since_ms: since, until_ms: until };
        // Another router changed the caller since our reading: its plan wins this round.
        let Ok(mut rev) = store.put_caller(&marked, Some(rev)).await else { return Ok(()) };
        let mut reserved = Vec::new();
        for agent in &agents {
            let reservation = Reservation { caller: session.to_owned(), router: self.router.clone(), expires_ms: until };
            let took = self
                .update_agent(store, agent, |rec| {
                    if !rec.free(now) {
                        return false;
                    }
                    rec.reservation = Some(reservation.clone());
                    rec.state = State::Reserved;
                    true
                })
                .await?;
            if took {
                reserved.push(agent.clone());
                events.push(AcdEvent::Offer { caller: session.to_owned(), agent: agent.clone(), until_ms: until });
            }
        }
        if reserved.len() < agents.len() {
            offered.truncate(before);
            offered.extend(reserved.iter().cloned());
            marked.state = if offered.is_empty() {
                CallerState::Waiting
            } else {
                CallerState::Offered { agents: offered, router: self.router.clone(), since_ms: since, until_ms: until }
            };
            rev = store.put_caller(&marked, Some(rev)).await?;
        }
        let _ = rev;
        if let Some(first) = reserved.first() {
            let position = self.spec(first).and_then(|s| s.tier(&queue.name)).map_or(0, |t| t.position);
            let mut memory = store.memory().await?.remove(&queue.name).unwrap_or_default();
            memory.last_offered = Some(Mark { agent: first.clone(), position });
            store.put_memory(&queue.name, &memory).await?;
        }
        Ok(())
    }

    /// The offer to `session` rang out: its agents are released (a no-answer each) and the
    /// caller waits again, not to be offered to them again.
    async fn lapse(&self, store: &dyn AcdStore, session: &str, now: u64, events: &mut Vec<AcdEvent>) -> Result<(), StoreError> {
        let Some((mut caller, rev)) = store.caller(session).await? else { return Ok(()) };
        let CallerState::Offered { agents, until_ms, .. } = caller.state.clone() else { return Ok(()) };
        if until_ms > now {
            return Ok(());
        }
        caller.tried.extend(agents.iter().cloned());
        caller.state = CallerState::Waiting;
        if store.put_caller(&caller, Some(rev)).await.is_err() {
            return Ok(());
        }
        for agent in agents {
            events.push(AcdEvent::Cancel { caller: session.to_owned(), agent: agent.clone() });
            self.release(store, session, &agent, Some(Decline::NoAnswer), now, events).await?;
        }
        Ok(())
    }

    /// Frees `agent` of its reservation for `session`, applying `decline`'s consequences.
    pub(super) async fn release(
        &self,
        store: &dyn AcdStore,
        session: &str,
        agent: &str,
        decline: Option<Decline>,
        now: u64,
        events: &mut Vec<AcdEvent>,
    ) -> Result<(), StoreError> {
        let spec = self.spec(agent).cloned();
        let mut on_break = false;
        let released = self
            .update_agent(store, agent, |rec| {
                if rec.reservation.as_ref().is_none_or(|r| r.caller != session) {
                    return false;
                }
                rec.reservation = None;
                if matches!(rec.state, State::Reserved | State::Receiving) {
                    rec.state = State::Waiting;
                }
                let Some(spec) = &spec else { return true };
                match decline {
                    Some(Decline::NoAnswer) => {
                        rec.no_answers_in_a_row += 1;
                        rec.ready_at_ms = now + spec.no_answer_delay_ms;
                        if rec.no_answers_in_a_row >= spec.max_no_answer.max(1) {
                            rec.status = Status::OnBreak;
                            on_break = true;
                        }
                    }
                    Some(Decline::Busy) => rec.ready_at_ms = now + spec.busy_delay_ms,
                    Some(Decline::Rejected) => rec.ready_at_ms = now + spec.reject_delay_ms,
                    None => {}
                }
                true
            })
            .await?;
        if released && decline.is_some() {
            events.push(AcdEvent::NoAnswer { caller: session.to_owned(), agent: agent.to_owned() });
        }
        if on_break {
            events.push(AcdEvent::OnBreak { agent: agent.to_owned() });
        }
        Ok(())
    }

    /// Reads `agent`'s record, lets `change` edit it (false: leave it) and writes it back by
    /// compare-and-set, again from a fresh reading when another router wrote first.
    pub(super) async fn update_agent(
        &self,
        store: &dyn AcdStore,
        agent: &str,
        mut change: impl FnMut(&mut AgentRecord) -> bool,
    ) -> Result<bool, StoreError> {
        for _ in 0..ATTEMPTS {
            let Some((mut rec, rev)): Option<(AgentRecord, Revision)> = store.agent(agent).await? else { return Ok(false) };
            if !change(&mut rec) {
                return Ok(false);
            }
            match store.put_agent(agent, &rec, Some(rev)).await {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}
