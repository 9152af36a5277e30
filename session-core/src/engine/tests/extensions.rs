//! Extensions on a virtual clock: reliable provisional responses acknowledged at each leg
//! (RFC 3262), session timers refreshed or expired per leg (RFC 4028), and what a caller
//! requires that we cannot honour refused precisely (420, 422).

use std::time::Duration;

use sip::message::{Builder, HeaderName, Message, Method};
use sip::transaction::Peer;

use super::harness::{Sim, body, invite_from_alice, phone_sdp, via};
use crate::engine::{RingPolicy, ServerTx, SipInput};
use crate::leg::LegState;

/// A response from bob to `request` with extra headers.
fn bob_says(sim: &mut Sim, key: u64, request: &Message, status: u16, headers: &[(HeaderName, &str)], sdp: bool) -> Message {
    let mut b = Builder::response_to(request, status, "", Some("bob"))
        .header(HeaderName::Contact, "<sip:bob@203.0.113.5:5060>")
        .header(HeaderName::Allow, "INVITE, ACK, BYE, CANCEL, UPDATE");
    for (name, value) in headers {
        b = b.header(*name, value);
    }
    if sdp {
        b = b.body("application/sdp", phone_sdp("203.0.113.5:5000", "sendrecv"));
    }
    let response = b.build().unwrap();
    sim.sip(SipInput::Response { key, response: response.clone() });
    response
}

fn requests(sim: &Sim) -> usize {
    sim.sent.iter().filter(|s| matches!(s, super::harness::Sent::Request { .. })).count()
}

#[test]
fn a_reliable_provisional_is_acknowledged_once_and_passed_on_plain() {
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5"], true, RingPolicy::default());
    let (key, invite) = sim.take_request(Method::Invite);
    assert!(invite.tokens(HeaderName::Supported).any(|t| t == "100rel"), "we say we can");
    let reliable = [(HeaderName::Require, "100rel"), (HeaderName::RSeq, "1")];
    bob_says(&mut sim, key, &invite, 183, &reliable, true);
    let (_, prack) = sim.take_request(Method::Prack);
    assert_eq!(prack.header(HeaderName::RAck), Some("1 1 INVITE"));
    assert_eq!(prack.to_tag(), Some("bob"), "in the early dialog");
    let progress = sim.take_response(1);
    assert_eq!(progress.status(), Some(183));
    assert!(progress.header(HeaderName::Require).is_none() && progress.header(HeaderName::RSeq).is_none());
    assert!(body(&progress).contains("m=audio 30000 "), "early media at the relay");
    // The same 183 again (its retransmission): not acknowledged again.
    bob_says(&mut sim, key, &invite, 183, &reliable, true);
    assert!(
        !sim.sent
            .iter()
            .any(|s| matches!(s, super::harness::Sent::Request { request, .. } if request.method() == Some(&Method::Prack)))
    );
}

#[test]
fn we_refresh_a_caller_without_timers_at_half_the_interval() {
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5"], true, RingPolicy::default());
    let (key, invite) = sim.take_request(Method::Invite);
    assert_eq!((invite.header(HeaderName::SessionExpires), invite.header(HeaderName::MinSe)), (Some("1800"), Some("90")));
    sim.respond(key, &invite, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "sendrecv")));
    sim.take_ack();
    let ok = sim.take_response(1);
    // Alice said nothing of timers: we refresh, and do not require her to know.
    assert_eq!(ok.header(HeaderName::SessionExpires), Some("1800;refresher=uas"));
    assert_eq!(ok.header(HeaderName::Require), None);
    sim.caller_acks(&sim.caller_dialog(&ok));

    sim.advance(Duration::from_secs(899));
    assert_eq!(requests(&sim), 0);
    sim.advance(Duration::from_secs(2));
    // Alice allows no UPDATE: a re-INVITE with what she hears already (same version).
    let (key, refresh) = sim.take_request(Method::Invite);
    assert_eq!(refresh.to_tag(), Some("alice-1"));
    assert_eq!(refresh.header(HeaderName::SessionExpires), Some("1800;refresher=uac"));
    assert!(body(&refresh).contains(" 1 IN IP4 ") && body(&refresh).contains("m=audio 30000 "), "{}", body(&refresh));
    sim.respond(key, &refresh, 200, "alice-1", Some(phone_sdp("198.51.100.1:4000", "sendrecv")));
    sim.take_ack();
    sim.advance(Duration::from_secs(899));
    assert_eq!(requests(&sim), 0, "the next refresh is half an interval after this one");
    sim.advance(Duration::from_secs(2));
    sim.take_request(Method::Invite);
}

#[test]
fn a_callee_that_stops_refreshing_is_hung_up_and_the_caller_with_it() {
    let mut sim = Sim::dialing(&["sip:bob@203.0.113.5"], true, RingPolicy::default());
    let (key, invite) = sim.take_request(Method::Invite);
    let timer = [(HeaderName::SessionExpires, "90;refresher=uas"), (HeaderName::Require, "timer")];
    bob_says(&mut sim, key, &invite, 200, &timer, true);
    sim.take_ack();
    let ok = sim.take_response(1);
    sim.caller_acks(&sim.caller_dialog(&ok));
    let mut bob = Sim::callee_dialog(&invite, "bob");

    // Bob refreshes after 50 s with an UPDATE: answered with the interval, his to keep.
    sim.advance(Duration::from_secs(50));
    let tx = sim.next_tx();
    let update = bob
        .request(Method::Update, Some(&via("z9hG4bK-refresh")))
        .header(HeaderName::SessionExpires, "90;refresher=uac")
        .build()
        .unwrap();
    let from = Peer::udp("203.0.113.5:5060".parse().unwrap());
    sim.sip(SipInput::Request { tx: ServerTx { edge: "edge-1".into(), id: tx }, request: update, from });
    // (The UPDATE is relayed to alice, whose answer comes back to bob.)
    let (key, relayed) = sim.take_request(Method::Update);
    sim.respond(key, &relayed, 200, "alice-1", None);
    let answer = sim.take_response(tx);
    assert_eq!(answer.header(HeaderName::SessionExpires), Some("90;refresher=uac"));
    assert_eq!(answer.header(HeaderName::Require), Some("timer"));

    // Then silence: 90 s less 30 after his refresh, bob's leg is given up.
    sim.advance(Duration::from_secs(59));
    assert!(
        !sim.sent
            .iter()
            .any(|s| matches!(s, super::harness::Sent::Request { request, .. } if request.method() == Some(&Method::Bye)))
    );
    sim.advance(Duration::from_secs(2));
    let (_, bye_bob) = sim.take_request(Method::Bye);
    assert_eq!(bye_bob.to_tag(), Some("bob"));
    let (_, bye_alice) = sim.take_request(Method::Bye);
    assert_eq!(bye_alice.to_tag(), Some("alice-1"), "the caller is not left talking to nobody");
    assert_eq!(sim.leg(1), LegState::Terminating);
}

/// An INVITE from alice with `header`, handled by a fresh engine: what she gets.
fn caller_with(header: (HeaderName, &str)) -> Message {
    let mut sim = Sim::from_invite(invite_from_alice(&phone_sdp("198.51.100.1:4000", "sendrecv"), &[header]));
    assert!(sim.media.is_empty(), "refused before any media");
    sim.take_response(1)
}

#[test]
fn what_a_caller_requires_and_we_cannot_honour_is_refused_precisely() {
    let refused = caller_with((HeaderName::Require, "100rel, timer"));
    assert_eq!(refused.status(), Some(420));
    assert_eq!(refused.header(HeaderName::Unsupported), Some("100rel"), "timer we do");
    let short = caller_with((HeaderName::SessionExpires, "30"));
    assert_eq!(short.status(), Some(422));
    assert_eq!(short.header(HeaderName::MinSe), Some("90"));
}
