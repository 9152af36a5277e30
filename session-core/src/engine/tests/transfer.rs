//! Transfers through the engine (REFER from either side): progress in NOTIFYs, the target
//! bridged to the transferee, the referrer let go; a failing target leaves the referrer's
//! call as it was. Attended: the replaced dialog looked up, its other party called with a
//! `Replaces` naming its own dialog.

use sip::message::{HeaderName, Method};

use super::harness::{Sim, body, connect, phone_sdp};
use crate::engine::{CallEvent, Command, LegId, Replacement, Replaces, Route, Target, replacement};
use crate::leg::LegState;

fn sipfrag_status(notify: &sip::message::Message) -> u16 {
    body(notify).split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[test]
fn the_callee_transfers_the_caller_to_a_third_party() {
    let (mut sim, _alice, mut bob) = Sim::answered();
    let (refer_tx, _) = sim.request_with(&mut bob, Method::Refer, &[(HeaderName::ReferTo, "<sip:carol@203.0.113.6>")]);
    assert_eq!(sim.statuses(refer_tx), vec![202]);
    let (n, notify) = sim.take_request(Method::Notify);
    assert_eq!(sipfrag_status(&notify), 100);
    sim.respond(n, &notify, 200, "bob", None);
    // Carol is offered alice's description on bob's slot.
    let (key, invite) = sim.take_request(Method::Invite);
    assert_eq!(invite.request_uri_str(), Some("sip:carol@203.0.113.6"));
    assert!(body(&invite).contains("m=audio 30002 "), "{}", body(&invite));
    sim.respond(key, &invite, 180, "carol", None);
    let (n, notify) = sim.take_request(Method::Notify);
    assert_eq!(sipfrag_status(&notify), 180);
    sim.respond(n, &notify, 200, "bob", None);
    sim.media.clear();
    sim.respond(key, &invite, 200, "carol", Some(phone_sdp("203.0.113.6:5000", "sendrecv")));
    sim.take_ack();
    let (n, notify) = sim.take_request(Method::Notify);
    assert_eq!(sipfrag_status(&notify), 200);
    assert!(notify.header(HeaderName::SubscriptionState).unwrap().starts_with("terminated"));
    sim.respond(n, &notify, 200, "bob", None);
    let (bye_key, bye) = sim.take_request(Method::Bye);
    assert_eq!(bye.to_tag(), Some("bob"), "the referrer is let go");
    sim.respond(bye_key, &bye, 200, "bob", None);
    assert_eq!(sim.engine.partner(LegId(0)), Some(LegId(2)));
    assert!(sim.media.contains(&connect(1, "203.0.113.6:5000")));
    // Alice's view changes (carol's address differs only behind the relay; same codecs):
    // nothing new to tell her, no re-INVITE.
    assert!(
        !sim.sent
            .iter()
            .any(|s| matches!(s, super::harness::Sent::Request { request, .. } if request.method() == Some(&Method::Invite)))
    );
    assert!(sim.events.iter().any(|e| matches!(e, CallEvent::Transfer { status: 200, .. })));
    assert_eq!((sim.caller(), sim.leg(1), sim.leg(2)), (LegState::Confirmed, LegState::Terminated, LegState::Confirmed));
}

#[test]
fn an_operator_puts_the_caller_through_to_a_third_party() {
    let (mut sim, _alice, _bob) = Sim::answered();
    let carol = Target { uri: "sip:carol@203.0.113.6".into(), route: None };
    sim.command(Command::Transfer { leg: LegId(0), target: carol });
    // Bob is let go at once; carol is called on his slot.
    let (bye_key, bye) = sim.take_request(Method::Bye);
    assert_eq!(bye.to_tag(), Some("bob"));
    sim.respond(bye_key, &bye, 200, "bob", None);
    assert_eq!(sim.caller(), LegState::Confirmed, "alice stays while carol rings");
    let (key, invite) = sim.take_request(Method::Invite);
    assert_eq!(invite.request_uri_str(), Some("sip:carol@203.0.113.6"));
    assert!(body(&invite).contains("m=audio 30002 "), "{}", body(&invite));
    sim.respond(key, &invite, 200, "carol", Some(phone_sdp("203.0.113.6:5000", "sendrecv")));
    sim.take_ack();
    assert_eq!(sim.engine.partner(LegId(0)), Some(LegId(2)));
    assert!(sim.media.contains(&connect(1, "203.0.113.6:5000")));
    assert_eq!((sim.caller(), sim.leg(1), sim.leg(2)), (LegState::Confirmed, LegState::Terminated, LegState::Confirmed));
}

#[test]
fn a_caller_whose_transfer_target_refuses_is_hung_up() {
    let (mut sim, _alice, _bob) = Sim::answered();
    let carol = Target { uri: "sip:carol@203.0.113.6".into(), route: None };
    sim.command(Command::Transfer { leg: LegId(0), target: carol });
    let (bye_key, bye) = sim.take_request(Method::Bye);
    sim.respond(bye_key, &bye, 200, "bob", None);
    let (key, invite) = sim.take_request(Method::Invite);
    sim.respond(key, &invite, 486, "carol", None);
    let (_, bye) = sim.take_request(Method::Bye);
    assert_eq!(bye.to_tag(), Some("alice-1"), "nobody is left for alice");
}

#[test]
fn a_failed_transfer_target_leaves_the_call_as_it_was() {
    let (mut sim, _alice, mut bob) = Sim::answered();
    sim.request_with(&mut bob, Method::Refer, &[(HeaderName::ReferTo, "<sip:carol@203.0.113.6>")]);
    let (n, notify) = sim.take_request(Method::Notify);
    sim.respond(n, &notify, 200, "bob", None);
    let (key, invite) = sim.take_request(Method::Invite);
    sim.respond(key, &invite, 486, "carol", None);
    let (_, notify) = sim.take_request(Method::Notify);
    assert_eq!(sipfrag_status(&notify), 486);
    assert_eq!(sim.engine.partner(LegId(0)), Some(LegId(1)), "alice still talks to bob");
    assert_eq!((sim.caller(), sim.leg(1)), (LegState::Confirmed, LegState::Confirmed));
}

#[test]
fn a_referrer_that_hung_up_leaves_the_transferee_to_the_target() {
    let (mut sim, _alice, mut bob) = Sim::answered();
    sim.request_with(&mut bob, Method::Refer, &[(HeaderName::ReferTo, "<sip:carol@203.0.113.6>")]);
    let (key, invite) = sim.take_request(Method::Invite);
    // Bob hangs up at once, as blind transferors do; alice stays for carol.
    let (bye_tx, _) = sim.request_in(&mut bob, Method::Bye, None);
    assert_eq!(sim.statuses(bye_tx), vec![200]);
    assert_eq!(sim.caller(), LegState::Confirmed);
    sim.respond(key, &invite, 486, "carol", None);
    // Carol refused and nobody is left for alice: she is hung up.
    let (_, bye) = sim.take_request(Method::Bye);
    assert_eq!(bye.to_tag(), Some("alice-1"));
}

#[test]
fn the_caller_can_transfer_the_callee_too() {
    let (mut sim, mut alice, _) = Sim::answered();
    let (tx, _) = sim.request_with(&mut alice, Method::Refer, &[(HeaderName::ReferTo, "<sip:carol@203.0.113.6>")]);
    assert_eq!(sim.statuses(tx), vec![202]);
    let (key, invite) = sim.take_request(Method::Invite);
    assert!(body(&invite).contains("m=audio 30000 "), "carol takes alice's slot: {}", body(&invite));
    sim.respond(key, &invite, 200, "carol", Some(phone_sdp("203.0.113.6:5000", "sendrecv")));
    assert_eq!(sim.engine.partner(LegId(1)), Some(LegId(2)), "bob now talks to carol");
    let (_, bye) = sim.take_request(Method::Bye);
    assert_eq!(bye.to_tag(), Some("alice-1"));
}

#[test]
fn a_bad_refer_is_refused() {
    let (mut sim, _alice, mut bob) = Sim::answered();
    let (tx, _) = sim.request_with(&mut bob, Method::Refer, &[]);
    assert_eq!(sim.statuses(tx), vec![400], "no Refer-To");
    let (tx, _) = sim.request_with(&mut bob, Method::Refer, &[(HeaderName::ReferTo, "<sip:carol@203.0.113.6?Replaces=a%40b>")]);
    assert_eq!(sim.statuses(tx), vec![400], "a Replaces without its tags");
    assert!(sim.lookups.is_empty());
}

/// Bob's consultation call with carol went through us as call `s2`: bob names his dialog
/// with us (`s2-0`); carol's dialog with `s2` is `s2-1@callmesh` with her tag `carol-9`.
const CONSULTATION: &str = "<sip:s2@192.0.2.1?Replaces=bob-call%40203.0.113.5%3Bto-tag%3Ds2-0%3Bfrom-tag%3Dbob-7>";

fn carol_in_s2() -> Replacement {
    let peer = sip::transaction::Peer::udp("203.0.113.6:5060".parse().unwrap());
    Replacement {
        target: Target { uri: "sip:carol@203.0.113.6:5060".into(), route: Some(Route { edge: "edge-2".into(), peer }) },
        replaces: Replaces { call_id: "s2-1@callmesh".into(), to_tag: "carol-9".into(), from_tag: "s2-1".into() },
    }
}

#[test]
fn an_attended_transfer_calls_the_consulted_party_to_replace_its_other_call() {
    let (mut sim, _alice, mut bob) = Sim::answered();
    let (tx, _) = sim.request_with(&mut bob, Method::Refer, &[(HeaderName::ReferTo, CONSULTATION)]);
    assert_eq!(sim.statuses(tx), vec![202]);
    let (n, notify) = sim.take_request(Method::Notify);
    assert_eq!(sipfrag_status(&notify), 100);
    sim.respond(n, &notify, 200, "bob", None);
    let named = Replaces { call_id: "bob-call@203.0.113.5".into(), to_tag: "s2-0".into(), from_tag: "bob-7".into() };
    assert_eq!(sim.lookups, [named], "the driver is asked for the consultation call");
    assert!(!sim.sent.iter().any(|s| matches!(s, super::harness::Sent::Request { .. })), "nothing is called before");

    sim.command(Command::Replacement { found: Some(carol_in_s2()) });
    let (key, invite) = sim.take_request(Method::Invite);
    assert_eq!(invite.request_uri_str(), Some("sip:carol@203.0.113.6:5060"), "carol's device, as the other call knows it");
    assert_eq!(invite.header(HeaderName::Replaces), Some("s2-1@callmesh;to-tag=carol-9;from-tag=s2-1"));
    assert!(body(&invite).contains("m=audio 30002 "), "alice's description on bob's slot: {}", body(&invite));
    sim.respond(key, &invite, 200, "carol", Some(phone_sdp("203.0.113.6:5000", "sendrecv")));
    sim.take_ack();
    let (_, notify) = sim.take_request(Method::Notify);
    assert_eq!(sipfrag_status(&notify), 200);
    let (_, bye) = sim.take_request(Method::Bye);
    assert_eq!(bye.to_tag(), Some("bob"), "the transferor is let go");
    assert_eq!(sim.engine.partner(LegId(0)), Some(LegId(2)), "alice talks to carol");
}

#[test]
fn a_replaced_dialog_that_is_not_ours_is_passed_on() {
    let (mut sim, mut alice, _bob) = Sim::answered();
    let (tx, _) = sim.request_with(
        &mut alice,
        Method::Refer,
        &[(HeaderName::ReferTo, "<sip:carol@203.0.113.6?Replaces=x%40y%3Bto-tag%3Dc%3Bfrom-tag%3Da>")],
    );
    assert_eq!(sim.statuses(tx), vec![202]);
    sim.command(Command::Replacement { found: None });
    let (key, invite) = sim.take_request(Method::Invite);
    assert_eq!(invite.request_uri_str(), Some("sip:carol@203.0.113.6"));
    assert_eq!(invite.header(HeaderName::Replaces), Some("x@y;to-tag=c;from-tag=a"));
    // Carol does not know that dialog: the transfer fails and the call goes on.
    sim.respond(key, &invite, 481, "carol", None);
    let notifies: Vec<u16> = std::iter::from_fn(|| {
        sim.sent
            .iter()
            .position(|s| matches!(s, super::harness::Sent::Request { request, .. } if request.method() == Some(&Method::Notify)))
            .map(|_| sipfrag_status(&sim.take_request(Method::Notify).1))
    })
    .collect();
    assert_eq!(notifies, [100, 481]);
    assert_eq!(sim.engine.partner(LegId(0)), Some(LegId(1)));
}

#[test]
fn the_replacement_is_found_from_the_other_calls_state() {
    // The consultation call: alice (here the consulting party) ↔ s1 ↔ bob.
    let (sim, _alice, _bob) = Sim::answered();
    let state = sim.engine.snapshot(sim.now, 1_000);
    let named = Replaces { call_id: "call-1@198.51.100.1".into(), to_tag: "s1-0".into(), from_tag: "alice-1".into() };
    let found = replacement(&state, &named).expect("alice's dialog is in the call");
    assert_eq!(found.replaces, Replaces { call_id: "s1-1@callmesh".into(), to_tag: "bob".into(), from_tag: "s1-1".into() });
    assert_eq!(found.target.uri, "sip:bob@203.0.113.5:5060");
    assert_eq!(found.target.route.map(|r| r.edge), Some("edge-1".into()));
    // Only a party to the dialog can name it: another sender's tag, another Call-ID, an
    // unknown leg find nothing.
    for wrong in [
        Replaces { from_tag: "mallory".into(), ..named.clone() },
        Replaces { call_id: "other@x".into(), ..named.clone() },
        Replaces { to_tag: "s1-7".into(), ..named.clone() },
    ] {
        assert_eq!(replacement(&state, &wrong), None, "{wrong}");
    }
}

#[test]
fn a_transferee_held_by_its_transferor_is_taken_off_hold_with_the_target() {
    let (mut sim, _alice, mut bob) = Sim::answered();
    // Bob holds alice before he transfers her; she answered that she only receives.
    let (hold_tx, _) =
        sim.request_in(&mut bob, Method::Invite, Some(("application/sdp", phone_sdp("203.0.113.5:5000", "sendonly"))));
    let (key, hold) = sim.take_request(Method::Invite);
    sim.respond(key, &hold, 200, "alice-1", Some(phone_sdp("198.51.100.1:4000", "recvonly")));
    sim.take_ack();
    assert_eq!(sim.statuses(hold_tx), vec![200]);

    sim.request_with(&mut bob, Method::Refer, &[(HeaderName::ReferTo, "<sip:carol@203.0.113.6>")]);
    let (key, invite) = sim.take_request(Method::Invite);
    assert!(body(&invite).contains("a=sendrecv"), "carol is not on hold: {}", body(&invite));
    sim.respond(key, &invite, 200, "carol", Some(phone_sdp("203.0.113.6:5000", "sendrecv")));
    let (_, unhold) = sim.take_request(Method::Invite);
    assert_eq!(unhold.to_tag(), Some("alice-1"));
    assert!(body(&unhold).contains("a=sendrecv"), "alice hears carol, off hold: {}", body(&unhold));
}
