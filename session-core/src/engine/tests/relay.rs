//! A call whose relay's media node died, moved to a new relay: a new allocation (with the
//! caller's address), then a re-INVITE to each leg with its new relay address, the relay
//! told where each far end is; a failed allocation ends the call.

use sip::message::Method;

use super::harness::*;
use crate::engine::{Command, MediaInput, MediaOutput};
use crate::leg::LegState;

const MOVED: [&str; 2] = ["192.0.2.200:41000", "192.0.2.200:41002"];

#[test]
fn a_lost_relay_is_replaced_and_both_legs_re_offered_its_addresses() {
    let (mut sim, _alice, _bob) = Sim::answered();
    sim.media.clear();
    let persisted = sim.persisted;
    sim.command(Command::Reanchor);
    assert!(
        matches!(sim.media.as_slice(), [MediaOutput::Allocate { slots: 2, caller: Some(c) }] if c.rtp.port() == 4000),
        "{:?}",
        sim.media
    );
    // A second loss reported meanwhile changes nothing.
    sim.command(Command::Reanchor);
    assert_eq!(sim.media.len(), 1);
    sim.media.clear();
    let slots = MOVED.iter().map(|a| a.parse().unwrap()).collect();
    sim.engine.handle_media(MediaInput::Allocated { node: "media-2".into(), slots }, sim.now);
    sim.drain();
    assert_eq!(sim.engine.media_node(), Some("media-2"));

    // Alice first: bob's description at her new relay address, our version moved on.
    let (key, to_alice) = sim.take_request(Method::Invite);
    let offer = body(&to_alice);
    assert!(offer.contains("c=IN IP4 192.0.2.200") && offer.contains("m=audio 41000 "), "{offer}");
    assert!(offer.contains(" 2 IN IP4"), "a new SDP version: {offer}");
    assert!(sim.sent.iter().all(|s| !matches!(s, Sent::Request { .. })), "bob waits for alice's answer");
    sim.respond(key, &to_alice, 200, "alice-1", Some(phone_sdp("198.51.100.1:4000", "sendrecv")));
    sim.take_ack();
    // Then bob: alice's description at his new relay address; his answer tells the relay.
    let (key, to_bob) = sim.take_request(Method::Invite);
    let offer = body(&to_bob);
    assert!(offer.contains("m=audio 41002 "), "{offer}");
    sim.respond(key, &to_bob, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "sendrecv")));
    sim.take_ack();
    assert_eq!(sim.media, vec![connect(1, "203.0.113.5:5000")], "the caller's slot was connected by the allocation");
    assert!(sim.persisted > persisted, "the new relay is recorded");
    assert_eq!((sim.caller(), sim.leg(1)), (LegState::Confirmed, LegState::Confirmed));
    assert!(sim.sent.iter().all(|s| !matches!(s, Sent::Response { .. })), "nothing carried across: {:#?}", sim.sent);
}

#[test]
fn without_a_new_relay_the_call_ends() {
    let (mut sim, _alice, _bob) = Sim::answered();
    sim.command(Command::Reanchor);
    sim.engine.handle_media(MediaInput::Unavailable { reason: "no media node".into() }, sim.now);
    sim.drain();
    let (_, bye) = sim.take_request(Method::Bye);
    assert!(bye.method() == Some(&Method::Bye));
    sim.take_request(Method::Bye);
}
