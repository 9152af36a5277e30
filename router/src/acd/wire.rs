//! The ACD's records as the registry stores them (`acd.proto`), and back.

use cluster::contracts::{
    AcdAgent, AcdBridged, AcdCaller, AcdMemory, AcdOffered, AcdPlace, AcdReservation, AcdWaiting, AgentState, AgentStatus,
    acd_caller,
};

use super::model::{AgentRecord, CallerRecord, CallerState, Place, Reservation, State, Status};
use super::strategy::{Mark, Memory};

pub fn agent_to_wire(r: &AgentRecord) -> AcdAgent {
    AcdAgent {
        status: match r.status {
            Status::LoggedOut => AgentStatus::LoggedOut,
            Status::Available => AgentStatus::Available,
            Status::OnBreak => AgentStatus::OnBreak,
        } as i32,
        state: match r.state {
            State::Waiting => AgentState::Waiting,
            State::Reserved => AgentState::Reserved,
            State::Receiving => AgentState::Receiving,
            State::InQueueCall => AgentState::InQueueCall,
            State::WrapUp => AgentState::WrapUp,
        } as i32,
        reservation: r.reservation.as_ref().map(|v| AcdReservation {
            caller: v.caller.clone(),
            router: v.router.clone(),
            expires_ms: v.expires_ms,
        }),
        busy_elsewhere: r.busy_elsewhere,
        ready_at_ms: r.ready_at_ms,
        idle_since_ms: r.idle_since_ms,
        talk_time_ms: r.talk_time_ms,
        calls_answered: r.calls_answered,
        no_answers_in_a_row: r.no_answers_in_a_row,
        answered_at_ms: r.answered_at_ms,
    }
}

pub fn agent_from_wire(a: &AcdAgent) -> AgentRecord {
    AgentRecord {
        status: match AgentStatus::try_from(a.status) {
            Ok(AgentStatus::Available) => Status::Available,
            Ok(AgentStatus::OnBreak) => Status::OnBreak,
            _ => Status::LoggedOut,
        },
        state: match AgentState::try_from(a.state) {
            Ok(AgentState::Reserved) => State::Reserved,
            Ok(AgentState::Receiving) => State::Receiving,
            Ok(AgentState::InQueueCall) => State::InQueueCall,
            Ok(AgentState::WrapUp) => State::WrapUp,
            _ => State::Waiting,
        },
        reservation: a.reservation.as_ref().map(|v| Reservation {
            caller: v.caller.clone(),
            router: v.router.clone(),
            expires_ms: v.expires_ms,
        }),
        busy_elsewhere: a.busy_elsewhere,
        ready_at_ms: a.ready_at_ms,
        idle_since_ms: a.idle_since_ms,
        talk_time_ms: a.talk_time_ms,
        calls_answered: a.calls_answered,
        no_answers_in_a_row: a.no_answers_in_a_row,
        answered_at_ms: a.answered_at_ms,
    }
}

pub fn caller_to_wire(c: &CallerRecord) -> AcdCaller {
    let state = match &c.state {
        CallerState::Waiting => acd_caller::State::Waiting(AcdWaiting {}),
        CallerState::Offered { agents, router, since_ms, until_ms } => acd_caller::State::Offered(AcdOffered {
            agents: agents.clone(),
            router: router.clone(),
            since_ms: *since_ms,
            until_ms: *until_ms,
        }),
        CallerState::Bridged { agent } => acd_caller::State::Bridged(AcdBridged { agent: agent.clone() }),
    };
    AcdCaller {
        session: c.session.clone(),
        queue: c.queue.clone(),
        priority: c.priority,
        joined_ms: c.joined_ms,
        requires: c.requires.clone().unwrap_or_default(),
        state: Some(state),
        tried: c.tried.iter().cloned().collect(),
        who: c.who.clone(),
        owner: c.owner.clone(),
        adrift_since_ms: c.adrift_since_ms.unwrap_or(0),
    }
}

pub fn caller_from_wire(c: &AcdCaller) -> CallerRecord {
    let state = match &c.state {
        Some(acd_caller::State::Offered(o)) => CallerState::Offered {
            agents: o.agents.clone(),
            router: o.router.clone(),
            since_ms: o.since_ms,
            until_ms: o.until_ms,
        },
        Some(acd_caller::State::Bridged(b)) => CallerState::Bridged { agent: b.agent.clone() },
        _ => CallerState::Waiting,
    };
    CallerRecord {
        session: c.session.clone(),
        queue: c.queue.clone(),
        priority: c.priority,
        joined_ms: c.joined_ms,
        requires: Some(c.requires.clone()).filter(|r| !r.is_empty()),
        state,
        tried: c.tried.iter().cloned().collect(),
        who: c.who.clone(),
        owner: c.owner.clone(),
        adrift_since_ms: Some(c.adrift_since_ms).filter(|t| *t > 0),
    }
}

pub fn place_to_wire(p: &Place) -> AcdPlace {
    AcdPlace { joined_ms: p.joined_ms, priority: p.priority, expires_ms: p.expires_ms }
}

pub fn place_from_wire(p: &AcdPlace) -> Place {
    Place { joined_ms: p.joined_ms, priority: p.priority, expires_ms: p.expires_ms }
}

pub fn memory_to_wire(m: &Memory) -> AcdMemory {
    let (lo, lop) = m.last_offered.as_ref().map_or((String::new(), 0), |k| (k.agent.clone(), k.position));
    let (la, lap) = m.last_answered.as_ref().map_or((String::new(), 0), |k| (k.agent.clone(), k.position));
    AcdMemory { last_offered: lo, last_offered_position: lop, last_answered: la, last_answered_position: lap }
}

pub fn memory_from_wire(m: &AcdMemory) -> Memory {
    let mark = |agent: &str, position| (!agent.is_empty()).then(|| Mark { agent: agent.to_owned(), position });
    Memory {
        last_offered: mark(&m.last_offered, m.last_offered_position),
        last_answered: mark(&m.last_answered, m.last_answered_position),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_cross_the_wire_unchanged() {
        let mut agent = AgentRecord::new(Status::OnBreak, 42);
        agent.state = State::WrapUp;
        agent.reservation = Some(Reservation { caller: "s1".into(), router: "r1".into(), expires_ms: 99 });
        agent.talk_time_ms = 7;
        assert_eq!(agent_from_wire(&agent_to_wire(&agent)), agent);
        let mut caller = CallerRecord::new("s1", "sales", 3, 1000);
        caller.requires = Some("spanish >= 2".into());
        caller.tried.insert("a1".into());
        caller.who = "sip:alice@example.com".into();
        caller.owner = "session-1".into();
        caller.adrift_since_ms = Some(5);
        caller.state = CallerState::Offered { agents: vec!["a2".into()], router: "r1".into(), since_ms: 5, until_ms: 9 };
        assert_eq!(caller_from_wire(&caller_to_wire(&caller)), caller);
        caller.state = CallerState::Bridged { agent: "a2".into() };
        assert_eq!(caller_from_wire(&caller_to_wire(&caller)), caller);
        let memory = Memory { last_offered: Some(Mark { agent: "a1".into(), position: 2 }), last_answered: None };
        assert_eq!(memory_from_wire(&memory_to_wire(&memory)), memory);
        let place = Place { joined_ms: 5, priority: 2, expires_ms: 60_005 };
        assert_eq!(place_from_wire(&place_to_wire(&place)), place);
    }
}
