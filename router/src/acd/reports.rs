//! What the sessions report to the ACD, applied to the shared records by compare-and-set:
//! an agent answered (the first answer wins the caller; any other agent's leg is
//! cancelled), an agent declined, the caller hung up (its offer cancelled), a bridged call
//! ended (the agent wraps up); and agents' status changes.

use super::dispatcher::ATTEMPTS;
use super::dispatcher::{Acd, AcdEvent, Decline, Outcome, outcome};
use super::model::{CallerState, State, Status};
use super::store::{AcdStore, StoreError};
use super::strategy::Mark;

impl Acd {
    /// `agent` answered `session`: bridged if the offer still stands (the first answer wins),
    /// else the agent's leg is cancelled.
    pub async fn answered(&self, store: &dyn AcdStore, session: &str, agent: &str, now: u64) -> Outcome {
        let mut events = Vec::new();
        let result = self.answered_in(store, session, agent, now, &mut events).await;
        outcome(events, result)
    }

    async fn answered_in(
        &self,
        store: &dyn AcdStore,
        session: &str,
        agent: &str,
        now: u64,
        events: &mut Vec<AcdEvent>,
    ) -> Result<(), StoreError> {
        let mut others = Vec::new();
        let mut won = None;
        for _ in 0..ATTEMPTS {
            let Some((mut caller, rev)) = store.caller(session).await? else { break };
            let CallerState::Offered { agents, .. } = &caller.state else { break };
            if !agents.iter().any(|a| a == agent) {
                break;
            }
            others = agents.iter().filter(|a| *a != agent).cloned().collect();
            caller.state = CallerState::Bridged { agent: agent.to_owned() };
            match store.put_caller(&caller, Some(rev)).await {
                Ok(_) => {
                    won = Some(caller);
                    break;
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        let Some(caller) = won else {
            events.push(AcdEvent::Cancel { caller: session.to_owned(), agent: agent.to_owned() });
            return Ok(());
        };
        self.count(&caller.queue, |c| c.answered(now.saturating_sub(caller.joined_ms), self.queue(&caller.queue)));
        events.push(AcdEvent::Bridge { caller: session.to_owned(), agent: agent.to_owned() });
        self.update_agent(store, agent, |rec| {
            rec.reservation = None;
            rec.state = State::InQueueCall;
            rec.calls_answered += 1;
            rec.no_answers_in_a_row = 0;
            rec.answered_at_ms = now;
            true
        })
        .await?;
        for other in others {
            events.push(AcdEvent::Cancel { caller: session.to_owned(), agent: other.clone() });
            self.release(store, session, &other, None, now, events).await?;
        }
        if let Some((caller, _)) = store.caller(session).await? {
            let position = self.spec(agent).and_then(|s| s.tier(&caller.queue)).map_or(0, |t| t.position);
            let mut memory = store.memory().await?.remove(&caller.queue).unwrap_or_default();
            memory.last_answered = Some(Mark { agent: agent.to_owned(), position });
            store.put_memory(&caller.queue, &memory).await?;
        }
        Ok(())
    }

    /// `agent` did not take `session`'s offer (rang out at the phone, busy, rejected).
    pub async fn declined(&self, store: &dyn AcdStore, session: &str, agent: &str, why: Decline, now: u64) -> Outcome {
        let mut events = Vec::new();
        let mut result = self.forget_offer(store, session, agent).await;
        if result.is_ok() {
            result = self.release(store, session, agent, Some(why), now, &mut events).await;
        }
        outcome(events, result)
    }

    /// Takes `agent` out of `session`'s offer (the caller waits again when none is left).
    async fn forget_offer(&self, store: &dyn AcdStore, session: &str, agent: &str) -> Result<(), StoreError> {
        for _ in 0..ATTEMPTS {
            let Some((mut caller, rev)) = store.caller(session).await? else { return Ok(()) };
            let CallerState::Offered { agents, router, since_ms, until_ms } = caller.state.clone() else { return Ok(()) };
            if !agents.iter().any(|a| a == agent) {
                return Ok(());
            }
            let rest: Vec<String> = agents.into_iter().filter(|a| a != agent).collect();
            caller.tried.insert(agent.to_owned());
            caller.state = if rest.is_empty() {
                CallerState::Waiting
            } else {
                CallerState::Offered { agents: rest, router, since_ms, until_ms }
            };
            match store.put_caller(&caller, Some(rev)).await {
                Err(StoreError::Conflict) => continue,
                other => return other.map(|_| ()),
            }
        }
        Ok(())
    }

    /// The caller hung up (or left by a key): an offer in progress is cancelled; a bridged
    /// call ends as `ended` does.
    pub async fn left(&self, store: &dyn AcdStore, session: &str, now: u64) -> Outcome {
        let mut events = Vec::new();
        let result = self.left_in(store, session, now, true, &mut events).await;
        outcome(events, result)
    }

    /// Takes the caller out of its queue; an abandoning caller's place is kept if
    /// `keep_place` and the queue says so.
    pub(super) async fn left_in(
        &self,
        store: &dyn AcdStore,
        session: &str,
        now: u64,
        keep_place: bool,
        events: &mut Vec<AcdEvent>,
    ) -> Result<(), StoreError> {
        for _ in 0..ATTEMPTS {
            let Some((caller, rev)) = store.caller(session).await? else { return Ok(()) };
            if let CallerState::Bridged { .. } = caller.state {
                return self.ended_in(store, session, now).await;
            }
            match store.delete_caller(session, rev).await {
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            events.push(AcdEvent::Abandoned { caller: session.to_owned() });
            self.count(&caller.queue, |c| c.abandoned += 1);
            if keep_place {
                self.keep_place(store, &caller, now).await?;
            }
            if let CallerState::Offered { agents, .. } = caller.state {
                for agent in agents {
                    events.push(AcdEvent::Cancel { caller: session.to_owned(), agent: agent.clone() });
                    self.release(store, session, &agent, None, now, events).await?;
                }
            }
            return Ok(());
        }
        Ok(())
    }

    /// A bridged call ended: the caller leaves the queue, the agent wraps up.
    pub async fn ended(&self, store: &dyn AcdStore, session: &str, now: u64) -> Outcome {
        outcome(Vec::new(), self.ended_in(store, session, now).await)
    }

    pub(super) async fn ended_in(&self, store: &dyn AcdStore, session: &str, now: u64) -> Result<(), StoreError> {
        let Some((caller, rev)) = store.caller(session).await? else { return Ok(()) };
        let CallerState::Bridged { agent } = &caller.state else { return Ok(()) };
        match store.delete_caller(session, rev).await {
            Err(StoreError::Conflict) => return Ok(()),
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        let wrap = self.spec(agent).and_then(|s| s.wrap_up_ms).or(self.queue(&caller.queue).map(|q| q.wrap_up_ms)).unwrap_or(0);
        self.update_agent(store, agent, |rec| {
            if rec.state != State::InQueueCall {
                return false;
            }
            rec.state = if wrap > 0 { State::WrapUp } else { State::Waiting };
            rec.talk_time_ms += now.saturating_sub(rec.answered_at_ms);
            rec.ready_at_ms = now + wrap;
            rec.idle_since_ms = now + wrap;
            true
        })
        .await?;
        Ok(())
    }

    /// The waiting caller pressed `digit`: the queue's exit key takes them out of the queue
    /// to its target (an offer in progress is cancelled); any other key does nothing.
    pub async fn key(&self, store: &dyn AcdStore, session: &str, digit: char, now: u64) -> Outcome {
        let mut events = Vec::new();
        let Ok(Some((caller, _))) = store.caller(session).await else { return Ok(events) };
        let Some((_, target)) = self.queue(&caller.queue).and_then(|q| q.exit_key.clone()).filter(|(k, _)| *k == digit) else {
            return Ok(events);
        };
        if matches!(caller.state, CallerState::Bridged { .. }) {
            return Ok(events);
        }
        let result = self.left_in(store, session, now, false, &mut events).await;
        // Taken out by a key, not abandoned: the caller goes on to the exit's target.
        events.retain(|e| !matches!(e, AcdEvent::Abandoned { .. }));
        events.push(AcdEvent::Overflow { caller: session.to_owned(), target });
        outcome(events, result)
    }

    /// Sets an agent's status (log in, out, break).
    pub async fn set_status(&self, store: &dyn AcdStore, agent: &str, status: Status, now: u64) -> Result<bool, StoreError> {
        self.update_agent(store, agent, |rec| {
            if rec.status != Status::Available && status == Status::Available {
                rec.idle_since_ms = now;
                rec.no_answers_in_a_row = 0;
            }
            rec.status = status;
            true
        })
        .await
    }
}
