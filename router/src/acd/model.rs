//! What the ACD knows: queues and agents as configured (`QueueSpec`, `AgentSpec`), and the
//! records that change as calls come and go (`AgentRecord`, `CallerRecord`) — the values
//! every router reads and writes, by compare-and-set, in the shared store. Times are
//! milliseconds on the ACD's clock (the Unix clock in a cluster, a virtual one in tests).

use std::collections::BTreeSet;

use super::skills::{Requirement, Skills};
use super::strategy::{Memory, Strategy};

/// Where a caller goes when the queue gives up on them (max wait, max length, exit key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overflow {
    /// Another queue.
    Queue(String),
    /// A SIP URI (voicemail, another site).
    Uri(String),
    /// A refusal with this status (e.g. 486, 480).
    Refuse(u16),
}

/// A queue as configured.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub name: String,
    pub strategy: Strategy,
    /// How long an offer rings before it is a no-answer.
    pub ring_ms: u64,
    /// `ring-progressively`: one more agent every this long.
    pub progressive_ms: u64,
    /// Longest wait before `overflow` (0: none).
    pub max_wait_ms: u64,
    /// Callers waiting at most (0: no limit); one more goes to `overflow`.
    pub max_len: usize,
    pub overflow: Overflow,
    /// A DTMF digit that leaves the queue, and where to.
    pub exit_key: Option<(char, Overflow)>,
    /// Answered within this long counts toward the service level.
    pub service_level_ms: u64,
    /// Tier rules: level `n` opens after `(n - 1) ×` this much waiting (`None`: all open).
    pub tier_wait_ms: Option<u64>,
    pub wrap_up_ms: u64,
    /// Agents already on a call may be offered (else never).
    pub ring_in_use: bool,
    /// What every agent of the queue must have.
    pub requires: Option<Requirement>,
    /// A caller who hangs up and calls back within this long resumes their place (0: no).
    pub resume_ms: u64,
    /// The prompt a waiting caller hears at each announcement, and whether the caller's
    /// position and expected wait follow it (`announce.rs`).
    pub announce: Option<String>,
    pub announce_position: bool,
    pub announce_wait: bool,
}

impl QueueSpec {
    /// A queue with the defaults operators expect: 15 s rings, no limits, 20 s service level.
    pub fn new(name: &str, strategy: Strategy) -> QueueSpec {
        QueueSpec {
            name: name.into(),
            strategy,
            ring_ms: 15_000,
            progressive_ms: 10_000,
            max_wait_ms: 0,
            max_len: 0,
            overflow: Overflow::Refuse(480),
            exit_key: None,
            service_level_ms: 20_000,
            tier_wait_ms: None,
            wrap_up_ms: 0,
            ring_in_use: false,
            requires: None,
            resume_ms: 0,
            announce: None,
            announce_position: false,
            announce_wait: false,
        }
    }
}

/// An agent's place in one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub queue: String,
    pub level: u32,
    pub position: u32,
}

/// An agent as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    /// The agent's name; for a SIP user, the user it registers as.
    pub id: String,
    /// Where to ring them: `None` for the contacts `id` registered, else a URI.
    pub contact: Option<String>,
    pub tiers: Vec<Tier>,
    pub skills: Skills,
    pub penalty: u32,
    /// Unanswered offers in a row before the agent is put on break.
    pub max_no_answer: u32,
    /// After an offer not answered, declined (busy), or rejected: not offered for this long.
    pub no_answer_delay_ms: u64,
    pub busy_delay_ms: u64,
    pub reject_delay_ms: u64,
    /// Overrides the queue's wrap-up time.
    pub wrap_up_ms: Option<u64>,
}

impl AgentSpec {
    pub fn new(id: &str, tiers: Vec<Tier>) -> AgentSpec {
        AgentSpec {
            id: id.into(),
            contact: None,
            tiers,
            skills: Skills::new(),
            penalty: 0,
            max_no_answer: 3,
            no_answer_delay_ms: 0,
            busy_delay_ms: 0,
            reject_delay_ms: 0,
            wrap_up_ms: None,
        }
    }

    pub fn tier(&self, queue: &str) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.queue == queue)
    }
}

/// Whether the agent works (mod_callcenter's status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    LoggedOut,
    Available,
    OnBreak,
}

/// What the agent is doing (mod_callcenter's state; `Reserved` is TaskRouter's pending
/// reservation, before the agent's phone rings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Waiting,
    Reserved,
    Receiving,
    InQueueCall,
    WrapUp,
}

/// An offer held on an agent: the caller, the router that made it, and when it lapses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub caller: String,
    pub router: String,
    pub expires_ms: u64,
}

/// An agent's changing record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub status: Status,
    pub state: State,
    pub reservation: Option<Reservation>,
    /// On a call that is not a queue call (ring-in-use).
    pub busy_elsewhere: bool,
    /// Not offered before this (wrap-up, busy, reject and no-answer delays).
    pub ready_at_ms: u64,
    pub idle_since_ms: u64,
    pub talk_time_ms: u64,
    pub calls_answered: u64,
    pub no_answers_in_a_row: u32,
    /// When the current queue call was answered.
    pub answered_at_ms: u64,
}

impl AgentRecord {
    pub fn new(status: Status, now_ms: u64) -> AgentRecord {
        AgentRecord {
            status,
            state: State::Waiting,
            reservation: None,
            busy_elsewhere: false,
            ready_at_ms: 0,
            idle_since_ms: now_ms,
            talk_time_ms: 0,
            calls_answered: 0,
            no_answers_in_a_row: 0,
            answered_at_ms: 0,
        }
    }

    /// Free for an offer now (the caller's queue decides about `busy_elsewhere`): available,
    /// idle (a wrap-up ends by itself at `ready_at_ms`), no offer pending.
    pub fn free(&self, now_ms: u64) -> bool {
        let idle = matches!(self.state, State::Waiting | State::WrapUp);
        self.status == Status::Available && idle && !self.reserved(now_ms) && self.ready_at_ms <= now_ms
    }

    /// An offer is pending on the agent (not lapsed).
    pub fn reserved(&self, now_ms: u64) -> bool {
        self.reservation.as_ref().is_some_and(|r| r.expires_ms > now_ms)
    }
}

/// Where a caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerState {
    Waiting,
    /// Offered to these agents (since `since_ms`) until the offer lapses.
    Offered {
        agents: Vec<String>,
        router: String,
        since_ms: u64,
        until_ms: u64,
    },
    /// Talking to an agent.
    Bridged {
        agent: String,
    },
}

/// A caller in a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerRecord {
    /// The session of the call.
    pub session: String,
    pub queue: String,
    /// Higher first.
    pub priority: u32,
    pub joined_ms: u64,
    /// What this call requires besides the queue (TaskRouter's per-task expression).
    pub requires: Option<String>,
    pub state: CallerState,
    /// Agents who did not answer this caller (not offered again to them).
    pub tried: BTreeSet<String>,
    /// Who is calling (the caller's address, lower case; empty: anonymous), for a queue
    /// that keeps an abandoned caller's place.
    pub who: String,
    /// The session node that runs the caller's call (empty: unknown).
    pub owner: String,
    /// Since when the caller has had no owner: its node died and no other has taken the
    /// call over yet (`adrift.rs`); offered to nobody meanwhile.
    pub adrift_since_ms: Option<u64>,
}

impl CallerRecord {
    pub fn new(session: &str, queue: &str, priority: u32, joined_ms: u64) -> CallerRecord {
        CallerRecord {
            session: session.into(),
            queue: queue.into(),
            priority,
            joined_ms,
            requires: None,
            state: CallerState::Waiting,
            tried: BTreeSet::new(),
            who: String::new(),
            owner: String::new(),
            adrift_since_ms: None,
        }
    }

    /// Queue order: higher priority, then longer waiting, then session (a total order every
    /// router agrees on).
    pub fn order_key(&self) -> (std::cmp::Reverse<u32>, u64, &str) {
        (std::cmp::Reverse(self.priority), self.joined_ms, &self.session)
    }
}

/// Where a caller who hung up before an agent answered stood in a queue, kept for the
/// queue's `resume_ms`: calling back before `expires_ms` takes this place again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub joined_ms: u64,
    pub priority: u32,
    pub expires_ms: u64,
}

/// A queue's shared memory (round-robin position).
pub type QueueMemory = Memory;
