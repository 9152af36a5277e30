//! Transaction behaviour on a virtual clock: retransmission schedules, timeouts, absorption
//! of retransmissions, ACK and CANCEL handling, validation answers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip::message::{Builder, HeaderName, Message, Method};
use sip::transaction::{Config, Event, Peer, TransactionLayer, Transmit};

const UAC: &str = "127.0.0.1:5060";
const UAS: &str = "127.0.0.1:5070";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn request(method: Method, branch: &str, transport: &str) -> Message {
    Builder::request(&method, format!("sip:bob@{UAS}"))
        .header(HeaderName::Via, format!("SIP/2.0/{transport} {UAC};branch={branch}"))
        .header(HeaderName::MaxForwards, 70)
        .header(HeaderName::From, "<sip:alice@127.0.0.1>;tag=a1")
        .header(HeaderName::To, "<sip:bob@127.0.0.1>")
        .header(HeaderName::CallId, format!("call-{branch}"))
        .header(HeaderName::CSeq, format!("1 {method}"))
        .build()
        .unwrap()
}

fn response(req: &Message, code: u16, tag: &str) -> Message {
    Builder::response_to(req, code, "", Some(tag)).build().unwrap()
}

fn drain(layer: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| layer.poll_transmit()).collect()
}

fn events(layer: &mut TransactionLayer) -> Vec<Event> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

/// Advances the virtual clock through every timer up to `until`, recording the offset of
/// each transmit and the events.
fn run_until(layer: &mut TransactionLayer, t0: Instant, until: Duration) -> (Vec<f64>, Vec<(f64, Event)>) {
    let (mut sends, mut evs) = (vec![], vec![]);
    while let Some(at) = layer.poll_timeout() {
        if at > t0 + until {
            break;
        }
        layer.handle_timeout(at);
        let offset = (at - t0).as_secs_f64();
        sends.extend(drain(layer).iter().map(|_| offset));
        evs.extend(events(layer).into_iter().map(|e| (offset, e)));
    }
    (sends, evs)
}

fn intervals(times: &[f64]) -> Vec<f64> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn invite_client_over_udp_retransmits_with_doubling_and_times_out_at_32s() {
    let mut layer = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let tx = layer.send_request(request(Method::Invite, "z9hG4bK-a", "UDP"), Peer::udp(addr(UAS)), t0).unwrap();
    assert_eq!(drain(&mut layer).len(), 1);
    let (sends, evs) = run_until(&mut layer, t0, Duration::from_secs(64));
    let mut all = vec![0.0];
    all.extend(sends);
    assert_eq!(intervals(&all), [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]);
    assert_eq!(evs.len(), 1);
    assert!(matches!(evs[0], (t, Event::Timeout { tx: id }) if t == 32.0 && id == tx));
    assert_eq!(layer.stats().client_transactions, 0);
}

#[test]
fn non_invite_client_caps_retransmit_interval_at_t2() {
    let mut layer = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    layer.send_request(request(Method::Options, "z9hG4bK-o", "UDP"), Peer::udp(addr(UAS)), t0).unwrap();
    drain(&mut layer);
    let (sends, evs) = run_until(&mut layer, t0, Duration::from_secs(40));
    let mut all = vec![0.0];
    all.extend(sends);
    let iv = intervals(&all);
    assert_eq!(&iv[..5], [0.5, 1.0, 2.0, 4.0, 4.0]);
    assert!(iv.iter().all(|i| *i <= 4.0));
    assert!(matches!(evs.as_slice(), [(t, Event::Timeout { .. })] if *t == 32.0));
}

#[test]
fn non_invite_client_in_proceeding_retransmits_every_t2() {
    let mut layer = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let req = request(Method::Register, "z9hG4bK-r", "UDP");
    layer.send_request(req.clone(), Peer::udp(addr(UAS)), t0).unwrap();
    drain(&mut layer);
    layer.handle_message(response(&req, 100, "x"), Peer::udp(addr(UAS)), t0 + Duration::from_millis(100));
    let (sends, _) = run_until(&mut layer, t0, Duration::from_secs(12));
    // E set in Trying fires at 0.5; in Proceeding it is re-armed T2 apart.
    assert_eq!(sends, [0.5, 4.5, 8.5]);
}

#[test]
fn reliable_transport_has_no_retransmissions() {
    let mut layer = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let tx = layer.send_request(request(Method::Invite, "z9hG4bK-t", "TCP"), Peer::tcp(addr(UAS)), t0).unwrap();
    drain(&mut layer);
    let (sends, evs) = run_until(&mut layer, t0, Duration::from_secs(64));
    assert!(sends.is_empty());
    assert!(matches!(evs.as_slice(), [(t, Event::Timeout { tx: id })] if *t == 32.0 && *id == tx));
}

#[test]
fn server_invite_absorbs_retransmissions_by_resending_its_last_response() {
    let mut layer = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let invite = request(Method::Invite, "z9hG4bK-s", "UDP");
    layer.handle_message(invite.clone(), Peer::udp(addr(UAC)), t0);
    let sent = drain(&mut layer);
    assert_eq!(Message::parse_datagram(sent[0].payload.clone()).unwrap().status(), Some(100));
    let Event::Request { tx, .. } = events(&mut layer).remove(0) else { panic!("request event") };
    layer.respond(tx, response(&invite, 180, "b1"), t0).unwrap();
    drain(&mut layer);
    layer.handle_message(invite.clone(), Peer::udp(addr(UAC)), t0 + Duration::from_millis(500));
    let resent = drain(&mut layer);
    assert_eq!(resent.len(), 1);
    assert_eq!(Message::parse_datagram(resent[0].payload.clone()).unwrap().status(), Some(180));
    assert!(events(&mut layer).is_empty(), "a retransmission is not a new request");
    assert_eq!(layer.stats().retransmissions_absorbed, 1);
}

#[test]
fn server_invite_failure_retransmits_until_ack_then_waits_t4() {
    let mut layer = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let invite = request(Method::Invite, "z9hG4bK-f", "UDP");
    layer.handle_message(invite.clone(), Peer::udp(addr(UAC)), t0);
    let Event::Request { tx, .. } = events(&mut layer).remove(0) else { panic!() };
    let busy = response(&invite, 486, "b2");
    layer.respond(tx, busy.clone(), t0).unwrap();
    drain(&mut layer);
    let (sends, _) = run_until(&mut layer, t0, Duration::from_millis(7600));
    assert_eq!(sends, [0.5, 1.5, 3.5, 7.5], "Timer G doubles up to T2");
    let ack = sip::transaction::ack_for_failure(&invite, &busy).unwrap();
    layer.handle_message(ack.clone(), Peer::udp(addr(UAC)), t0 + Duration::from_secs(8));
    layer.handle_message(ack, Peer::udp(addr(UAC)), t0 + Duration::from_secs(9));
    assert!(events(&mut layer).is_empty(), "the ACK of a failure stays in the transaction");
    let (sends, _) = run_until(&mut layer, t0, Duration::from_secs(60));
    assert!(sends.is_empty());
    assert_eq!(layer.stats().server_transactions, 0, "Timer I ended it");
}

#[test]
fn server_invite_failure_without_ack_times_out_with_timer_h() {
    let mut layer = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let invite = request(Method::Invite, "z9hG4bK-h", "UDP");
    layer.handle_message(invite.clone(), Peer::udp(addr(UAC)), t0);
    let Event::Request { tx, .. } = events(&mut layer).remove(0) else { panic!() };
    layer.respond(tx, response(&invite, 603, "b3"), t0).unwrap();
    let (_, evs) = run_until(&mut layer, t0, Duration::from_secs(64));
    assert!(matches!(evs.as_slice(), [(t, Event::Timeout { tx: id })] if *t == 32.0 && *id == tx));
}

#[test]
fn uas_retransmits_2xx_until_the_ack_arrives() {
    let mut layer = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let invite = request(Method::Invite, "z9hG4bK-2", "UDP");
    layer.handle_message(invite.clone(), Peer::udp(addr(UAC)), t0);
    let Event::Request { tx, .. } = events(&mut layer).remove(0) else { panic!() };
    layer.respond(tx, response(&invite, 200, "b4"), t0).unwrap();
    drain(&mut layer);
    let (sends, _) = run_until(&mut layer, t0, Duration::from_millis(3600));
    assert_eq!(sends, [0.5, 1.5, 3.5]);
    let ack = Builder::request(&Method::Ack, format!("sip:bob@{UAS}"))
        .header(HeaderName::Via, format!("SIP/2.0/UDP {UAC};branch=z9hG4bK-ack"))
        .header(HeaderName::From, "<sip:alice@127.0.0.1>;tag=a1")
        .header(HeaderName::To, "<sip:bob@127.0.0.1>;tag=b4")
        .header(HeaderName::CallId, "call-z9hG4bK-2")
        .header(HeaderName::CSeq, "1 ACK")
        .build()
        .unwrap();
    layer.handle_message(ack.clone(), Peer::udp(addr(UAC)), t0 + Duration::from_secs(4));
    assert!(matches!(events(&mut layer).as_slice(), [Event::Ack { tx: Some(id), .. }] if *id == tx));
    layer.handle_message(ack, Peer::udp(addr(UAC)), t0 + Duration::from_secs(5));
    assert!(events(&mut layer).is_empty(), "a repeated ACK is absorbed");
    let (sends, evs) = run_until(&mut layer, t0, Duration::from_secs(64));
    assert!(sends.is_empty() && evs.is_empty());
    assert_eq!(layer.stats().server_transactions, 0, "Timer L ended it");
}

#[test]
fn unacknowledged_2xx_reports_ack_timeout() {
    let mut layer = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let invite = request(Method::Invite, "z9hG4bK-n", "UDP");
    layer.handle_message(invite.clone(), Peer::udp(addr(UAC)), t0);
    let Event::Request { tx, .. } = events(&mut layer).remove(0) else { panic!() };
    layer.respond(tx, response(&invite, 200, "b5"), t0).unwrap();
    drain(&mut layer);
    let (sends, evs) = run_until(&mut layer, t0, Duration::from_secs(64));
    assert!(intervals(&sends).iter().all(|i| *i <= 4.0));
    assert!(matches!(evs.as_slice(), [(t, Event::AckTimeout { tx: id })] if *t == 32.0 && *id == tx));
}

#[test]
fn uac_acks_failures_itself_and_absorbs_their_retransmissions() {
    let mut layer = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let invite = request(Method::Invite, "z9hG4bK-c", "UDP");
    let tx = layer.send_request(invite.clone(), Peer::udp(addr(UAS)), t0).unwrap();
    drain(&mut layer);
    let busy = response(&invite, 486, "b6");
    layer.handle_message(busy.clone(), Peer::udp(addr(UAS)), t0 + Duration::from_millis(10));
    let sent = drain(&mut layer);
    let ack = Message::parse_datagram(sent[0].payload.clone()).unwrap();
    assert_eq!((ack.method(), ack.to_tag(), ack.branch()), (Some(&Method::Ack), Some("b6"), invite.branch()));
    assert!(
        matches!(events(&mut layer).as_slice(), [Event::Response { tx: id, response }] if *id == tx && response.status() == Some(486))
    );
    layer.handle_message(busy, Peer::udp(addr(UAS)), t0 + Duration::from_millis(600));
    assert_eq!(drain(&mut layer).len(), 1, "the ACK is resent");
    assert!(events(&mut layer).is_empty());
    run_until(&mut layer, t0, Duration::from_secs(40));
    assert_eq!(layer.stats().client_transactions, 0, "Timer D ended it");
}

#[test]
fn uac_2xx_retransmissions_are_answered_with_the_remembered_ack_and_forks_reported() {
    let mut layer = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let invite = request(Method::Invite, "z9hG4bK-k", "UDP");
    let tx = layer.send_request(invite.clone(), Peer::udp(addr(UAS)), t0).unwrap();
    drain(&mut layer);
    let ok = response(&invite, 200, "fork1");
    layer.handle_message(ok.clone(), Peer::udp(addr(UAS)), t0);
    assert_eq!(events(&mut layer).len(), 1);
    let ack = Builder::request(&Method::Ack, format!("sip:bob@{UAS}"))
        .header(HeaderName::Via, format!("SIP/2.0/UDP {UAC};branch=z9hG4bK-ack2"))
        .header(HeaderName::To, "<sip:bob@127.0.0.1>;tag=fork1")
        .header(HeaderName::CSeq, "1 ACK")
        .build()
        .unwrap();
    layer.send_ack(Some(tx), &ack, Peer::udp(addr(UAS)));
    assert_eq!(drain(&mut layer).len(), 1);
    layer.handle_message(ok, Peer::udp(addr(UAS)), t0 + Duration::from_millis(500));
    assert_eq!(drain(&mut layer)[0].payload, ack.as_bytes().clone());
    assert!(events(&mut layer).is_empty());
    layer.handle_message(response(&invite, 200, "fork2"), Peer::udp(addr(UAS)), t0 + Duration::from_millis(600));
    assert!(matches!(events(&mut layer).as_slice(), [Event::Response { response, .. }] if response.to_tag() == Some("fork2")));
}

#[test]
fn cancel_waits_for_a_provisional_response_and_is_answered_by_the_server() {
    let t0 = Instant::now();
    let (mut uac, mut uas) = (TransactionLayer::new(Config::default()), TransactionLayer::new(Config::default()));
    let invite = request(Method::Invite, "z9hG4bK-x", "UDP");
    let tx = uac.send_request(invite.clone(), Peer::udp(addr(UAS)), t0).unwrap();
    drain(&mut uac);
    assert_eq!(uac.cancel(tx, t0).unwrap(), None, "deferred until a 1xx arrives");
    assert!(drain(&mut uac).is_empty());
    uas.handle_message(invite.clone(), Peer::udp(addr(UAC)), t0);
    let Event::Request { tx: stx, .. } = events(&mut uas).remove(0) else { panic!() };
    drain(&mut uas);
    uas.respond(stx, response(&invite, 180, "b7"), t0).unwrap();
    let ringing = drain(&mut uas).remove(0).payload;
    uac.handle_datagram(ringing, Peer::udp(addr(UAS)), t0);
    let cancel = drain(&mut uac).remove(0).payload;
    let cancel_msg = Message::parse_datagram(cancel.clone()).unwrap();
    assert_eq!(cancel_msg.method(), Some(&Method::Cancel));
    uas.handle_datagram(cancel, Peer::udp(addr(UAC)), t0);
    let answers: Vec<_> = drain(&mut uas).into_iter().map(|t| Message::parse_datagram(t.payload).unwrap()).collect();
    assert_eq!(answers[0].status(), Some(200));
    assert_eq!(answers[0].method(), Some(&Method::Cancel));
    assert_eq!(answers[0].to_tag(), Some("b7"), "same To tag as the INVITE's responses");
    assert!(matches!(events(&mut uas).as_slice(), [Event::Cancelled { tx: id }] if *id == stx));
    uas.respond(stx, response(&invite, 487, "b7"), t0).unwrap();
    let terminated = drain(&mut uas).remove(0).payload;
    uac.handle_datagram(answers[0].as_bytes().clone(), Peer::udp(addr(UAS)), t0);
    uac.handle_datagram(terminated, Peer::udp(addr(UAS)), t0);
    let codes: Vec<_> = events(&mut uac)
        .into_iter()
        .filter_map(|e| match e {
            Event::Response { response, .. } => response.status(),
            _ => None,
        })
        .collect();
    assert_eq!(codes, [180, 200, 487]);
}

#[test]
fn cancel_for_an_unknown_invite_gets_481() {
    let mut uas = TransactionLayer::new(Config::default());
    uas.handle_message(request(Method::Cancel, "z9hG4bK-none", "UDP"), Peer::udp(addr(UAC)), Instant::now());
    let answer = Message::parse_datagram(drain(&mut uas).remove(0).payload).unwrap();
    assert_eq!(answer.status(), Some(481));
    assert!(events(&mut uas).is_empty());
}

#[test]
fn invalid_requests_are_answered_by_the_layer_and_their_retransmissions_absorbed() {
    let mut uas = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let bad = Builder::request(&Method::Invite, "sip:bob@h")
        .header(HeaderName::Via, format!("SIP/2.0/UDP {UAC};branch=z9hG4bK-bad"))
        .header(HeaderName::From, "<sip:a@h>;tag=1")
        .header(HeaderName::To, "<sip:b@h>")
        .header(HeaderName::CallId, "c")
        .header(HeaderName::CSeq, "1 INVITE")
        .header(HeaderName::Require, "100rel-unknown")
        .build()
        .unwrap();
    uas.handle_message(bad.clone(), Peer::udp(addr(UAC)), t0);
    let answer = Message::parse_datagram(drain(&mut uas).remove(0).payload).unwrap();
    assert_eq!(answer.status(), Some(420));
    assert_eq!(answer.header(HeaderName::Unsupported), Some("100rel-unknown"));
    assert!(events(&mut uas).is_empty());
    uas.handle_message(bad, Peer::udp(addr(UAC)), t0 + Duration::from_millis(500));
    assert_eq!(Message::parse_datagram(drain(&mut uas).remove(0).payload).unwrap().status(), Some(420));
    assert_eq!(uas.stats().requests_rejected, 1);
}

#[test]
fn truncated_datagrams_get_a_stateless_400_and_garbage_is_dropped() {
    let mut uas = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let text = format!(
        "OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP {UAC};branch=z9hG4bK-tr\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 50\r\n\r\nshort"
    );
    uas.handle_datagram(Bytes::from(text), Peer::udp(addr(UAC)), t0);
    let answer = Message::parse_datagram(drain(&mut uas).remove(0).payload).unwrap();
    assert_eq!(answer.status(), Some(400));
    assert!(answer.reason().starts_with("Truncated"), "{}", answer.reason());
    uas.handle_datagram(Bytes::from_static(b"\x00\x01garbage"), Peer::udp(addr(UAC)), t0);
    assert!(drain(&mut uas).is_empty());
    assert_eq!(uas.stats().messages_dropped, 1);
}

#[test]
fn a_request_with_a_malformed_header_line_gets_a_400_naming_it() {
    let mut uas = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let text = format!(
        "REGISTER sip:h SIP/2.0\r\nVia: SIP/2.0/UDP {UAC};branch=z9hG4bK-bad\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 2 REGISTER\r\nno colon on this line\r\nContent-Length: 0\r\n\r\n"
    );
    uas.handle_datagram(Bytes::from(text), Peer::udp(addr(UAC)), t0);
    let answer = Message::parse_datagram(drain(&mut uas).remove(0).payload).unwrap();
    assert_eq!((answer.status(), answer.reason()), (Some(400), "Bad header line: no colon"));
    assert_eq!(answer.branch(), Some("z9hG4bK-bad"));
    assert!(events(&mut uas).is_empty(), "the request reaches no transaction user");
}

#[test]
fn responses_go_to_the_source_port_only_with_rport() {
    let mut uas = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let nat = addr("127.0.0.1:40000");
    uas.handle_message(request(Method::Options, "z9hG4bK-p1", "UDP"), Peer::udp(nat), t0);
    assert_eq!(drain(&mut uas).len(), 0);
    let Event::Request { tx, request: req, .. } = events(&mut uas).remove(0) else { panic!() };
    uas.respond(tx, response(&req, 200, "x"), t0).unwrap();
    assert_eq!(drain(&mut uas)[0].peer.addr, addr(UAC), "sent-by port without rport");
    let with_rport = Message::parse_datagram(Bytes::from(
        request(Method::Options, "z9hG4bK-p2", "UDP").to_string().replace("branch=z9hG4bK-p2", "branch=z9hG4bK-p2;rport"),
    ))
    .unwrap();
    uas.handle_message(with_rport, Peer::udp(nat), t0);
    let Event::Request { tx, request: req, .. } = events(&mut uas).remove(0) else { panic!() };
    uas.respond(tx, response(&req, 200, "x"), t0).unwrap();
    assert_eq!(drain(&mut uas)[0].peer.addr, nat);
}

#[test]
fn stray_responses_are_reported_and_rfc2543_retransmissions_absorbed() {
    let mut layer = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let invite = request(Method::Invite, "z9hG4bK-gone", "UDP");
    layer.handle_message(response(&invite, 200, "z"), Peer::udp(addr(UAS)), t0);
    assert!(
        matches!(events(&mut layer).as_slice(), [Event::StrayResponse { response, .. }] if sip::transaction::is_invite_2xx(response))
    );
    // Any other stray response is reported too: its request may be another endpoint's on
    // the same address (SO_REUSEPORT), which its user relays there.
    let bye = request(Method::Bye, "z9hG4bK-other-edge", "UDP");
    layer.handle_message(response(&bye, 200, "z"), Peer::udp(addr(UAS)), t0);
    assert!(
        matches!(events(&mut layer).as_slice(), [Event::StrayResponse { response, .. }] if !sip::transaction::is_invite_2xx(response))
    );
    let old = Message::parse_datagram(Bytes::from(request(Method::Options, "old", "UDP").to_string().replace(";branch=old", "")))
        .unwrap();
    layer.handle_message(old.clone(), Peer::udp(addr(UAC)), t0);
    layer.handle_message(old, Peer::udp(addr(UAC)), t0);
    assert_eq!(events(&mut layer).len(), 1);
}
