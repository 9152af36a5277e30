//! What a waiting caller hears at each of its queue's announcements: the queue's prompt,
//! then, if the queue says so, the caller's position ("you are caller number" 3) and the
//! expected wait ("your expected wait is" 4 "minutes"), spoken from prompt files in the
//! media nodes' prompt directory, as Asterisk's queue sounds are.
//!
//! The position counts the callers of the queue ahead in the order every router agrees
//! on (priority, then arrival), ringing or not. The expected wait assumes each staffed
//! agent takes a caller every average handling time (talk time per answered call, plus
//! the queue's wrap-up): the agents free now take the first callers, and each further
//! caller needs one more agent to finish. With no call answered yet there is no estimate,
//! and nothing is said about it.

use std::collections::BTreeMap;

use super::dispatcher::Acd;
use super::model::{AgentRecord, AgentSpec, CallerRecord, CallerState, QueueSpec, Status};
use super::store::{AcdStore, StoreError};

/// "You are caller number …"
pub const POSITION: &str = "queue-position.wav";
/// "Your expected wait is …"
pub const WAIT: &str = "queue-wait.wav";
/// "… minute." / "… minutes."
pub const MINUTE: &str = "queue-minute.wav";
pub const MINUTES: &str = "queue-minutes.wav";

/// Where a waiting caller stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// 1: next.
    pub position: usize,
    pub expected_wait_ms: Option<u64>,
}

/// The prompt files that say `n`: `digits/<n>.wav` for 0–20 and the tens, tens then
/// units up to 99, digit by digit beyond.
pub fn number(n: u64) -> Vec<String> {
    let file = |n: u64| format!("digits/{n}.wav");
    match n {
        0..=20 => vec![file(n)],
        21..=99 if n.is_multiple_of(10) => vec![file(n)],
        21..=99 => vec![file(n / 10 * 10), file(n % 10)],
        _ => n.to_string().chars().map(|d| format!("digits/{d}.wav")).collect(),
    }
}

/// Every prompt file a queue's announcements may play (checked at start).
pub fn prompts(queue: &QueueSpec) -> Vec<String> {
    let mut files: Vec<String> = queue.announce.iter().cloned().collect();
    if queue.announce_position || queue.announce_wait {
        files.extend((0..=20).chain((30..=90).step_by(10)).map(|n| format!("digits/{n}.wav")));
    }
    if queue.announce_position {
        files.push(POSITION.into());
    }
    if queue.announce_wait {
        files.extend([WAIT, MINUTE, MINUTES].map(String::from));
    }
    files
}

/// What the caller standing at `standing` hears, in order (empty: nothing).
pub fn playlist(queue: &QueueSpec, standing: Option<Standing>) -> Vec<String> {
    let mut files: Vec<String> = queue.announce.iter().cloned().collect();
    let Some(standing) = standing else { return files };
    if queue.announce_position {
        files.push(POSITION.into());
        files.extend(number(standing.position as u64));
    }
    if let (true, Some(ms)) = (queue.announce_wait, standing.expected_wait_ms) {
        let minutes = ms.div_ceil(60_000).max(1);
        files.push(WAIT.into());
        files.extend(number(minutes));
        files.push(if minutes == 1 { MINUTE } else { MINUTES }.into());
    }
    files
}

/// Where `session` stands in `queue` (`None`: not waiting there).
pub fn standing(
    queue: &QueueSpec,
    agents: &[AgentSpec],
    records: &BTreeMap<String, AgentRecord>,
    callers: &[CallerRecord],
    session: &str,
    now: u64,
) -> Option<Standing> {
    let mut line: Vec<&CallerRecord> =
        callers.iter().filter(|c| c.queue == queue.name && !matches!(c.state, CallerState::Bridged { .. })).collect();
    line.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    let position = line.iter().position(|c| c.session == session)? + 1;
    let tiered: Vec<&AgentRecord> =
        agents.iter().filter(|a| a.tier(&queue.name).is_some()).filter_map(|a| records.get(&a.id)).collect();
    let (talk, answered) = tiered.iter().fold((0, 0), |(t, n), r| (t + r.talk_time_ms, n + r.calls_answered));
    let staffed = tiered.iter().filter(|r| r.status == Status::Available).count() as u64;
    let free = tiered.iter().filter(|r| r.free(now)).count() as u64;
    let expected_wait_ms = (answered > 0 && staffed > 0).then(|| {
        let handling = talk / answered + queue.wrap_up_ms;
        (position as u64).saturating_sub(free) * handling / staffed
    });
    Some(Standing { position, expected_wait_ms })
}

impl Acd {
    /// What `session`'s caller hears now at its queue's announcement.
    pub async fn announcement(&self, store: &dyn AcdStore, session: &str, now: u64) -> Result<Vec<String>, StoreError> {
        let callers: Vec<CallerRecord> = store.callers().await?.into_iter().map(|(c, _)| c).collect();
        let Some(queue) = callers.iter().find(|c| c.session == session).and_then(|c| self.queue(&c.queue)) else {
            return Ok(Vec::new());
        };
        let records = store.agents().await?.into_iter().map(|(id, (r, _))| (id, r)).collect();
        let (_, agents) = self.served();
        Ok(playlist(queue, standing(queue, agents, &records, &callers, session, now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::model::{State, Tier};
    use crate::acd::strategy::Strategy;

    #[test]
    fn numbers_are_said_as_prompts_do() {
        let said = |n| number(n).join(" ");
        assert_eq!(said(7), "digits/7.wav");
        assert_eq!(said(20), "digits/20.wav");
        assert_eq!(said(40), "digits/40.wav");
        assert_eq!(said(42), "digits/40.wav digits/2.wav");
        assert_eq!(said(105), "digits/1.wav digits/0.wav digits/5.wav");
    }

    #[test]
    fn position_and_expected_wait_from_the_records() {
        let mut queue = QueueSpec::new("q", Strategy::LongestIdleAgent);
        queue.announce = Some("hold.wav".into());
        (queue.announce_position, queue.announce_wait, queue.wrap_up_ms) = (true, true, 30_000);
        let tier = |id: &str| AgentSpec::new(id, vec![Tier { queue: "q".into(), level: 1, position: 1 }]);
        let agents = vec![tier("a"), tier("b"), AgentSpec::new("elsewhere", vec![])];
        let mut records = BTreeMap::new();
        // Agent a: 4 calls in 8 minutes of talk, talking now; b: on break; 5 minutes + 30 s
        // wrap-up per call.
        let mut a = AgentRecord::new(Status::Available, 0);
        (a.state, a.calls_answered, a.talk_time_ms) = (State::InQueueCall, 4, 8 * 60_000);
        records.insert("a".to_owned(), a);
        records.insert("b".to_owned(), AgentRecord::new(Status::OnBreak, 0));
        let mut callers: Vec<CallerRecord> = (0..4).map(|i| CallerRecord::new(&format!("c{i}"), "q", 0, 1_000 * i)).collect();
        callers[3].priority = 1; // ahead of everyone
        callers.push(CallerRecord::new("other-queue", "r", 9, 0));
        let standing_of =
            |records: &BTreeMap<String, AgentRecord>, s: &str| standing(&queue, &agents, records, &callers, s, 10_000).unwrap();
        let at = |s: &str| standing_of(&records, s);
        // c3 first (priority), then c0, c1, c2; one staffed agent, none free: 2.5 min each.
        assert_eq!(at("c3"), Standing { position: 1, expected_wait_ms: Some(150_000) });
        assert_eq!(at("c1"), Standing { position: 3, expected_wait_ms: Some(450_000) });
        assert_eq!(playlist(&queue, Some(at("c1"))), ["hold.wav", POSITION, "digits/3.wav", WAIT, "digits/8.wav", MINUTES]);
        assert_eq!(playlist(&queue, Some(at("c3"))).last().map(String::as_str), Some(MINUTES));
        // A free agent takes the first caller at once: "1 minute" at the least, never 0.
        records.get_mut("a").unwrap().state = State::Waiting;
        assert_eq!(standing_of(&records, "c3").expected_wait_ms, Some(0));
        assert_eq!(playlist(&queue, Some(standing_of(&records, "c3")))[3..], [WAIT, "digits/1.wav", MINUTE]);
        // No call answered yet: no estimate, and nothing said about it.
        records.get_mut("a").unwrap().calls_answered = 0;
        assert_eq!(playlist(&queue, Some(standing_of(&records, "c0"))), ["hold.wav", POSITION, "digits/2.wav"]);
        assert!(standing(&queue, &agents, &records, &callers, "other-queue", 0).is_none());
    }
}
