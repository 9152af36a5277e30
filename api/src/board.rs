//! The wallboard's data: each queue and each agent as they stand, as one JSON snapshot
//! (Amazon Connect's real-time metrics: contacts in queue, oldest contact, agents available /
//! on contact / after-contact work / on break, service level, answered and abandoned
//! today, average speed of answer), and a stream of snapshots that follows the event feed:
//! one at once, then one after each burst of events (and every few seconds, so a board
//! that missed nothing still refreshes its figures of the day).

use std::time::Duration;

use cluster::journal::{Log, Start};
use contracts::{AgentState, AgentStatus};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::agents::AgentsApi;

/// Events closer together than this make one snapshot.
const BURST: Duration = Duration::from_millis(200);
/// A snapshot at least this often.
const REFRESH: Duration = Duration::from_secs(5);

/// An agent's status as people say it (`available`, `on-break`, `logged-out`).
pub fn status(s: i32) -> &'static str {
    match AgentStatus::try_from(s) {
        Ok(AgentStatus::Available) => "available",
        Ok(AgentStatus::OnBreak) => "on-break",
        _ => "logged-out",
    }
}

fn state(s: i32) -> &'static str {
    match AgentState::try_from(s) {
        // Offered a caller: its phone rings.
        Ok(AgentState::Reserved | AgentState::Receiving) => "ringing",
        Ok(AgentState::InQueueCall) => "on-call",
        Ok(AgentState::WrapUp) => "wrap-up",
        _ => "idle",
    }
}

impl AgentsApi {
    /// The queues and agents now, as the wallboard shows them.
    pub async fn snapshot(&self) -> Result<Value, tonic::Status> {
        let levels = self.service_levels();
        let queues: Vec<Value> = self
            .queues()
            .await?
            .iter()
            .map(|q| {
                let level = levels.get(&q.queue).copied().unwrap_or(0);
                let percent = match q.answered + q.abandoned {
                    0 => Value::Null,
                    n => json!((q.answered_within_service_level * 1000 / n) as f64 / 10.0),
                };
                json!({
                    "queue": q.queue,
                    "waiting": q.waiting + q.offered,
                    "longest_wait_ms": q.longest_wait_ms,
                    "talking": q.talking,
                    "agents_available": q.agents_idle,
                    "agents_on_call": q.agents_talking + q.agents_ringing,
                    "agents_wrap_up": q.agents_wrap_up,
                    "agents_on_break": q.agents_on_break,
                    "agents_logged_out": q.agents_logged_out,
                    "answered": q.answered,
                    "answered_within_service_level": q.answered_within_service_level,
                    "service_level_ms": level,
                    "service_level_percent": percent,
                    "abandoned": q.abandoned,
                    "average_speed_of_answer_ms": q.average_speed_of_answer_ms,
                })
            })
            .collect();
        let agents: Vec<Value> = self
            .agents()
            .await?
            .iter()
            .map(|a| {
                // An available agent's state is what it does; otherwise its status is.
                let shown = if a.status == AgentStatus::Available as i32 { state(a.state) } else { status(a.status) };
                json!({
                    "agent": a.agent,
                    "status": status(a.status),
                    "state": shown,
                    "state_since_ms": a.state_since_ms,
                    "queues": a.queues,
                    "calls_answered": a.calls_answered,
                })
            })
            .collect();
        Ok(json!({"now_ms": contracts::unix_ms(), "queues": queues, "agents": agents}))
    }

    /// Snapshots as the feed moves: one now, then after each burst of events, and every
    /// few seconds. Ends when the feed cannot be read.
    pub fn updates(&self) -> impl Stream<Item = Value> + Send + 'static {
        let board = self.clone();
        futures::stream::unfold(None, move |feed| {
            let board = board.clone();
            async move {
                let mut feed = match feed {
                    // The first: at once.
                    None => board.journal().read(Log::Events, Start::New, true).await.ok()?,
                    Some(mut feed) => {
                        wait_for_news(&mut feed).await?;
                        feed
                    }
                };
                // A snapshot that fails (the registry away for a moment) is skipped.
                loop {
                    match board.snapshot().await {
                        Ok(snapshot) => return Some((snapshot, Some(feed))),
                        Err(e) => tracing::debug!(error = %e, "wallboard snapshot not taken"),
                    }
                    wait_for_news(&mut feed).await?;
                }
            }
        })
    }
}

/// Waits for an event (and the rest of its burst), or the refresh time; `None` when the
/// feed ended.
async fn wait_for_news(feed: &mut cluster::journal::Entries) -> Option<()> {
    match tokio::time::timeout(REFRESH, feed.next()).await {
        Ok(None) | Ok(Some(Err(_))) => return None,
        Ok(Some(Ok(_))) | Err(_) => {}
    }
    let burst_end = tokio::time::Instant::now() + BURST;
    while let Ok(next) = tokio::time::timeout_at(burst_end, feed.next()).await {
        next?.ok()?;
    }
    Some(())
}
