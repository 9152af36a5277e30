//! Callers whose session node died go adrift until the session node that takes their call
//! over joins them again (`AcdJoin.resumed`), or for [`ADRIFT_MS`] at most. A caller waiting
//! or being offered keeps its place, its offer taken back (the agents' legs ringing died
//! with the node), and is offered to nobody meanwhile; a bridged caller stays with its
//! agent (both legs are taken over, and talk on in the caller's room). Nobody took it over
//! in time: it has left (its place kept for a call back, when the queue keeps places), or
//! its queue call ended (the agent wraps up).

use super::dispatcher::{ATTEMPTS, Acd, AcdEvent, Outcome, outcome};
use super::model::{CallerRecord, CallerState};
use super::store::{AcdStore, StoreError};

/// How long a caller stays adrift, at most: the session nodes take a dead node's calls
/// over ~3 s after its last heartbeat.
pub const ADRIFT_MS: u64 = 10_000;

impl Acd {
    /// The session node `node` died with its calls.
    pub async fn orphaned(&self, store: &dyn AcdStore, node: &str, now: u64) -> Outcome {
        let mut events = Vec::new();
        let mut result = Ok(());
        let callers = match store.callers().await {
            Ok(callers) => callers,
            Err(e) => return outcome(events, Err(e)),
        };
        for (caller, _) in callers.into_iter().filter(|(c, _)| c.owner == node) {
            result = self.reown(store, &caller.session, Some(node), None, now, &mut events).await.map(|_| ());
            if result.is_err() {
                break;
            }
        }
        outcome(events, result)
    }

    /// The session node that took over a caller's call joins it again (`caller`, as its
    /// report says, put through to `bridged` or waiting). A caller still in its queue keeps
    /// its place, its offer taken back; a bridged one stays with its agent. One the routers
    /// believe bridged but which was still waiting as it was recorded has lost its agent
    /// (whose leg was not recorded yet: the agent wraps up) and joins anew, as does a
    /// waiting caller no longer there (taking back the place it left, when the queue keeps
    /// places). A bridged caller whose queue call the routers ended meanwhile is let go
    /// (`Cancel` of its agent: its session hangs up).
    pub async fn rejoined(&self, store: &dyn AcdStore, caller: CallerRecord, bridged: Option<String>, now: u64) -> Outcome {
        let mut events = Vec::new();
        let result = self.rejoined_in(store, caller, bridged, now, &mut events).await;
        outcome(events, result)
    }

    async fn rejoined_in(
        &self,
        store: &dyn AcdStore,
        caller: CallerRecord,
        bridged: Option<String>,
        now: u64,
        events: &mut Vec<AcdEvent>,
    ) -> Result<(), StoreError> {
        let known = store.caller(&caller.session).await?.map(|(c, _)| c.state);
        let known_bridged = matches!(known, Some(CallerState::Bridged { .. }));
        if let Some(agent) = bridged {
            if !known_bridged || !self.reown(store, &caller.session, None, Some(&caller.owner), now, events).await? {
                events.push(AcdEvent::Cancel { caller: caller.session, agent });
            }
            return Ok(());
        }
        if known_bridged {
            self.ended_in(store, &caller.session, now).await?;
        }
        if self.reown(store, &caller.session, None, Some(&caller.owner), now, events).await? {
            return Ok(());
        }
        self.join_in(store, caller, events).await
    }

    /// Gives caller `session` to `owner` (`None`: adrift from `now`) if its owner is
    /// `from` (`None`: whoever), its offer taken back. False when there is no such caller.
    async fn reown(
        &self,
        store: &dyn AcdStore,
        session: &str,
        from: Option<&str>,
        owner: Option<&str>,
        now: u64,
        events: &mut Vec<AcdEvent>,
    ) -> Result<bool, StoreError> {
        for _ in 0..ATTEMPTS {
            let Some((mut caller, rev)) = store.caller(session).await? else { return Ok(false) };
            if from.is_some_and(|f| caller.owner != f) {
                return Ok(false);
            }
            let offered = match &caller.state {
                CallerState::Offered { agents, .. } => agents.clone(),
                _ => Vec::new(),
            };
            if !offered.is_empty() {
                caller.state = CallerState::Waiting;
            }
            caller.owner = owner.unwrap_or_default().to_owned();
            caller.adrift_since_ms = owner.is_none().then_some(now);
            match store.put_caller(&caller, Some(rev)).await {
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            for agent in offered {
                self.release(store, session, &agent, None, now, events).await?;
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// The callers of `callers` adrift for [`ADRIFT_MS`]: nobody took their call over (a
    /// bridged one's queue call ends: its agent wraps up).
    pub(super) async fn drop_adrift(
        &self,
        store: &dyn AcdStore,
        callers: &[CallerRecord],
        now: u64,
        events: &mut Vec<AcdEvent>,
    ) -> Result<(), StoreError> {
        for caller in callers.iter().filter(|c| c.adrift_since_ms.is_some_and(|t| now.saturating_sub(t) >= ADRIFT_MS)) {
            tracing::warn!(session = %caller.session, queue = %caller.queue, "no session node took the caller over: it has left");
            self.left_in(store, &caller.session, now, true, events).await?;
        }
        Ok(())
    }
}
