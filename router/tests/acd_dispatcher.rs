//! The ACD's operations one at a time, on a shared in-memory store: two routers whose plans
//! differ racing for the same agents (only one offer per agent succeeds), ring-all's first
//! answer winning, no-answers putting an agent on break, wrap-up, tier levels opening with
//! waiting time, overflow by max wait and by max length, an abandoned caller's offers
//! cancelled, and an abandoned caller's place resumed when it calls back in time.

mod common;

use std::sync::Arc;

use common::{RouterStore, offers};
use router::acd::model::Tier;
use router::acd::{
    Acd, AcdEvent, AcdStore, AgentSpec, CallerRecord, CallerState, MemoryStore, Overflow, QueueSpec, State, Status, Strategy,
};

fn agent(id: &str, level: u32, position: u32) -> AgentSpec {
    AgentSpec::new(id, vec![Tier { queue: "q".into(), level, position }])
}

async fn setup(queue: QueueSpec, agents: Vec<AgentSpec>, callers: &[(&str, u64)]) -> (Arc<MemoryStore>, Acd) {
    let store = Arc::new(MemoryStore::default());
    let acd = Acd::new("router-a", vec![queue], agents);
    acd.ensure_agents(store.as_ref(), |_| Status::Available, 0).await.unwrap();
    for (session, joined) in callers {
        acd.join(store.as_ref(), CallerRecord::new(session, "q", 0, *joined)).await.unwrap();
    }
    (store, acd)
}

#[tokio::test(flavor = "current_thread")]
async fn two_routers_with_different_plans_never_offer_one_agent_twice() {
    let queue = QueueSpec::new("q", Strategy::Random);
    let (shared, a) = setup(queue.clone(), vec![agent("x", 1, 1), agent("y", 1, 2)], &[("c1", 0), ("c2", 1)]).await;
    let b = Acd::new("router-b", vec![queue], vec![agent("x", 1, 1), agent("y", 1, 2)]);
    let (sa, sb) = (RouterStore::new(shared.clone()), RouterStore::new(shared.clone()));
    // Router a draws x before y, router b y before x: their plans give c1 different agents.
    let (mut da, mut db) = ([1u64, 2].into_iter().cycle(), [2u64, 1].into_iter().cycle());
    let (ea, eb) = tokio::join!(a.tick(&sa, 1_000, |_| da.next().unwrap()), b.tick(&sb, 1_000, |_| db.next().unwrap()));
    let all: Vec<_> = offers(&ea.unwrap()).into_iter().chain(offers(&eb.unwrap())).collect();
    let agents: Vec<&String> = all.iter().map(|(_, agent)| agent).collect();
    let callers: Vec<&String> = all.iter().map(|(caller, _)| caller).collect();
    assert!(!all.is_empty(), "someone was offered");
    assert!(agents.iter().all(|x| agents.iter().filter(|y| y == &x).count() == 1), "one offer per agent: {all:?}");
    assert!(callers.iter().all(|x| callers.iter().filter(|y| y == &x).count() == 1), "one offer per caller: {all:?}");
    for (caller, agent) in &all {
        let (rec, _) = shared.agent(agent).await.unwrap().unwrap();
        assert_eq!(rec.reservation.map(|r| r.caller), Some(caller.clone()), "the store agrees");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn ring_all_rings_everyone_and_the_first_answer_wins() {
    let (store, acd) =
        setup(QueueSpec::new("q", Strategy::RingAll), vec![agent("x", 1, 1), agent("y", 1, 2)], &[("c1", 0)]).await;
    let s = store.as_ref();
    let events = acd.tick(s, 10, |_| 0).await.unwrap();
    assert_eq!(offers(&events), [("c1".into(), "x".into()), ("c1".into(), "y".into())]);
    let events = acd.answered(s, "c1", "y", 2_000).await.unwrap();
    assert_eq!(events[0], AcdEvent::Bridge { caller: "c1".into(), agent: "y".into() });
    assert!(events.contains(&AcdEvent::Cancel { caller: "c1".into(), agent: "x".into() }));
    let late = acd.answered(s, "c1", "x", 2_100).await.unwrap();
    assert_eq!(late, [AcdEvent::Cancel { caller: "c1".into(), agent: "x".into() }], "a late answer is cancelled");
    let (x, _) = store.agent("x").await.unwrap().unwrap();
    assert!(x.free(2_200), "x is free again");
    let (c1, _) = store.caller("c1").await.unwrap().unwrap();
    assert_eq!(c1.state, CallerState::Bridged { agent: "y".into() });
}

#[tokio::test(flavor = "current_thread")]
async fn unanswered_offers_lapse_and_put_the_agent_on_break_then_the_next_agent_rings() {
    let mut x = agent("x", 1, 1);
    x.max_no_answer = 2;
    let mut queue = QueueSpec::new("q", Strategy::TopDown);
    queue.ring_ms = 5_000;
    let (store, acd) = setup(queue, vec![x, agent("y", 1, 2)], &[("c1", 0), ("c2", 1)]).await;
    let s = store.as_ref();
    assert_eq!(offers(&acd.tick(s, 10, |_| 0).await.unwrap()), [("c1".into(), "x".into()), ("c2".into(), "y".into())]);
    let events = acd.answered(s, "c2", "y", 4_000).await.unwrap();
    assert_eq!(events[0], AcdEvent::Bridge { caller: "c2".into(), agent: "y".into() });
    // c1's offer rings out: x had no answer; c1 is offered nobody again (x let it ring, y talks).
    let events = acd.tick(s, 5_010, |_| 0).await.unwrap();
    assert!(events.contains(&AcdEvent::NoAnswer { caller: "c1".into(), agent: "x".into() }), "{events:?}");
    assert!(offers(&events).is_empty(), "x is not offered c1 again, y is busy: {events:?}");
    acd.join(s, CallerRecord::new("c3", "q", 0, 6_000)).await.unwrap();
    let events = acd.tick(s, 6_010, |_| 0).await.unwrap();
    assert_eq!(offers(&events), [("c3".into(), "x".into())]);
    let events = acd.tick(s, 11_010, |_| 0).await.unwrap();
    assert!(events.contains(&AcdEvent::OnBreak { agent: "x".into() }), "two in a row: {events:?}");
    let (x, _) = store.agent("x").await.unwrap().unwrap();
    assert_eq!(x.status, Status::OnBreak);
}

#[tokio::test(flavor = "current_thread")]
async fn wrap_up_keeps_an_agent_from_the_next_caller_until_it_ends() {
    let mut queue = QueueSpec::new("q", Strategy::LongestIdleAgent);
    queue.wrap_up_ms = 10_000;
    let (store, acd) = setup(queue, vec![agent("x", 1, 1)], &[("c1", 0)]).await;
    let s = store.as_ref();
    acd.tick(s, 10, |_| 0).await.unwrap();
    acd.answered(s, "c1", "x", 1_000).await.unwrap();
    acd.join(s, CallerRecord::new("c2", "q", 0, 2_000)).await.unwrap();
    acd.ended(s, "c1", 31_000).await.unwrap();
    let (x, _) = store.agent("x").await.unwrap().unwrap();
    assert_eq!((x.talk_time_ms, x.calls_answered, x.ready_at_ms), (30_000, 1, 41_000));
    assert!(offers(&acd.tick(s, 40_999, |_| 0).await.unwrap()).is_empty(), "still wrapping up");
    assert_eq!(offers(&acd.tick(s, 41_000, |_| 0).await.unwrap()), [("c2".into(), "x".into())]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_higher_tier_opens_only_after_its_wait() {
    let mut queue = QueueSpec::new("q", Strategy::TopDown);
    queue.tier_wait_ms = Some(20_000);
    let (store, acd) = setup(queue, vec![agent("backup", 2, 1)], &[("c1", 0)]).await;
    let s = store.as_ref();
    assert!(offers(&acd.tick(s, 19_999, |_| 0).await.unwrap()).is_empty());
    assert_eq!(offers(&acd.tick(s, 20_000, |_| 0).await.unwrap()), [("c1".into(), "backup".into())]);
}

#[tokio::test(flavor = "current_thread")]
async fn callers_overflow_by_max_wait_and_by_max_length_and_abandoning_cancels_the_offer() {
    let mut queue = QueueSpec::new("q", Strategy::RingAll);
    queue.max_wait_ms = 30_000;
    queue.max_len = 2;
    queue.overflow = Overflow::Uri("sip:voicemail@example.com".into());
    let (store, acd) = setup(queue, vec![], &[("c1", 0), ("c2", 1)]).await;
    let s = store.as_ref();
    let full = acd.join(s, CallerRecord::new("c3", "q", 0, 2)).await.unwrap();
    assert_eq!(full, [AcdEvent::Overflow { caller: "c3".into(), target: Overflow::Uri("sip:voicemail@example.com".into()) }]);
    let events = acd.tick(s, 30_000, |_| 0).await.unwrap();
    assert_eq!(events.len(), 1, "c1 waited 30 s: {events:?}");
    assert!(matches!(&events[0], AcdEvent::Overflow { caller, .. } if caller == "c1"));

    let (store, acd) = setup(QueueSpec::new("q", Strategy::RingAll), vec![agent("x", 1, 1)], &[("c1", 0)]).await;
    let s = store.as_ref();
    acd.tick(s, 10, |_| 0).await.unwrap();
    let events = acd.left(s, "c1", 500).await.unwrap();
    assert_eq!(
        events,
        [AcdEvent::Abandoned { caller: "c1".into() }, AcdEvent::Cancel { caller: "c1".into(), agent: "x".into() }]
    );
    assert!(store.agent("x").await.unwrap().unwrap().0.free(600), "x is free at once");
}

#[tokio::test(flavor = "current_thread")]
async fn the_exit_key_takes_a_waiting_caller_to_its_target_and_other_keys_do_nothing() {
    let mut queue = QueueSpec::new("q", Strategy::RingAll);
    queue.exit_key = Some(('0', Overflow::Uri("sip:voicemail@example.com".into())));
    let (store, acd) = setup(queue, vec![agent("x", 1, 1)], &[("c1", 0)]).await;
    let s = store.as_ref();
    acd.tick(s, 10, |_| 0).await.unwrap();
    assert!(acd.key(s, "c1", '5', 100).await.unwrap().is_empty(), "not the exit key");
    let events = acd.key(s, "c1", '0', 200).await.unwrap();
    assert_eq!(
        events,
        [
            AcdEvent::Cancel { caller: "c1".into(), agent: "x".into() },
            AcdEvent::Overflow { caller: "c1".into(), target: Overflow::Uri("sip:voicemail@example.com".into()) }
        ]
    );
    assert!(store.caller("c1").await.unwrap().is_none(), "out of the queue");
    assert!(store.agent("x").await.unwrap().unwrap().0.free(300), "its offer released");
}

#[tokio::test(flavor = "current_thread")]
async fn a_router_counts_answers_within_the_service_level_and_abandons() {
    let queue = QueueSpec::new("q", Strategy::RingAll); // 20 s service level
    let (store, acd) = setup(queue, vec![agent("x", 1, 1), agent("y", 1, 2)], &[("c1", 0), ("c2", 0), ("c3", 0)]).await;
    let s = store.as_ref();
    acd.tick(s, 10, |_| 0).await.unwrap();
    acd.answered(s, "c1", "x", 5_000).await.unwrap();
    acd.ended(s, "c1", 6_000).await.unwrap();
    acd.left(s, "c3", 7_000).await.unwrap();
    acd.tick(s, 29_000, |_| 0).await.unwrap();
    acd.answered(s, "c2", "x", 30_000).await.unwrap();
    let c = acd.counts("q");
    assert_eq!((c.answered, c.answered_within_service_level, c.abandoned, c.answer_wait_ms), (2, 1, 1, 35_000));
}

#[tokio::test(flavor = "current_thread")]
async fn a_caller_who_calls_back_in_time_resumes_its_place_once_and_not_after() {
    let mut queue = QueueSpec::new("q", Strategy::LongestIdleAgent);
    queue.resume_ms = 60_000;
    queue.exit_key = Some(('0', Overflow::Refuse(486)));
    let (store, acd) = setup(queue, vec![], &[]).await;
    let s = store.as_ref();
    let caller = |session: &str, who: &str, priority: u32, at: u64| {
        let mut c = CallerRecord::new(session, "q", priority, at);
        c.who = who.into();
        c
    };
    acd.join(s, caller("a1", "sip:alice@example.com", 3, 1_000)).await.unwrap();
    acd.join(s, caller("b1", "sip:bob@example.com", 3, 2_000)).await.unwrap();
    acd.left(s, "a1", 5_000).await.unwrap();
    // Alice calls back (without the priority her route gave her first) 20 s later: she is
    // again ahead of Bob, with her first arrival and her priority.
    let events = acd.join(s, caller("a2", "sip:alice@example.com", 0, 25_000)).await.unwrap();
    let joined = AcdEvent::Joined { caller: "a2".into(), queue: "q".into(), priority: 3, waited_before_ms: 24_000 };
    assert_eq!(events, [joined]);
    let (a2, _) = store.caller("a2").await.unwrap().unwrap();
    let (b1, _) = store.caller("b1").await.unwrap().unwrap();
    assert_eq!((a2.joined_ms, a2.priority), (1_000, 3));
    assert!(a2.order_key() < b1.order_key(), "Alice first");
    // Her place was taken: a third call of hers is a new caller.
    let events = acd.join(s, caller("a3", "sip:alice@example.com", 0, 26_000)).await.unwrap();
    assert!(matches!(&events[..], [AcdEvent::Joined { waited_before_ms: 0, .. }]), "{events:?}");
    // Bob leaves by the exit key (he did not abandon): no place is kept for him.
    acd.key(s, "b1", '0', 27_000).await.unwrap();
    let events = acd.join(s, caller("b2", "sip:bob@example.com", 0, 28_000)).await.unwrap();
    assert!(matches!(&events[..], [AcdEvent::Joined { waited_before_ms: 0, .. }]), "{events:?}");
    // Alice hangs up again and calls back too late: her place lapsed, and a plan drops it.
    acd.left(s, "a2", 30_000).await.unwrap();
    assert_eq!(s.places().await.unwrap().len(), 1);
    acd.tick(s, 90_000, |_| 0).await.unwrap();
    assert!(s.places().await.unwrap().is_empty(), "the lapsed place dropped");
    let events = acd.join(s, caller("a4", "sip:alice@example.com", 0, 91_000)).await.unwrap();
    assert!(matches!(&events[..], [AcdEvent::Joined { waited_before_ms: 0, .. }]), "{events:?}");
    // Anonymous callers never resume.
    acd.join(s, caller("x1", "", 0, 92_000)).await.unwrap();
    acd.left(s, "x1", 93_000).await.unwrap();
    assert!(s.places().await.unwrap().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn a_dead_session_nodes_callers_wait_adrift_for_whoever_takes_them_over() {
    let mut queue = QueueSpec::new("q", Strategy::LongestIdleAgent);
    (queue.wrap_up_ms, queue.resume_ms) = (5_000, 60_000);
    let (store, acd) = setup(queue, vec![agent("x", 1, 1), agent("y", 1, 2)], &[]).await;
    let s = store.as_ref();
    let callers = [("c1", "session-a", 0), ("c2", "session-a", 10), ("c3", "session-b", 20), ("c4", "session-a", 30)];
    for (session, owner, at) in callers {
        let mut c = CallerRecord::new(session, "q", 0, at);
        (c.owner, c.who) = (owner.into(), format!("sip:{session}@example.com"));
        acd.join(s, c).await.unwrap();
    }
    // c1 talks to x, c2 rings y; c3 (on another node) and c4 wait.
    acd.tick(s, 100, |_| 0).await.unwrap();
    acd.answered(s, "c1", "x", 200).await.unwrap();
    assert!(matches!(store.caller("c2").await.unwrap().unwrap().0.state, CallerState::Offered { .. }));
    let events = acd.orphaned(s, "session-a", 1_000).await.unwrap();
    assert!(!events.iter().any(|e| matches!(e, AcdEvent::Abandoned { .. })), "nobody left yet: {events:?}");
    let (c1, _) = store.caller("c1").await.unwrap().unwrap();
    assert_eq!((c1.state, c1.adrift_since_ms), (CallerState::Bridged { agent: "x".into() }, Some(1_000)), "still with x");
    assert_eq!(store.agent("x").await.unwrap().unwrap().0.state, State::InQueueCall);
    assert!(store.agent("y").await.unwrap().unwrap().0.free(1_000), "the ringing agent is released");
    let (c2, _) = store.caller("c2").await.unwrap().unwrap();
    assert_eq!((c2.state, c2.adrift_since_ms, c2.joined_ms), (CallerState::Waiting, Some(1_000), 10), "adrift, in its place");
    // Adrift callers are offered to nobody: the free agent goes to c3, behind them.
    acd.tick(s, 1_100, |_| 0).await.unwrap();
    assert!(matches!(store.caller("c3").await.unwrap().unwrap().0.state, CallerState::Offered { .. }));
    assert_eq!(store.caller("c2").await.unwrap().unwrap().0.state, CallerState::Waiting);
    // A second router doing the same finds nothing left to do.
    assert!(acd.orphaned(s, "session-a", 1_200).await.unwrap().is_empty());

    // session-c takes c2's call over and joins it again: its place and wait are its own.
    let mut again = CallerRecord::new("c2", "q", 0, 4_000);
    (again.owner, again.who) = ("session-c".into(), "sip:c2@example.com".into());
    let events = acd.rejoined(s, again, None, 4_000).await.unwrap();
    assert!(events.is_empty(), "{events:?}");
    let (c2, _) = store.caller("c2").await.unwrap().unwrap();
    assert_eq!((c2.owner.as_str(), c2.adrift_since_ms, c2.joined_ms), ("session-c", None, 10));
    // And c1's call, still talking to x.
    let mut talking = CallerRecord::new("c1", "q", 0, 4_000);
    talking.owner = "session-c".into();
    assert!(acd.rejoined(s, talking, Some("x".into()), 4_000).await.unwrap().is_empty());
    let (c1, _) = store.caller("c1").await.unwrap().unwrap();
    assert_eq!((c1.state, c1.adrift_since_ms), (CallerState::Bridged { agent: "x".into() }, None));
    // c1 hangs up: x wraps up; then, ahead of everyone waiting, c2 takes x.
    acd.ended(s, "c1", 5_000).await.unwrap();
    assert_eq!(store.agent("x").await.unwrap().unwrap().0.ready_at_ms, 10_000);
    acd.tick(s, 10_000, |_| 0).await.unwrap();
    match store.caller("c2").await.unwrap().unwrap().0.state {
        CallerState::Offered { agents, .. } => assert_eq!(agents, ["x"]),
        other => panic!("c2 offered x, not {other:?}"),
    }

    // Nobody takes c4 over: after ADRIFT_MS it has left, its place kept for a call back.
    acd.tick(s, 1_000 + router::acd::ADRIFT_MS - 1, |_| 0).await.unwrap();
    assert!(store.caller("c4").await.unwrap().is_some(), "still adrift");
    let events = acd.tick(s, 1_000 + router::acd::ADRIFT_MS, |_| 0).await.unwrap();
    assert!(events.contains(&AcdEvent::Abandoned { caller: "c4".into() }), "{events:?}");
    assert!(store.caller("c4").await.unwrap().is_none());
    assert!(s.place("q", "sip:c4@example.com").await.unwrap().is_some());

    // A caller taken over that the routers no longer have joins anew, taking back its place.
    let mut back = CallerRecord::new("c4", "q", 0, 12_000);
    (back.owner, back.who) = ("session-c".into(), "sip:c4@example.com".into());
    let events = acd.rejoined(s, back, None, 12_000).await.unwrap();
    assert!(matches!(&events[..], [AcdEvent::Joined { waited_before_ms: 11_970, .. }]), "{events:?}");
    // A caller taken over as put through, whose queue call the routers no longer have,
    // is let go: its agent is cancelled (its session hangs up).
    let mut gone = CallerRecord::new("c9", "q", 0, 12_000);
    gone.owner = "session-c".into();
    let events = acd.rejoined(s, gone, Some("y".into()), 12_000).await.unwrap();
    assert_eq!(events, [AcdEvent::Cancel { caller: "c9".into(), agent: "y".into() }]);
    assert!(store.caller("c9").await.unwrap().is_none());
}

#[tokio::test(flavor = "current_thread")]
async fn a_bridged_caller_nobody_takes_over_ends_its_queue_call() {
    let mut queue = QueueSpec::new("q", Strategy::LongestIdleAgent);
    queue.wrap_up_ms = 5_000;
    let (store, acd) = setup(queue, vec![agent("x", 1, 1)], &[]).await;
    let s = store.as_ref();
    let mut c = CallerRecord::new("c1", "q", 0, 0);
    c.owner = "session-a".into();
    acd.join(s, c).await.unwrap();
    acd.tick(s, 100, |_| 0).await.unwrap();
    acd.answered(s, "c1", "x", 200).await.unwrap();
    acd.orphaned(s, "session-a", 1_000).await.unwrap();
    acd.tick(s, 1_000 + router::acd::ADRIFT_MS, |_| 0).await.unwrap();
    assert!(store.caller("c1").await.unwrap().is_none());
    let (x, _) = store.agent("x").await.unwrap().unwrap();
    assert_eq!((x.state, x.ready_at_ms), (State::WrapUp, 16_000), "the agent wraps up");
}

#[tokio::test(flavor = "current_thread")]
async fn a_caller_taken_over_before_the_routers_saw_its_node_die_loses_its_dead_offer() {
    let (store, acd) = setup(QueueSpec::new("q", Strategy::LongestIdleAgent), vec![agent("x", 1, 1)], &[]).await;
    let s = store.as_ref();
    let mut c = CallerRecord::new("c1", "q", 0, 0);
    c.owner = "session-a".into();
    acd.join(s, c).await.unwrap();
    acd.tick(s, 100, |_| 0).await.unwrap();
    assert!(matches!(store.caller("c1").await.unwrap().unwrap().0.state, CallerState::Offered { .. }));
    // The new owner's report comes first: the offer (its agent's leg died) is taken back.
    let mut again = CallerRecord::new("c1", "q", 0, 3_000);
    again.owner = "session-b".into();
    acd.rejoined(s, again, None, 3_000).await.unwrap();
    let (c1, _) = store.caller("c1").await.unwrap().unwrap();
    assert_eq!((c1.state, c1.owner.as_str(), c1.joined_ms), (CallerState::Waiting, "session-b", 0));
    assert!(store.agent("x").await.unwrap().unwrap().0.free(3_000));
    // Then the routers see the node die: the caller is not its any more.
    assert!(acd.orphaned(s, "session-a", 3_100).await.unwrap().is_empty());
    assert_eq!(store.caller("c1").await.unwrap().unwrap().0.adrift_since_ms, None);
}
