//! What should happen next, from a snapshot of the shared records: a pure function every
//! router computes alike. Offers that lapsed are taken back; callers who waited too long
//! overflow; then waiting callers, in the global order (priority, then arrival), each take
//! the best eligible agents no earlier caller took — eligible meaning free, tiered in the
//! caller's queue at a level already open, skilled as the queue and the call require, and
//! not one who already let this caller ring out. The router applies the plan by
//! compare-and-set (`dispatcher.rs`), so two routers planning alike cannot both succeed.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{AgentRecord, AgentSpec, CallerRecord, CallerState, Overflow, QueueSpec};
use super::skills::Requirement;
use super::strategy::{self, Candidate, Memory, Strategy};

/// The snapshot a plan is made from.
pub struct View<'a> {
    pub now_ms: u64,
    pub queues: &'a BTreeMap<String, QueueSpec>,
    /// In configuration order.
    pub agents: &'a [AgentSpec],
    pub records: &'a BTreeMap<String, AgentRecord>,
    pub callers: &'a [CallerRecord],
    pub memory: &'a BTreeMap<String, Memory>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Offer `caller` to `agents` (more of them, for an offer already ringing).
    Offer { caller: String, agents: Vec<String> },
    /// The offer to `caller` lapsed unanswered.
    Lapse { caller: String },
    /// `caller` leaves the queue for `target`.
    Overflow { caller: String, target: Overflow },
}

/// What a caller requires of skills, parsed (`Err`: unreadable, so no agent qualifies).
pub fn caller_requires(caller: &CallerRecord) -> Result<Option<Requirement>, String> {
    caller.requires.as_deref().map(Requirement::parse).transpose()
}

/// Whether the agent `spec` (record `rec`) may be offered `caller` of `queue` (requiring
/// `needs`) now.
pub fn eligible(
    view: &View,
    queue: &QueueSpec,
    caller: &CallerRecord,
    needs: &Result<Option<Requirement>, String>,
    spec: &AgentSpec,
    rec: &AgentRecord,
) -> bool {
    let Some(tier) = spec.tier(&queue.name) else { return false };
    let waited = view.now_ms.saturating_sub(caller.joined_ms);
    let level_open = queue.tier_wait_ms.is_none_or(|w| u64::from(tier.level.saturating_sub(1)) * w <= waited);
    let free = rec.free(view.now_ms) && (queue.ring_in_use || !rec.busy_elsewhere);
    let skilled = queue.requires.as_ref().is_none_or(|r| r.met_by(&spec.skills))
        && needs.as_ref().is_ok_and(|r| r.as_ref().is_none_or(|r| r.met_by(&spec.skills)));
    level_open && free && skilled && !caller.tried.contains(&spec.id)
}

/// The plan for `view`; `random(n)` draws in `0..n` (random strategies).
pub fn plan(view: &View, mut random: impl FnMut(u64) -> u64) -> Vec<Intent> {
    let now = view.now_ms;
    let mut out = Vec::new();
    let mut callers: Vec<&CallerRecord> = view.callers.iter().collect();
    callers.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    // Agents held by an offer: not offered again in this plan.
    let mut taken: BTreeSet<&str> = view.records.iter().filter(|(_, r)| r.reserved(now)).map(|(id, _)| id.as_str()).collect();
    // A caller adrift (its node died) waits for whoever takes its call over.
    for caller in callers.into_iter().filter(|c| c.adrift_since_ms.is_none()) {
        let Some(queue) = view.queues.get(&caller.queue) else { continue };
        match &caller.state {
            CallerState::Offered { until_ms, .. } if *until_ms <= now => {
                out.push(Intent::Lapse { caller: caller.session.clone() });
            }
            CallerState::Offered { agents, since_ms, .. } if queue.strategy == Strategy::RingProgressively => {
                let due = 1 + now.saturating_sub(*since_ms) / queue.progressive_ms.max(1);
                if (agents.len() as u64) < due
                    && let Some(next) = choose(view, queue, caller, &taken, &mut random).into_iter().next()
                {
                    taken.insert(next);
                    out.push(Intent::Offer { caller: caller.session.clone(), agents: vec![next.to_owned()] });
                }
            }
            CallerState::Waiting if queue.max_wait_ms > 0 && now.saturating_sub(caller.joined_ms) >= queue.max_wait_ms => {
                out.push(Intent::Overflow { caller: caller.session.clone(), target: queue.overflow.clone() });
            }
            CallerState::Waiting => {
                let chosen = choose(view, queue, caller, &taken, &mut random);
                let chosen: Vec<&str> =
                    if queue.strategy == Strategy::RingAll { chosen } else { chosen.into_iter().take(1).collect() };
                if !chosen.is_empty() {
                    taken.extend(chosen.iter().copied());
                    let agents = chosen.into_iter().map(str::to_owned).collect();
                    out.push(Intent::Offer { caller: caller.session.clone(), agents });
                }
            }
            _ => {}
        }
    }
    out
}

/// The eligible agents for `caller`, in its queue's order, none of `taken`.
fn choose<'v>(
    view: &'v View,
    queue: &QueueSpec,
    caller: &CallerRecord,
    taken: &BTreeSet<&str>,
    random: &mut impl FnMut(u64) -> u64,
) -> Vec<&'v str> {
    let offered: &[String] = match &caller.state {
        CallerState::Offered { agents, .. } => agents,
        _ => &[],
    };
    let needs = caller_requires(caller);
    let candidates: Vec<Candidate> = view
        .agents
        .iter()
        .enumerate()
        .filter(|(_, spec)| !taken.contains(spec.id.as_str()) && !offered.contains(&spec.id))
        .filter_map(|(i, spec)| {
            let rec = view.records.get(&spec.id)?;
            let tier = spec.tier(&queue.name)?;
            eligible(view, queue, caller, &needs, spec, rec).then(|| Candidate {
                agent: spec.id.clone(),
                level: tier.level,
                position: tier.position,
                penalty: spec.penalty,
                order: i as u32,
                idle_since_ms: rec.idle_since_ms,
                talk_time_ms: rec.talk_time_ms,
                calls_answered: rec.calls_answered,
            })
        })
        .collect();
    let memory = view.memory.get(&queue.name).cloned().unwrap_or_default();
    let ordered = strategy::order(queue.strategy, candidates, &memory, random);
    ordered.into_iter().filter_map(|c| view.agents.iter().find(|a| a.id == c.agent).map(|a| a.id.as_str())).collect()
}
