//! Which agents a waiting caller is offered to, in which order: every strategy of
//! FreeSWITCH's mod_callcenter and app_queue's `rrmemory`, `linear` and `wrandom`. A
//! strategy orders the eligible agents (already filtered: available, idle, skilled, their
//! tier level open); tiers come first — a lower level before a higher one, a lower penalty
//! before a higher one — and the strategy orders agents within the same level and penalty.
//! `ring-all` offers the caller to all of them at once, `ring-progressively` to one more
//! every ring interval; the others to one at a time, in order.

use std::str::FromStr;

/// How a queue picks its agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Every eligible agent at once; the first to answer takes the call.
    RingAll,
    /// The agent idle the longest.
    LongestIdleAgent,
    /// By tier position, starting after the agent offered last (mod_callcenter).
    RoundRobin,
    /// By tier position, from the first, for every caller.
    TopDown,
    /// The agent with the least talk time so far.
    AgentWithLeastTalkTime,
    /// The agent who answered the fewest calls so far.
    AgentWithFewestCalls,
    /// By tier level, then position (mod_callcenter's `sequentially-by-agent-order`).
    SequentiallyByAgentOrder,
    /// In random order.
    Random,
    /// As `top-down`, one more agent rung every ring interval while the earlier ones keep ringing.
    RingProgressively,
    /// Round robin remembering where the last caller was answered (app_queue).
    RrMemory,
    /// In the order the agents are configured (app_queue's `linear`).
    Linear,
    /// Random, weighted by penalty: a lower penalty is likelier first (app_queue's `wrandom`).
    WRandom,
}

impl Strategy {
    pub const ALL: [Strategy; 12] = [
        Strategy::RingAll,
        Strategy::LongestIdleAgent,
        Strategy::RoundRobin,
        Strategy::TopDown,
        Strategy::AgentWithLeastTalkTime,
        Strategy::AgentWithFewestCalls,
        Strategy::SequentiallyByAgentOrder,
        Strategy::Random,
        Strategy::RingProgressively,
        Strategy::RrMemory,
        Strategy::Linear,
        Strategy::WRandom,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::RingAll => "ring-all",
            Strategy::LongestIdleAgent => "longest-idle-agent",
            Strategy::RoundRobin => "round-robin",
            Strategy::TopDown => "top-down",
            Strategy::AgentWithLeastTalkTime => "agent-with-least-talk-time",
            Strategy::AgentWithFewestCalls => "agent-with-fewest-calls",
            Strategy::SequentiallyByAgentOrder => "sequentially-by-agent-order",
            Strategy::Random => "random",
            Strategy::RingProgressively => "ring-progressively",
            Strategy::RrMemory => "rrmemory",
            Strategy::Linear => "linear",
            Strategy::WRandom => "wrandom",
        }
    }

    /// Whether the caller is offered to several agents at once.
    pub fn rings_many(self) -> bool {
        matches!(self, Strategy::RingAll | Strategy::RingProgressively)
    }
}

impl FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Strategy, String> {
        Strategy::ALL.into_iter().find(|st| st.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
            format!("unknown strategy {s:?} (one of {})", names.join(", "))
        })
    }
}

/// An eligible agent, as a strategy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub agent: String,
    /// Tier level in this queue (lower first) and position within it.
    pub level: u32,
    pub position: u32,
    /// Lower first; `wrandom` weighs by it.
    pub penalty: u32,
    /// The agent's index in the configuration (`linear`).
    pub order: u32,
    /// Since when the agent has been idle (ms on the ACD's clock).
    pub idle_since_ms: u64,
    pub talk_time_ms: u64,
    pub calls_answered: u64,
}

/// An agent and its tier position, remembered by a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub agent: String,
    pub position: u32,
}

/// What a queue remembers between callers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    /// The agent offered the last caller (`round-robin`).
    pub last_offered: Option<Mark>,
    /// The agent who answered the last caller (`rrmemory`).
    pub last_answered: Option<Mark>,
}

/// The candidates in the order `strategy` offers them. `random(n)` draws in `0..n`.
pub fn order(
    strategy: Strategy,
    mut candidates: Vec<Candidate>,
    memory: &Memory,
    mut random: impl FnMut(u64) -> u64,
) -> Vec<Candidate> {
    let tier = |c: &Candidate| (c.level, c.penalty);
    match strategy {
        Strategy::RingAll | Strategy::TopDown | Strategy::RingProgressively | Strategy::SequentiallyByAgentOrder => {
            candidates.sort_by(|a, b| tier(a).cmp(&tier(b)).then(a.position.cmp(&b.position)).then(a.agent.cmp(&b.agent)));
        }
        Strategy::LongestIdleAgent => {
            candidates
                .sort_by(|a, b| tier(a).cmp(&tier(b)).then(a.idle_since_ms.cmp(&b.idle_since_ms)).then(a.agent.cmp(&b.agent)));
        }
        Strategy::AgentWithLeastTalkTime => {
            candidates
                .sort_by(|a, b| tier(a).cmp(&tier(b)).then(a.talk_time_ms.cmp(&b.talk_time_ms)).then(a.agent.cmp(&b.agent)));
        }
        Strategy::AgentWithFewestCalls => {
            candidates
                .sort_by(|a, b| tier(a).cmp(&tier(b)).then(a.calls_answered.cmp(&b.calls_answered)).then(a.agent.cmp(&b.agent)));
        }
        Strategy::Linear => candidates.sort_by(|a, b| tier(a).cmp(&tier(b)).then(a.order.cmp(&b.order))),
        Strategy::RoundRobin | Strategy::RrMemory => {
            let last = if strategy == Strategy::RoundRobin { &memory.last_offered } else { &memory.last_answered };
            candidates.sort_by(|a, b| tier(a).cmp(&tier(b)).then(a.position.cmp(&b.position)).then(a.agent.cmp(&b.agent)));
            rotate_after(&mut candidates, last.as_ref());
        }
        Strategy::Random => {
            let keys: Vec<u64> = candidates.iter().map(|_| random(u64::MAX)).collect();
            sort_by_keys(&mut candidates, keys, |c| tier(c));
        }
        Strategy::WRandom => {
            // app_queue: each member draws in 0..(penalty + 1) * 1000, the lowest first.
            let keys: Vec<u64> = candidates.iter().map(|c| random((u64::from(c.penalty) + 1) * 1000)).collect();
            sort_by_keys(&mut candidates, keys, |c| (c.level, 0));
        }
    }
    candidates
}

/// Within the first tier (level and penalty), starts after `last`: the agent placed after
/// it first (whether or not `last` is still eligible), wrapping round; other tiers keep
/// their order.
fn rotate_after(candidates: &mut [Candidate], last: Option<&Mark>) {
    let (Some(first), Some(last)) = (candidates.first().map(|c| (c.level, c.penalty)), last) else { return };
    let same = candidates.iter().take_while(|c| (c.level, c.penalty) == first).count();
    let group = &mut candidates[..same];
    let after = |c: &Candidate| (c.position, c.agent.as_str()) > (last.position, last.agent.as_str());
    let at = group.iter().position(after).unwrap_or(0);
    group.rotate_left(at);
}

fn sort_by_keys<K: Ord>(candidates: &mut Vec<Candidate>, keys: Vec<u64>, group: impl Fn(&Candidate) -> K) {
    let mut keyed: Vec<(Candidate, u64)> = std::mem::take(candidates).into_iter().zip(keys).collect();
    keyed.sort_by(|(a, ka), (b, kb)| group(a).cmp(&group(b)).then(ka.cmp(kb)).then(a.agent.cmp(&b.agent)));
    *candidates = keyed.into_iter().map(|(c, _)| c).collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str, position: u32, idle: u64, talk: u64, calls: u64) -> Candidate {
        Candidate {
            agent: name.into(),
            level: 1,
            position,
            penalty: 0,
            order: position,
            idle_since_ms: idle,
            talk_time_ms: talk,
            calls_answered: calls,
        }
    }

    fn names(c: &[Candidate]) -> Vec<&str> {
        c.iter().map(|c| c.agent.as_str()).collect()
    }

    /// a, b, c, d at positions 1-4: idle since 300/100/400/200, talk 50/10/40/30 s, calls
    /// 5/9/1/3.
    fn four() -> Vec<Candidate> {
        vec![agent("c", 3, 400, 40, 1), agent("a", 1, 300, 50, 5), agent("d", 4, 200, 30, 3), agent("b", 2, 100, 10, 9)]
    }

    #[test]
    fn each_strategy_against_a_table_of_expected_choices() {
        let mark = |agent: &str, position| Some(Mark { agent: agent.into(), position });
        let memory = Memory { last_offered: mark("b", 2), last_answered: mark("c", 3) };
        let table: [(Strategy, [&str; 4]); 10] = [
            (Strategy::RingAll, ["a", "b", "c", "d"]),
            (Strategy::TopDown, ["a", "b", "c", "d"]),
            (Strategy::RingProgressively, ["a", "b", "c", "d"]),
            (Strategy::SequentiallyByAgentOrder, ["a", "b", "c", "d"]),
            (Strategy::LongestIdleAgent, ["b", "d", "a", "c"]),
            (Strategy::AgentWithLeastTalkTime, ["b", "d", "c", "a"]),
            (Strategy::AgentWithFewestCalls, ["c", "d", "a", "b"]),
            (Strategy::RoundRobin, ["c", "d", "a", "b"]),
            (Strategy::RrMemory, ["d", "a", "b", "c"]),
            (Strategy::Linear, ["a", "b", "c", "d"]),
        ];
        for (strategy, expected) in table {
            assert_eq!(names(&order(strategy, four(), &memory, |_| 0)), expected, "{}", strategy.name());
        }
    }

    #[test]
    fn lower_tiers_and_penalties_come_first_whatever_the_strategy() {
        let mut agents = four();
        agents[1].level = 2; // a
        agents[3].penalty = 5; // b
        for strategy in Strategy::ALL {
            let chosen = order(strategy, agents.clone(), &Memory::default(), |n| n / 2);
            let ordered = names(&chosen);
            assert_eq!(ordered.last(), Some(&"a"), "{}: level 2 last: {ordered:?}", strategy.name());
            if strategy != Strategy::WRandom {
                assert_eq!(ordered[2], "b", "{}: the penalty after its level: {ordered:?}", strategy.name());
            }
        }
    }

    #[test]
    fn random_strategies_follow_their_draws_and_wrandom_weighs_by_penalty() {
        // Draws go to c, a, d, b (the input's order): the lowest first.
        let mut draws = [10u64, 40, 20, 30].into_iter();
        assert_eq!(names(&order(Strategy::Random, four(), &Memory::default(), |_| draws.next().unwrap())), ["c", "d", "b", "a"]);
        let mut agents = four();
        agents.iter_mut().for_each(|a| a.penalty = a.position - 1);
        let mut bounds = Vec::new();
        order(Strategy::WRandom, agents, &Memory::default(), |n| {
            bounds.push(n);
            0
        });
        assert_eq!(bounds, [3000, 1000, 4000, 2000], "each draws within (penalty + 1) × 1000");
        assert_eq!("wrandom".parse::<Strategy>(), Ok(Strategy::WRandom));
        assert!("fastest".parse::<Strategy>().unwrap_err().contains("ring-all"));
    }

    #[test]
    fn round_robin_continues_after_an_agent_no_longer_eligible() {
        let memory = Memory { last_offered: Some(Mark { agent: "bb".into(), position: 2 }), last_answered: None };
        let ordered = order(Strategy::RoundRobin, four(), &memory, |_| 0);
        assert_eq!(names(&ordered), ["c", "d", "a", "b"]);
    }
}
