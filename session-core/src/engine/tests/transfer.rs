//! Blind transfer through the engine (REFER from either side): progress in NOTIFYs, the
//! target bridged to the transferee, the referrer let go; a failing target leaves the
//! referrer's call as it was.

use sip::message::{HeaderName, Method};

use super::harness::{Sim, body, phone_sdp};
use crate::engine::{CallEvent, LegId, MediaOutput};
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
    assert!(sim.media.contains(&MediaOutput::Connect { slot: 1, remote: "203.0.113.6:5000".parse().unwrap() }));
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
fn refer_outside_an_answered_call_or_with_replaces_is_refused() {
    let (mut sim, _alice, mut bob) = Sim::answered();
    let (tx, _) = sim.request_with(&mut bob, Method::Refer, &[]);
    assert_eq!(sim.statuses(tx), vec![400]);
    let (tx, _) = sim.request_with(
        &mut bob,
        Method::Refer,
        &[(HeaderName::ReferTo, "<sip:carol@203.0.113.6?Replaces=a%40b%3Bto-tag%3D1%3Bfrom-tag%3D2>")],
    );
    assert_eq!(sim.statuses(tx), vec![501]);
}
