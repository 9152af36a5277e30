//! Setting calls up and tearing them down: answer, early media, ring timeout, CANCEL racing
//! the answer, parallel forking and sequential hunting, refusals.

use std::time::Duration;

use sip::message::Method;

use super::harness::{RELAY, Sim, body, connect, far, phone_sdp};
use crate::engine::{CallEvent, Command, MediaOutput, OnTimeout, RingPolicy, SipInput, Target};
use crate::leg::LegState;

#[test]
fn a_call_is_answered_anchored_and_hung_up_by_the_caller() {
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5"], true, RingPolicy::default());
    assert_eq!(sim.persisted, 1, "the call is recorded once media is allocated");
    let (key, invite) = sim.take_request(Method::Invite);
    assert_eq!(invite.request_uri_str(), Some("sip:bob@203.0.113.5"));
    // The callee is offered the caller's codecs at the relay's second slot, from our origin.
    let offer = body(&invite);
    assert!(offer.contains("m=audio 30002 RTP/AVP 0 101") && offer.contains("c=IN IP4 192.0.2.100"), "{offer}");
    assert!(offer.contains("o=callmesh "), "{offer}");
    assert_eq!(invite.from().unwrap().tag(), Some("s1-1"));

    sim.respond(key, &invite, 180, "bob", None);
    assert_eq!(sim.take_response(1).status(), Some(180));
    sim.respond(key, &invite, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "sendrecv")));
    let ack = sim.take_ack();
    assert_eq!(ack.cseq().map(|(s, _)| s), Some(1));
    let ok = sim.take_response(1);
    assert_eq!(ok.status(), Some(200));
    let answer = body(&ok);
    assert!(answer.contains("m=audio 30000 ") && answer.contains("o=callmesh "), "the caller hears the relay: {answer}");
    // The allocation told the relay where alice is; bob's address follows his answer, once.
    let alice = far("198.51.100.1:4000");
    assert_eq!(sim.media[0], MediaOutput::Allocate { slots: 2, caller: Some(alice) });
    let connects: Vec<_> = sim.media.iter().filter(|m| matches!(m, MediaOutput::Connect { .. })).collect();
    assert_eq!(connects, [&connect(1, "203.0.113.5:5000")]);
    let alice = sim.caller_dialog(&ok);
    sim.caller_acks(&alice);
    assert_eq!((sim.caller(), sim.leg(1)), (LegState::Confirmed, LegState::Confirmed));

    let mut alice = alice;
    let (bye_tx, _) = sim.request_in(&mut alice, Method::Bye, None);
    assert_eq!(sim.take_response(bye_tx).status(), Some(200));
    let (key, bye) = sim.take_request(Method::Bye);
    sim.respond(key, &bye, 200, "bob", None);
    assert!(sim.engine.is_over());
    assert_eq!(sim.media.last(), Some(&MediaOutput::Release));
    assert_eq!(sim.events.last(), Some(&CallEvent::Ended));
    let _ = RELAY;
}

#[test]
fn the_callers_transaction_is_at_its_edge_until_the_caller_acknowledges_the_answer() {
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5"], true, RingPolicy::default());
    let at = |sim: &Sim, edge: &str| sim.engine.unacknowledged_at(edge).map(|tx| (tx.edge, tx.id));
    assert_eq!((at(&sim, "edge-1"), at(&sim, "edge-2")), (Some(("edge-1".into(), 1)), None), "ringing, at edge-1");
    let (key, invite) = sim.take_request(Method::Invite);
    sim.respond(key, &invite, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "sendrecv")));
    let ok = sim.take_response(1);
    assert_eq!(at(&sim, "edge-1"), Some(("edge-1".into(), 1)), "answered, not acknowledged");
    sim.caller_acks(&sim.caller_dialog(&ok));
    assert_eq!(at(&sim, "edge-1"), None, "acknowledged: nothing is left at the edge");
}

#[test]
fn early_media_reaches_the_caller_before_the_answer() {
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5"], true, RingPolicy::default());
    let (key, invite) = sim.take_request(Method::Invite);
    sim.respond(key, &invite, 183, "bob", Some(phone_sdp("203.0.113.5:5000", "sendrecv")));
    let progress = sim.take_response(1);
    assert_eq!(progress.status(), Some(183));
    assert!(body(&progress).contains("m=audio 30000 "), "183 with SDP at the relay: {}", body(&progress));
    assert!(sim.media.contains(&connect(1, "203.0.113.5:5000")));
}

#[test]
fn a_ring_timeout_cancels_the_target_and_refuses_or_diverts() {
    let ring = |on_timeout| RingPolicy { timeout: Some(Duration::from_secs(30)), on_timeout };
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5"], true, ring(OnTimeout::Reject));
    let (key, invite) = sim.take_request(Method::Invite);
    sim.respond(key, &invite, 180, "bob", None);
    sim.advance(Duration::from_secs(29));
    assert!(!sim.cancelled(key), "not before 30 s");
    sim.advance(Duration::from_secs(1));
    assert!(sim.cancelled(key));
    assert_eq!(sim.statuses(1), vec![180, 480]);
    sim.respond(key, &invite, 487, "bob", None);
    assert!(sim.engine.is_over());

    let voicemail = Target { uri: "sip:vm@203.0.113.9".into(), route: None };
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5"], true, ring(OnTimeout::Divert(voicemail)));
    let (key, invite) = sim.take_request(Method::Invite);
    sim.advance(Duration::from_secs(30));
    assert!(sim.cancelled(key));
    let (vm_key, vm) = sim.take_request(Method::Invite);
    assert_eq!(vm.request_uri_str(), Some("sip:vm@203.0.113.9"));
    sim.respond(key, &invite, 487, "bob", None);
    sim.respond(vm_key, &vm, 200, "vm", Some(phone_sdp("203.0.113.9:7000", "sendrecv")));
    assert_eq!(sim.take_response(1).status(), Some(200), "voicemail answers the caller");
}

#[test]
fn an_answer_that_crosses_the_cancel_is_acknowledged_then_ended() {
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5"], true, RingPolicy::default());
    let (key, invite) = sim.take_request(Method::Invite);
    sim.respond(key, &invite, 180, "bob", None);
    sim.sip(SipInput::Cancelled { tx: crate::engine::ServerTx { edge: "edge-1".into(), id: 1 } });
    assert!(sim.cancelled(key));
    assert_eq!(sim.statuses(1), vec![180, 487]);
    sim.respond(key, &invite, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "sendrecv")));
    sim.take_ack();
    let (bye_key, bye) = sim.take_request(Method::Bye);
    sim.respond(bye_key, &bye, 200, "bob", None);
    assert!(sim.engine.is_over());
}

#[test]
fn parallel_targets_first_answer_wins_and_the_others_are_cancelled() {
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5", "sip:carol@203.0.113.6"], true, RingPolicy::default());
    let (bob_key, bob) = sim.take_request(Method::Invite);
    let (carol_key, carol) = sim.take_request(Method::Invite);
    assert_ne!(bob.call_id(), carol.call_id(), "each leg is a call of its own");
    sim.respond(bob_key, &bob, 180, "bob", None);
    sim.respond(carol_key, &carol, 200, "carol", Some(phone_sdp("203.0.113.6:5000", "sendrecv")));
    assert!(sim.cancelled(bob_key));
    assert_eq!(sim.statuses(1), vec![180, 200]);
    assert_eq!(sim.engine.partner(crate::engine::CALLER), Some(crate::engine::LegId(2)));
}

#[test]
fn when_every_target_fails_the_caller_hears_the_best_failure() {
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5", "sip:carol@203.0.113.6"], true, RingPolicy::default());
    let (bob_key, bob) = sim.take_request(Method::Invite);
    let (carol_key, carol) = sim.take_request(Method::Invite);
    sim.respond(bob_key, &bob, 486, "bob", None);
    assert!(sim.statuses(1).is_empty(), "carol still rings");
    sim.respond(carol_key, &carol, 404, "carol", None);
    assert_eq!(sim.statuses(1), vec![404], "the lowest class wins (RFC 3261 §16.7)");
    assert!(sim.engine.is_over());
}

#[test]
fn sequential_targets_are_tried_one_after_another() {
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5", "sip:carol@203.0.113.6"], false, RingPolicy::default());
    let (bob_key, bob) = sim.take_request(Method::Invite);
    assert!(!sim.sent.iter().any(|s| matches!(s, super::harness::Sent::Request { .. })), "one at a time");
    sim.respond(bob_key, &bob, 486, "bob", None);
    let (carol_key, carol) = sim.take_request(Method::Invite);
    assert_eq!(carol.request_uri_str(), Some("sip:carol@203.0.113.6"));
    sim.respond(carol_key, &carol, 200, "carol", Some(phone_sdp("203.0.113.6:5000", "sendrecv")));
    assert_eq!(sim.statuses(1), vec![200]);
}

#[test]
fn refusals_reach_the_caller_precisely() {
    let mut sim = Sim::new("1000");
    sim.command(Command::Reject { status: 404, reason: "Not Found".into() });
    assert_eq!(sim.statuses(1), vec![404]);
    assert!(sim.engine.is_over());

    let mut sim = Sim::dialing(&["mailto:bob@example.com"], true, RingPolicy::default());
    assert_eq!(sim.statuses(1), vec![502], "a target that cannot be called");
}

#[test]
fn without_media_the_caller_gets_503_and_nothing_is_dialled() {
    let now = std::time::Instant::now();
    let config =
        crate::engine::EngineConfig { session: "s2".into(), contact: "sip:s2@192.0.2.1".into(), sdp_user: "callmesh".into() };
    let route =
        crate::engine::Route { edge: "e".into(), peer: sip::transaction::Peer::udp("198.51.100.1:5060".parse().unwrap()) };
    let tx = crate::engine::ServerTx { edge: "e".into(), id: 1 };
    let mut engine = crate::engine::Engine::incoming(config, super::harness::caller_invite("1000"), tx, route, now);
    engine.handle_command(
        Command::Dial {
            targets: vec![super::harness::target("sip:bob@203.0.113.5")],
            parallel: true,
            ring: RingPolicy::default(),
        },
        now,
    );
    engine.handle_media(crate::engine::MediaInput::Unavailable { reason: "no ports".into() }, now);
    let outputs: Vec<_> = std::iter::from_fn(|| engine.poll_output()).collect();
    let statuses: Vec<u16> = outputs
        .iter()
        .filter_map(|o| match o {
            crate::engine::Output::Respond { response, .. } => response.status(),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, vec![503]);
    assert!(!outputs.iter().any(|o| matches!(o, crate::engine::Output::Send { .. })));
    assert!(engine.is_over());
}

#[test]
fn a_repeated_answer_is_acknowledged_again_and_a_second_fork_is_ended() {
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5"], true, RingPolicy::default());
    let (key, invite) = sim.take_request(Method::Invite);
    let ok = sim.respond(key, &invite, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "sendrecv")));
    let first = sim.take_ack();
    sim.sip(SipInput::Response { key, response: ok });
    assert_eq!(sim.take_ack().as_bytes(), first.as_bytes(), "the same ACK again");
    // A forking proxy's second branch answers the same INVITE.
    sim.respond(key, &invite, 200, "bob-desk", Some(phone_sdp("203.0.113.7:5000", "sendrecv")));
    assert_eq!(sim.take_ack().to_tag(), Some("bob-desk"));
    let (_, bye) = sim.take_request(Method::Bye);
    assert_eq!(bye.to_tag(), Some("bob-desk"), "the extra dialog is ended at once");
    assert_eq!(sim.leg(1), LegState::Confirmed, "the call keeps the first answer");
}

#[test]
fn a_caller_answered_first_is_bridged_to_the_first_target_that_answers_in_turn() {
    // A queue: we answer the caller ourselves, then ring targets one after the other.
    let mut sim = Sim::new("1000");
    sim.command(Command::Answer);
    let ok = sim.take_response(1);
    assert_eq!(ok.status(), Some(200));
    assert!(body(&ok).contains("m=audio 30000 "), "the caller hears the relay: {}", body(&ok));
    let alice = sim.caller_dialog(&ok);
    sim.caller_acks(&alice);
    let targets =
        vec![Target { uri: "sip:a1@203.0.113.5".into(), route: None }, Target { uri: "sip:a2@203.0.113.6".into(), route: None }];
    sim.command(Command::Dial { targets, parallel: false, ring: RingPolicy::default() });
    let (key, first) = sim.take_request(Method::Invite);
    assert_eq!(first.request_uri_str(), Some("sip:a1@203.0.113.5"));
    // The first declines: a caller already answered is not refused, the next one rings.
    sim.respond(key, &first, 603, "a1", None);
    assert!(sim.statuses(1).is_empty());
    let (key, second) = sim.take_request(Method::Invite);
    assert_eq!(second.request_uri_str(), Some("sip:a2@203.0.113.6"));
    // It answers with one codec only: the caller is told (re-INVITE) and bridged.
    let pcmu_only = phone_sdp("203.0.113.6:5000", "sendrecv").replace("RTP/AVP 0 101", "RTP/AVP 0");
    sim.respond(key, &second, 200, "a2", Some(pcmu_only));
    sim.take_ack();
    let (_, reinvite) = sim.take_request(Method::Invite);
    assert_eq!(reinvite.to_tag(), Some("alice-1"));
    assert_eq!(sim.engine.partner(crate::engine::LegId(0)), Some(crate::engine::LegId(2)));
}

#[test]
fn a_resumed_call_knows_which_of_its_invites_nothing_was_heard_of() {
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5", "sip:carol@203.0.113.6"], true, RingPolicy::default());
    let (bob_key, bob_invite) = sim.take_request(Method::Invite);
    let (carol_key, _) = sim.take_request(Method::Invite);
    sim.respond(bob_key, &bob_invite, 180, "bob", None);
    // The record a node taking the call over reads: carol's INVITE may never have left.
    let wall = 1_700_000_000_000;
    let state = sim.engine.snapshot(sim.now, wall);
    let resumed = crate::engine::Engine::restore(state, sim.now, wall).unwrap();
    let unheard: Vec<(u64, String)> = resumed
        .unheard_invites()
        .into_iter()
        .filter_map(|o| match o {
            crate::engine::Output::Send { key, request, .. } => {
                Some((key, request.request_uri_str().unwrap_or_default().to_owned()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(unheard, vec![(carol_key, "sip:carol@203.0.113.6".to_owned())], "bob rang: only carol's goes again");
}
