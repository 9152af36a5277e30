//! Callers whose session node died. A bridged call ends with its node (the agent's leg
//! died with it; the agent wraps up). A caller waiting, or being offered, goes adrift: the
//! offer is taken back (the agents' legs died too), it keeps its place, and it is offered
//! to nobody until the session node that takes its call over joins it again
//! (`AcdJoin.resumed`), or for [`ADRIFT_MS`] at most: then nobody did, and it has left (its
//! place kept for a call back, when the queue keeps places).

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
            result = match caller.state {
                CallerState::Bridged { .. } => self.ended_in(store, &caller.session, now).await,
                _ => self.reown(store, &caller.session, Some(node), None, now, &mut events).await.map(|_| ()),
            };
            if result.is_err() {
                break;
            }
        }
        outcome(events, result)
    }

    /// The session node that took over a caller's call joins it again (`caller`, as its
    /// report says): a caller still in its queue keeps its place, its offer taken back; one
    /// the routers believe bridged has lost its agent (the leg died with the node: the agent
    /// wraps up) and joins anew, as does one no longer there (taking back the place it left,
    /// when the queue keeps places).
    pub async fn rejoined(&self, store: &dyn AcdStore, caller: CallerRecord, now: u64) -> Outcome {
        let mut events = Vec::new();
        let result = self.rejoined_in(store, caller, now, &mut events).await;
        outcome(events, result)
    }

    async fn rejoined_in(
        &self,
        store: &dyn AcdStore,
        caller: CallerRecord,
        now: u64,
        events: &mut Vec<AcdEvent>,
    ) -> Result<(), StoreError> {
        if let Some((known, _)) = store.caller(&caller.session).await?
            && matches!(known.state, CallerState::Bridged { .. })
        {
            self.ended_in(store, &caller.session, now).await?;
        }
        if self.reown(store, &caller.session, None, Some(&caller.owner), now, events).await? {
            return Ok(());
        }
        self.join_in(store, caller, events).await
    }

    /// Gives caller `session` to `owner` (`None`: adrift from `now`) if its owner is
    /// `from` (`None`: whoever), its offer taken back. False when there is no such caller
    /// waiting or offered.
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
            if from.is_some_and(|f| caller.owner != f) || matches!(caller.state, CallerState::Bridged { .. }) {
                return Ok(false);
            }
            let offered = match std::mem::replace(&mut caller.state, CallerState::Waiting) {
                CallerState::Offered { agents, .. } => agents,
                _ => Vec::new(),
            };
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

    /// The callers of `callers` adrift for [`ADRIFT_MS`]: nobody took their call over.
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
