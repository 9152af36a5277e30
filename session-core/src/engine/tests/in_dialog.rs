//! In-dialog traffic through the engine: BYE in every state (always answered at once),
//! re-INVITEs carried across with anchored descriptions, glare (491 and a retry after the
//! RFC's delay), INFO relayed with DTMF reported, requests for unknown dialogs.

use std::time::Duration;

use sip::message::Method;
use sip::transaction::Peer;

use super::harness::{Sent, Sim, body, far, phone_sdp};
use crate::engine::{CallEvent, FarMedia, LegId, MediaOutput, RingPolicy, ServerTx, SipInput};
use crate::leg::LegState;

#[test]
fn a_bye_is_answered_at_once_in_every_state_of_the_caller() {
    // Early: the caller's BYE on the early dialog ends the INVITE with 487 and is confirmed.
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5"], true, RingPolicy::default());
    let (key, invite) = sim.take_request(Method::Invite);
    sim.respond(key, &invite, 180, "bob", None);
    let ringing = sim.take_response(1);
    let mut early = sim.caller_dialog(&ringing);
    let (bye_tx, _) = sim.request_in(&mut early, Method::Bye, None);
    assert_eq!(sim.statuses(bye_tx), vec![200]);
    assert_eq!(sim.statuses(1), vec![487]);
    assert!(sim.cancelled(key), "the target is cancelled");

    // Confirmed: 200, and the callee gets a BYE.
    let (mut sim, mut alice, _) = Sim::answered();
    let (bye_tx, _) = sim.request_in(&mut alice, Method::Bye, None);
    assert_eq!(sim.statuses(bye_tx), vec![200]);
    sim.take_request(Method::Bye);

    // Terminating (we sent BYE, the far end's BYE crosses it): confirmed too.
    let (mut sim, mut alice, mut bob) = Sim::answered();
    sim.request_in(&mut bob, Method::Bye, None);
    let (_, our_bye) = sim.take_request(Method::Bye);
    assert_eq!(our_bye.to_tag(), Some("alice-1"));
    assert_eq!(sim.caller(), LegState::Terminating);
    let (crossing, _) = sim.request_in(&mut alice, Method::Bye, None);
    assert_eq!(sim.statuses(crossing), vec![200]);

    // Terminated: the dialog is gone, 481 at once (not a timer's 481 five seconds later).
    let (mut sim, mut alice, mut bob) = Sim::answered();
    sim.request_in(&mut bob, Method::Bye, None);
    let (key, bye) = sim.take_request(Method::Bye);
    sim.respond(key, &bye, 200, "alice-1", None);
    assert_eq!(sim.caller(), LegState::Terminated);
    let (late, _) = sim.request_in(&mut alice, Method::Bye, None);
    assert_eq!(sim.statuses(late), vec![481]);

    // The BYE that ended the leg, again on a new transaction (its edge died before the 200
    // went out; the retransmission reached another edge): 200, as the first got.
    let (mut sim, mut alice, _) = Sim::answered();
    let (_, bye) = sim.request_in(&mut alice, Method::Bye, None);
    assert_eq!(sim.caller(), LegState::Terminated);
    let again = sim.next_tx();
    let from = Peer::udp("203.0.113.5:5060".parse().unwrap());
    sim.sip(SipInput::Request { tx: ServerTx { edge: "edge-2".into(), id: again }, request: bye, from });
    assert_eq!(sim.statuses(again), vec![200]);
}

#[test]
fn a_reinvite_is_carried_across_with_anchored_descriptions() {
    let (mut sim, mut alice, _) = Sim::answered();
    let (tx, _) =
        sim.request_in(&mut alice, Method::Invite, Some(("application/sdp", phone_sdp("198.51.100.1:4000", "sendonly"))));
    let (key, reinvite) = sim.take_request(Method::Invite);
    let offer = body(&reinvite);
    assert!(offer.contains("a=sendonly") && offer.contains("m=audio 30002 "), "{offer}");
    assert!(offer.contains("o=callmesh ") && offer.contains(" 2 IN IP4"), "our version moved to 2: {offer}");
    assert!(sim.statuses(tx).is_empty(), "alice waits for bob's answer");
    sim.respond(key, &reinvite, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "recvonly")));
    let ack = sim.take_ack();
    assert_eq!(ack.cseq().map(|(s, _)| s), reinvite.cseq().map(|(s, _)| s));
    let ok = sim.take_response(tx);
    assert_eq!(ok.status(), Some(200));
    assert!(body(&ok).contains("a=recvonly") && body(&ok).contains("m=audio 30000 "), "{}", body(&ok));
    assert_eq!((sim.caller(), sim.leg(1)), (LegState::Confirmed, LegState::Confirmed));
}

#[test]
fn a_hangup_while_our_reinvite_is_out_waits_for_its_answer() {
    // Alice re-INVITEs (our re-INVITE goes to bob), then hangs up before bob answers it.
    let (mut sim, mut alice, _) = Sim::answered();
    sim.request_in(&mut alice, Method::Invite, Some(("application/sdp", phone_sdp("198.51.100.1:4000", "sendonly"))));
    let (key, reinvite) = sim.take_request(Method::Invite);
    let (bye_tx, _) = sim.request_in(&mut alice, Method::Bye, None);
    assert_eq!(sim.statuses(bye_tx), vec![200], "alice's BYE is answered at once");
    assert!(
        !sim.sent.iter().any(|s| matches!(s, Sent::Request { request, .. } if request.method() == Some(&Method::Bye))),
        "no BYE to bob before his answer: {:#?}",
        sim.sent
    );
    // Bob's 200 is acknowledged, then he gets the BYE.
    sim.respond(key, &reinvite, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "recvonly")));
    let order: Vec<&str> = sim
        .sent
        .iter()
        .filter_map(|s| match s {
            Sent::Ack(_) => Some("ACK"),
            Sent::Request { request, .. } if request.method() == Some(&Method::Bye) => Some("BYE"),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["ACK", "BYE"]);
    let (key, bye) = sim.take_request(Method::Bye);
    sim.respond(key, &bye, 200, "bob", None);
    assert_eq!(sim.leg(1), LegState::Terminated);
}

#[test]
fn a_refused_reinvite_is_refused_to_the_side_that_asked() {
    let (mut sim, mut alice, _) = Sim::answered();
    let (tx, _) =
        sim.request_in(&mut alice, Method::Invite, Some(("application/sdp", phone_sdp("198.51.100.1:4000", "sendonly"))));
    let (key, reinvite) = sim.take_request(Method::Invite);
    sim.respond(key, &reinvite, 488, "bob", None);
    assert_eq!(sim.statuses(tx), vec![488]);
    assert_eq!(sim.caller(), LegState::Confirmed);
}

#[test]
fn glare_backs_off_and_retries() {
    let (mut sim, mut alice, mut bob) = Sim::answered();
    // Alice puts bob on hold: our re-INVITE to bob...
    let (alice_tx, _) =
        sim.request_in(&mut alice, Method::Invite, Some(("application/sdp", phone_sdp("198.51.100.1:4000", "sendonly"))));
    let (key, ours) = sim.take_request(Method::Invite);
    // ...crosses bob's own re-INVITE: we answer it 491, bob answers ours 491.
    let (bob_tx, _) =
        sim.request_in(&mut bob, Method::Invite, Some(("application/sdp", phone_sdp("203.0.113.5:5000", "sendonly"))));
    assert_eq!(sim.statuses(bob_tx), vec![491]);
    sim.respond(key, &ours, 491, "bob", None);
    assert!(sim.statuses(alice_tx).is_empty(), "alice keeps waiting while we back off");
    // We placed bob's leg (owner of its Call-ID): 2.1 to 4 s.
    sim.advance(Duration::from_millis(2000));
    assert!(!sim.sent.iter().any(|s| matches!(s, super::harness::Sent::Request { .. })), "not before 2.1 s");
    sim.advance(Duration::from_millis(2000));
    let (key, retry) = sim.take_request(Method::Invite);
    assert!(retry.cseq().unwrap().0 > ours.cseq().unwrap().0, "a new CSeq");
    sim.respond(key, &retry, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "recvonly")));
    assert_eq!(sim.statuses(alice_tx), vec![200]);
}

#[test]
fn info_is_relayed_and_dtmf_reported() {
    let (mut sim, mut alice, _) = Sim::answered();
    let (tx, _) =
        sim.request_in(&mut alice, Method::Info, Some(("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n".into())));
    assert!(sim.events.contains(&CallEvent::Dtmf { leg: LegId(0), digit: '5' }));
    let (key, info) = sim.take_request(Method::Info);
    assert_eq!(body(&info), "Signal=5\r\nDuration=160\r\n");
    sim.respond(key, &info, 200, "bob", None);
    assert_eq!(sim.statuses(tx), vec![200], "bob's answer comes back to alice");
}

#[test]
fn the_relay_follows_the_far_ends_addresses() {
    let (mut sim, mut alice, _) = Sim::answered();
    sim.media.clear();
    sim.request_in(&mut alice, Method::Invite, Some(("application/sdp", phone_sdp("198.51.100.7:4100", "sendrecv"))));
    // Her SIP still comes from where it did: the relay may take her RTP from there too.
    let moved = FarMedia { signal: Some("198.51.100.1".parse().unwrap()), ..far("198.51.100.7:4100") };
    assert!(sim.media.contains(&MediaOutput::Connect { slot: 0, far: moved }), "{:?}", sim.media);
}
