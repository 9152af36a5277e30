//! The engine as one end of a call (the SDK's mode): our own offers and answers, the
//! media set up from them, and what a user decides going in as commands — a call taken,
//! a challenge answered, an answer timeout, holds asked both ways, glare, transfers both
//! ways.

use std::time::{Duration, Instant};

use media::sdp::{Direction, LocalMedia};
use sip::auth::Credentials;
use sip::dialog::Dialog;
use sip::message::{Builder, HeaderName, Method, Uri};
use sip::transaction::Peer;

use super::harness::{Sim, body, caller_invite, phone_sdp, via};
use crate::engine::{
    CALLER, CallEvent, Command, Engine, EngineConfig, LocalEnd, MediaOutput, Outgoing, Route, ServerTx, SipInput,
};
use crate::leg::LegState;

fn config() -> EngineConfig {
    EngineConfig { session: "p1".into(), contact: "sip:alice@192.0.2.7:5070".into(), sdp_user: "alice".into() }
}

fn end() -> LocalEnd {
    let mut media = LocalMedia::new("192.0.2.7".parse().unwrap(), 7000);
    media.username = "alice".into();
    LocalEnd {
        media,
        negotiation: Default::default(),
        identity: "\"Alice\" <sip:alice@192.0.2.7:5070>".into(),
        credentials: Some(Credentials::new("alice", "secret")),
        reinvite_retries: 0,
        user_agent: "test-peer".into(),
    }
}

fn route() -> Route {
    Route { edge: String::new(), peer: Peer::udp("198.51.100.1:5060".parse().unwrap()) }
}

/// A call to us from 198.51.100.1 (RTP at :4000), offered and ringing.
fn answering() -> Sim {
    let now = Instant::now();
    let invite = caller_invite("alice");
    let engine = Engine::answering(config(), end(), invite.clone(), ServerTx { edge: String::new(), id: 1 }, route(), now);
    Sim::around(engine, invite, now)
}

/// A call we place to bob, with an answer timeout of 30 s.
fn calling() -> Sim {
    calling_as(end())
}

fn calling_as(end: LocalEnd) -> Sim {
    let now = Instant::now();
    let outgoing = Outgoing {
        target: Uri::parse("sip:bob@203.0.113.5").unwrap(),
        call_id: "c1@192.0.2.7".into(),
        headers: Vec::new(),
        answer_timeout: Some(Duration::from_secs(30)),
    };
    let engine = Engine::calling(config(), end, outgoing, route(), now);
    Sim::around(engine, caller_invite("unused"), now)
}

/// Our call to bob, answered and acknowledged: bob's view of the dialog.
fn talking_to_bob() -> (Sim, Dialog) {
    let mut sim = calling();
    let (key, invite) = sim.take_request(Method::Invite);
    sim.respond(key, &invite, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "sendrecv")));
    sim.take_ack();
    sim.media.clear();
    (sim, Sim::callee_dialog(&invite, "bob"))
}

fn local_media(sim: &Sim) -> Vec<&media::sdp::Negotiated> {
    sim.media.iter().filter_map(|m| if let MediaOutput::Local(n) = m { Some(n) } else { None }).collect()
}

#[test]
fn a_call_to_us_is_offered_then_answered_with_our_own_description() {
    let mut sim = answering();
    assert_eq!(sim.statuses(1), [180]);
    assert_eq!(sim.events, [CallEvent::Offered { leg: CALLER, replaces: None }]);
    assert!(sim.media.is_empty(), "no media node: the call's media is ours");

    sim.command(Command::Answer);
    let ok = sim.take_response(1);
    assert_eq!(ok.status(), Some(200));
    let answer = body(&ok);
    assert!(answer.contains("o=alice ") && answer.contains("m=audio 7000 ") && answer.contains("c=IN IP4 192.0.2.7"), "{answer}");
    let media = local_media(&sim);
    assert_eq!(media.len(), 1);
    assert_eq!(media[0].remote_rtp, Some("198.51.100.1:4000".parse().unwrap()));
    assert_eq!(media[0].codec.name.to_ascii_uppercase(), "PCMU");

    let mut alice = sim.caller_dialog(&ok);
    sim.caller_acks(&alice);
    assert_eq!(sim.caller(), LegState::Confirmed);
    let (bye, _) = sim.request_in(&mut alice, Method::Bye, None);
    assert_eq!(sim.statuses(bye), [200]);
    assert!(sim.engine.is_over());
    assert!(sim.events.contains(&CallEvent::LegEnded { leg: CALLER, status: 0 }));
}

#[test]
fn a_call_we_answered_is_recorded_once_acknowledged_and_resumes_from_its_record() {
    let mut sim = answering();
    assert_eq!(sim.statuses(1), [180]);
    sim.command(Command::Answer);
    let ok = sim.take_response(1);
    assert_eq!(sim.persisted, 0, "not before the ACK");
    let mut alice = sim.caller_dialog(&ok);
    sim.caller_acks(&alice);
    assert_eq!(sim.persisted, 1, "recorded once acknowledged");

    // Another node resumes it from its record, with the same end: it answers a re-INVITE
    // from there and takes the BYE.
    let state = sim.engine.snapshot(sim.now, 1_000);
    sim.engine = Engine::restore_answered(state, end(), sim.now, 1_000).unwrap();
    let (reinvite, _) =
        sim.request_in(&mut alice, Method::Invite, Some(("application/sdp", phone_sdp("198.51.100.1:4002", "sendrecv"))));
    assert_eq!(sim.events.last(), Some(&CallEvent::Reoffered { leg: CALLER, hold: false }));
    sim.command(Command::AcceptReoffer);
    let ok = sim.take_response(reinvite);
    assert_eq!(ok.status(), Some(200));
    assert!(body(&ok).contains("m=audio 7000 "), "answered from our seat: {}", body(&ok));
    sim.caller_acks(&alice);
    let (bye, _) = sim.request_in(&mut alice, Method::Bye, None);
    assert_eq!(sim.statuses(bye), [200]);
    assert!(sim.engine.is_over());
}

#[test]
fn an_offer_we_cannot_answer_is_refused_without_asking() {
    let now = Instant::now();
    let invite = Builder::request(&Method::Invite, "sip:alice@192.0.2.7")
        .header(HeaderName::Via, via("z9hG4bK-g729"))
        .header(HeaderName::From, "<sip:x@198.51.100.1>;tag=x")
        .header(HeaderName::To, "<sip:alice@192.0.2.7>")
        .header(HeaderName::CallId, "g729@198.51.100.1")
        .header(HeaderName::CSeq, "1 INVITE")
        .body(
            "application/sdp",
            "v=0\r\no=x 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\n",
        )
        .build()
        .unwrap();
    let engine = Engine::answering(config(), end(), invite.clone(), ServerTx { edge: String::new(), id: 1 }, route(), now);
    let mut sim = Sim::around(engine, invite, now);
    assert_eq!(sim.statuses(1), [488]);
    assert!(sim.engine.is_over());
    assert!(!sim.events.iter().any(|e| matches!(e, CallEvent::Offered { .. })));
}

#[test]
fn a_redirect_names_where_to_go() {
    let mut sim = answering();
    sim.statuses(1);
    sim.command(Command::Redirect { status: 302, contact: "sip:voicemail@192.0.2.9".into() });
    let moved = sim.take_response(1);
    assert_eq!(moved.status(), Some(302));
    assert_eq!(moved.header(HeaderName::Contact), Some("<sip:voicemail@192.0.2.9>"));
    assert!(sim.engine.is_over());
}

#[test]
fn a_call_placed_without_an_identity_says_its_contact_is_calling() {
    let mut sim = calling_as(LocalEnd { identity: String::new(), ..end() });
    let (_, invite) = sim.take_request(Method::Invite);
    let from = invite.from().expect("a From that parses");
    assert_eq!(from.uri.to_string(), config().contact);
}

#[test]
fn our_call_offers_our_media_answers_a_challenge_and_gives_up_at_the_answer_timeout() {
    let mut sim = calling();
    let (key, invite) = sim.take_request(Method::Invite);
    assert_eq!(invite.call_id(), Some("c1@192.0.2.7"));
    assert_eq!(invite.header(HeaderName::From), Some("\"Alice\" <sip:alice@192.0.2.7:5070>;tag=p1-0"));
    assert!(body(&invite).contains("m=audio 7000 RTP/AVP 0 8 111"), "{}", body(&invite));

    let challenge = Builder::response_to(&invite, 407, "Proxy Authentication Required", Some("proxy"))
        .header(HeaderName::ProxyAuthenticate, "Digest realm=\"example.com\", nonce=\"n1\", qop=\"auth\"")
        .build()
        .unwrap();
    sim.sip(SipInput::Response { key, response: challenge });
    let (key, again) = sim.take_request(Method::Invite);
    assert_eq!(again.cseq().map(|(s, _)| s), Some(2));
    assert!(again.header(HeaderName::ProxyAuthorization).is_some_and(|a| a.contains("username=\"alice\"")));
    assert_eq!(again.from_tag(), Some("p1-0"), "the same call");

    sim.respond(key, &again, 180, "bob", None);
    assert_eq!(sim.caller(), LegState::Alerting);
    sim.advance(Duration::from_secs(29));
    assert!(!sim.cancelled(key));
    sim.advance(Duration::from_secs(2));
    assert!(sim.cancelled(key), "nobody answered in 30 s");
    sim.respond(key, &again, 487, "bob", None);
    assert!(sim.engine.is_over());
    assert_eq!(sim.engine.failure(CALLER).map(|(s, _)| s), Some(408), "the caller hears why: no answer");
}

#[test]
fn holds_both_ways_and_glare() {
    let (mut sim, mut bob) = talking_to_bob();
    // Bob holds us: asked, accepted, answered with our own description.
    let (tx, _) = sim.request_in(&mut bob, Method::Invite, Some(("application/sdp", phone_sdp("203.0.113.5:5000", "sendonly"))));
    assert_eq!(sim.events.last(), Some(&CallEvent::Reoffered { leg: CALLER, hold: true }));
    sim.command(Command::AcceptReoffer);
    let ok = sim.take_response(tx);
    assert_eq!(ok.status(), Some(200));
    assert!(body(&ok).contains("a=recvonly") && body(&ok).contains("o=alice "), "{}", body(&ok));
    assert_eq!(local_media(&sim)[0].direction, Direction::RecvOnly);
    sim.sip(SipInput::Ack { request: bob.ack(2, Some(&via("z9hG4bK-bob-ack"))).build().unwrap() });

    // We hold bob: our offer says sendonly, a newer version; his 491 is retried later.
    sim.command(Command::Reoffer { hold: true });
    let (key, reinvite) = sim.take_request(Method::Invite);
    let offer = body(&reinvite);
    assert!(offer.contains("a=sendonly") && offer.contains("o=alice 1 3 "), "{offer}");
    sim.respond(key, &reinvite, 491, "bob", None);
    assert!(!sim.events.iter().any(|e| matches!(e, CallEvent::Updated { .. })), "glare: not over yet");
    sim.advance(Duration::from_secs(5));
    let (key, retry) = sim.take_request(Method::Invite);
    assert!(retry.cseq().unwrap().0 > reinvite.cseq().unwrap().0);
    sim.respond(key, &retry, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "recvonly")));
    assert_eq!(sim.events.last(), Some(&CallEvent::Updated { leg: CALLER, status: 200 }));
    assert_eq!(local_media(&sim).last().unwrap().direction, Direction::SendOnly);
}

#[test]
fn media_that_moved_is_offered_to_the_far_end_in_a_re_invite() {
    let (mut sim, _bob) = talking_to_bob();
    sim.command(Command::MoveMedia { rtp: "192.0.2.9:7100".parse().unwrap() });
    let (key, reinvite) = sim.take_request(Method::Invite);
    let offer = body(&reinvite);
    assert!(offer.contains("c=IN IP4 192.0.2.9") && offer.contains("m=audio 7100 ") && offer.contains("a=sendrecv"), "{offer}");
    sim.respond(key, &reinvite, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "sendrecv")));
    assert_eq!(sim.events.last(), Some(&CallEvent::Updated { leg: CALLER, status: 200 }));
    let media = local_media(&sim);
    assert_eq!(media.last().unwrap().remote_rtp, Some("203.0.113.5:5000".parse().unwrap()), "the stream for the new seat");
}

#[test]
fn a_transfer_asked_of_us_is_carried_out_with_notifies() {
    let (mut sim, mut bob) = talking_to_bob();
    let (tx, _) = sim.request_with(&mut bob, Method::Refer, &[(HeaderName::ReferTo, "<sip:carol@192.0.2.5>")]);
    let asked = sim.events.last().cloned();
    assert!(
        matches!(&asked, Some(CallEvent::TransferRequested { target, referrer_domain, .. }) if target == "sip:carol@192.0.2.5" && referrer_domain == "203.0.113.5"),
        "{asked:?}"
    );
    sim.command(Command::AcceptTransfer);
    assert_eq!(sim.statuses(tx), [202]);
    let (key, trying) = sim.take_request(Method::Notify);
    assert!(
        body(&trying).starts_with("SIP/2.0 100") && trying.header(HeaderName::SubscriptionState) == Some("active;expires=60")
    );
    sim.respond(key, &trying, 200, "bob", None);

    sim.command(Command::TransferProgress { status: 200, reason: "OK".into() });
    let (_, done) = sim.take_request(Method::Notify);
    assert!(
        body(&done).starts_with("SIP/2.0 200") && done.header(HeaderName::SubscriptionState).unwrap().starts_with("terminated")
    );
    sim.take_request(Method::Bye);
    assert_eq!(sim.caller(), LegState::Terminating, "transferred: our part is over");
}

#[test]
fn a_transfer_we_ask_for_follows_the_notifies_and_a_refusal_leaves_the_call() {
    let (mut sim, mut bob) = talking_to_bob();
    sim.command(Command::Refer { refer_to: "<sip:carol@192.0.2.5>".into() });
    let (key, refer) = sim.take_request(Method::Refer);
    assert_eq!(refer.header(HeaderName::ReferredBy), Some("<sip:alice@192.0.2.7:5070>"));
    sim.respond(key, &refer, 603, "bob", None);
    assert_eq!(
        sim.events.last(),
        Some(&CallEvent::ReferProgress { leg: CALLER, status: 603, reason: "Decline".into(), last: true })
    );
    assert_eq!(sim.caller(), LegState::Confirmed);

    sim.command(Command::Refer { refer_to: "<sip:carol@192.0.2.5>".into() });
    let (key, refer) = sim.take_request(Method::Refer);
    sim.respond(key, &refer, 202, "bob", None);
    let notify = |sim: &mut Sim, bob: &mut Dialog, status: &str, state: &str| {
        let tx = sim.next_tx();
        let request = bob
            .request(Method::Notify, Some(&via(&format!("z9hG4bK-n{tx}"))))
            .header(HeaderName::Event, "refer")
            .header(HeaderName::SubscriptionState, state)
            .body("message/sipfrag;version=2.0", format!("SIP/2.0 {status}\r\n"))
            .build()
            .unwrap();
        let from = Peer::udp("203.0.113.5:5060".parse().unwrap());
        sim.sip(SipInput::Request { tx: ServerTx { edge: String::new(), id: tx }, request, from });
        assert_eq!(sim.statuses(tx), [200]);
    };
    notify(&mut sim, &mut bob, "180 Ringing", "active");
    assert_eq!(
        sim.events.last(),
        Some(&CallEvent::ReferProgress { leg: CALLER, status: 180, reason: "Ringing".into(), last: false })
    );
    notify(&mut sim, &mut bob, "200 OK", "terminated");
    assert_eq!(sim.events.last(), Some(&CallEvent::ReferProgress { leg: CALLER, status: 200, reason: "OK".into(), last: true }));
    sim.take_request(Method::Bye);
}

#[test]
fn a_hold_asked_before_the_ack_waits_for_it() {
    let mut sim = answering();
    sim.command(Command::Answer);
    let ok = sim.take_response(1);
    sim.statuses(1);
    sim.command(Command::Reoffer { hold: true });
    assert!(!sim.sent.iter().any(|s| matches!(s, super::harness::Sent::Request { .. })), "no re-INVITE before the ACK");
    sim.caller_acks(&sim.caller_dialog(&ok));
    let (_, reinvite) = sim.take_request(Method::Invite);
    assert!(body(&reinvite).contains("a=sendonly"), "{}", body(&reinvite));
}

#[test]
fn a_call_we_answered_refreshes_its_session_with_an_offer() {
    let mut sim = answering();
    assert_eq!(sim.statuses(1), [180]);
    sim.command(Command::Answer);
    let ok = sim.take_response(1);
    // The caller said nothing of timers: we refresh, at half of 1800 s.
    assert_eq!(ok.header(HeaderName::SessionExpires), Some("1800;refresher=uas"));
    sim.caller_acks(&sim.caller_dialog(&ok));
    sim.advance(Duration::from_secs(901));
    let (_, refresh) = sim.take_request(Method::Invite);
    let offer = body(&refresh);
    assert!(offer.contains("o=alice 1 2 ") && offer.contains("m=audio 7000 ") && offer.contains("a=sendrecv"), "{offer}");
}
