//! The ACD's event feed (`callmesh.events.queue`): what happens in the queues, as the router
//! that decided it saw it — callers joining, abandoning, overflowing; agents offered a
//! caller, answering, letting it ring out, put on break; calls ending; and every 5 s each
//! queue as it stands (`QueueStats`). What the API and wallboards build on. Offers
//! cancelled are not events: they end in one of these.

use std::collections::BTreeMap;

use cluster::bus::{Bus, typed};
use cluster::contracts::{
    self, AgentBreak, AgentOffer, CallerGone, CallerJoined, CallerOverflowed, QueueEvent, QueueStats, queue_event,
};
use cluster::subjects;

use super::{AcdEvent, AgentRecord, AgentSpec, CallerRecord, CallerState, Overflow, QueueSpec, State, Status};

/// The feed's event for what the ACD decided, if it is one.
pub fn of(event: &AcdEvent) -> Option<queue_event::Event> {
    let offer = |caller: &str, agent: &str| AgentOffer { session: caller.to_owned(), agent: agent.to_owned() };
    Some(match event {
        AcdEvent::Offer { caller, agent, .. } => queue_event::Event::AgentOffered(offer(caller, agent)),
        AcdEvent::Bridge { caller, agent } => queue_event::Event::AgentAnswered(offer(caller, agent)),
        AcdEvent::NoAnswer { caller, agent } => queue_event::Event::AgentNoAnswer(offer(caller, agent)),
        AcdEvent::OnBreak { agent } => queue_event::Event::AgentOnBreak(AgentBreak { agent: agent.clone() }),
        AcdEvent::Abandoned { caller } => queue_event::Event::CallerAbandoned(CallerGone { session: caller.clone() }),
        AcdEvent::Overflow { caller, target } => {
            let target = match target {
                Overflow::Queue(q) => format!("queue:{q}"),
                Overflow::Uri(uri) => uri.clone(),
                Overflow::Refuse(status) => status.to_string(),
            };
            queue_event::Event::CallerOverflowed(CallerOverflowed { session: caller.clone(), target })
        }
        AcdEvent::Joined { caller, queue, priority, waited_before_ms } => queue_event::Event::CallerJoined(CallerJoined {
            session: caller.clone(),
            queue: queue.clone(),
            priority: *priority,
            waited_before_ms: *waited_before_ms,
        }),
        AcdEvent::Cancel { .. } => return None,
    })
}

pub fn ended(session: &str) -> queue_event::Event {
    queue_event::Event::CallEnded(CallerGone { session: session.to_owned() })
}

/// Publishes `event` (a feed nobody listens to costs a publish).
pub async fn publish(bus: &dyn Bus, sender: &str, event: queue_event::Event) {
    let message = QueueEvent { meta: contracts::meta(sender), at_unix_ms: contracts::unix_ms(), event: Some(event) };
    if let Err(e) = typed::publish(bus, &subjects::acd_events(), &message).await {
        tracing::warn!(error = %e, "queue event not published");
    }
}

/// Each queue as the records say it stands now.
pub fn stats(
    queues: &[&QueueSpec],
    agents: &[AgentSpec],
    records: &BTreeMap<String, AgentRecord>,
    callers: &[CallerRecord],
    now: u64,
) -> Vec<QueueStats> {
    queues
        .iter()
        .map(|q| {
            let mine: Vec<&CallerRecord> = callers.iter().filter(|c| c.queue == q.name).collect();
            let count = |f: &dyn Fn(&CallerState) -> bool| mine.iter().filter(|c| f(&c.state)).count() as u32;
            let mut s = QueueStats {
                queue: q.name.clone(),
                waiting: count(&|s| *s == CallerState::Waiting),
                offered: count(&|s| matches!(s, CallerState::Offered { .. })),
                talking: count(&|s| matches!(s, CallerState::Bridged { .. })),
                longest_wait_ms: mine
                    .iter()
                    .filter(|c| !matches!(c.state, CallerState::Bridged { .. }))
                    .map(|c| now.saturating_sub(c.joined_ms))
                    .max()
                    .unwrap_or(0),
                ..Default::default()
            };
            for rec in agents.iter().filter(|a| a.tier(&q.name).is_some()).filter_map(|a| records.get(&a.id)) {
                match rec.status {
                    Status::LoggedOut => s.agents_logged_out += 1,
                    Status::OnBreak => s.agents_on_break += 1,
                    Status::Available => {
                        s.agents_available += 1;
                        match rec.state {
                            _ if rec.reserved(now) => s.agents_ringing += 1,
                            State::InQueueCall | State::Receiving => s.agents_talking += 1,
                            State::WrapUp if rec.ready_at_ms > now => s.agents_wrap_up += 1,
                            _ => s.agents_idle += 1,
                        }
                    }
                }
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::model::Reservation;
    use crate::acd::{Strategy, Tier};

    #[test]
    fn a_queue_stands_as_its_records_say() {
        let q = QueueSpec::new("q", Strategy::RingAll);
        let tier = || vec![Tier { queue: "q".into(), level: 1, position: 1 }];
        let agents: Vec<AgentSpec> = ["idle", "ringing", "talking", "break", "other"]
            .iter()
            .map(|id| AgentSpec::new(id, if *id == "other" { vec![] } else { tier() }))
            .collect();
        let mut records = BTreeMap::new();
        records.insert("idle".to_owned(), AgentRecord::new(Status::Available, 0));
        let mut ringing = AgentRecord::new(Status::Available, 0);
        ringing.reservation = Some(Reservation { caller: "c2".into(), router: "r".into(), expires_ms: 9_000 });
        records.insert("ringing".to_owned(), ringing);
        let mut talking = AgentRecord::new(Status::Available, 0);
        talking.state = State::InQueueCall;
        records.insert("talking".to_owned(), talking);
        records.insert("break".to_owned(), AgentRecord::new(Status::OnBreak, 0));
        records.insert("other".to_owned(), AgentRecord::new(Status::Available, 0));
        let mut offered = CallerRecord::new("c2", "q", 0, 2_000);
        offered.state =
            CallerState::Offered { agents: vec!["ringing".into()], router: "r".into(), since_ms: 4_000, until_ms: 9_000 };
        let mut talking_caller = CallerRecord::new("c3", "q", 0, 500);
        talking_caller.state = CallerState::Bridged { agent: "talking".into() };
        let callers =
            [CallerRecord::new("c1", "q", 0, 1_000), offered, talking_caller, CallerRecord::new("x", "elsewhere", 0, 0)];
        let s = &stats(&[&q], &agents, &records, &callers, 5_000)[0];
        assert_eq!((s.waiting, s.offered, s.talking, s.longest_wait_ms), (1, 1, 1, 4_000));
        assert_eq!((s.agents_available, s.agents_on_break, s.agents_logged_out), (3, 1, 0));
        assert_eq!((s.agents_idle, s.agents_ringing, s.agents_talking, s.agents_wrap_up), (1, 1, 1, 0));
    }
}
