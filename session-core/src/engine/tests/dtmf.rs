//! DTMF between a caller that knows only SIP INFO and a callee with RFC 4733 events: the
//! callee is offered events all the same, the caller answered without them; INFO digits
//! become events the media node writes, events it reads become INFO.

use sip::message::Method;

use super::harness::{RELAY, Sim, body, connect, invite_from_alice, phone_sdp};
use crate::engine::{CallEvent, Command, FarMedia, MediaInput, MediaOutput, RingPolicy, Target};

/// Alice, whose phone offers PCMU only, calls bob (PCMU and events on 101); bob answers.
fn info_caller_to_rfc4733_callee() -> (Sim, sip::dialog::Dialog, sip::dialog::Dialog) {
    let offer = "v=0\r\no=alice 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let mut sim = Sim::from_invite(invite_from_alice(offer, &[]));
    let now = sim.now;
    assert!(matches!(sim.media[0], MediaOutput::Allocate { caller: Some(FarMedia { events: None, .. }), .. }), "{:?}", sim.media);
    let slots = RELAY.iter().map(|a| a.parse().unwrap()).collect();
    sim.engine.handle_media(MediaInput::Allocated { node: "media-1".into(), slots }, now);
    sim.command(Command::Dial {
        targets: vec![Target { uri: "sip:bob@203.0.113.5".into(), route: None }],
        parallel: true,
        ring: RingPolicy::default(),
    });
    let (key, invite) = sim.take_request(Method::Invite);
    let offered = body(&invite);
    // Events, and the codecs the media node transcodes to after the caller's own.
    assert!(offered.contains("m=audio 30002 RTP/AVP 0 8 96 101") && offered.contains("telephone-event/8000"), "{offered}");
    sim.respond(key, &invite, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "sendrecv")));
    sim.take_ack();
    let ok = sim.take_response(1);
    let answer = body(&ok);
    assert!(answer.contains("m=audio 30000 RTP/AVP 0\r\n") && !answer.contains("telephone-event"), "{answer}");
    let alice = sim.caller_dialog(&ok);
    sim.caller_acks(&alice);
    (sim, alice, Sim::callee_dialog(&invite, "bob"))
}

#[test]
fn an_info_digit_becomes_events_toward_a_callee_that_takes_them() {
    let (mut sim, mut alice, _bob) = info_caller_to_rfc4733_callee();
    assert!(sim.media.contains(&connect(1, "203.0.113.5:5000")));
    sim.media.clear();
    let (tx, _) =
        sim.request_in(&mut alice, Method::Info, Some(("application/dtmf-relay", "Signal=5\r\nDuration=250\r\n".into())));
    assert_eq!(sim.statuses(tx), [200]);
    assert_eq!(sim.media, [MediaOutput::Dtmf { slot: 1, digit: '5', duration_ms: 250 }]);
    assert!(sim.sent.is_empty(), "no INFO to bob: {:?}", sim.sent);
    assert!(sim.events.contains(&CallEvent::Dtmf { leg: crate::engine::LegId(0), digit: '5' }));
}

#[test]
fn events_read_from_the_callee_reach_the_caller_as_info() {
    let (mut sim, _alice, _bob) = info_caller_to_rfc4733_callee();
    sim.engine.handle_media(MediaInput::Dtmf { slot: 1, digit: '#', duration_ms: 120 }, sim.now);
    sim.drain();
    let (_, info) = sim.take_request(Method::Info);
    assert_eq!(info.to_tag(), Some("alice-1"));
    assert_eq!(info.content_type(), Some("application/dtmf-relay"));
    assert_eq!(body(&info), "Signal=#\r\nDuration=120\r\n");
    assert!(sim.events.contains(&CallEvent::Dtmf { leg: crate::engine::LegId(1), digit: '#' }));
}

#[test]
fn legs_that_agree_keep_info_as_info() {
    let (mut sim, mut alice, _bob) = Sim::answered();
    let (_, _) =
        sim.request_in(&mut alice, Method::Info, Some(("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n".into())));
    sim.take_request(Method::Info);
    assert!(!sim.media.iter().any(|m| matches!(m, MediaOutput::Dtmf { .. })));
}
