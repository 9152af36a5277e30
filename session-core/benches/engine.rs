//! The call engine's cost per call: one whole call (INVITE, media, dial, 180, 200, ACK, BYE
//! both ways) through the engine, with the two snapshots a session node writes, encoded.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use prost::Message as _;
use session_core::engine::{Command, Engine, EngineConfig, MediaInput, Output, RingPolicy, Route, ServerTx, SipInput, Target};
use sip::dialog::Dialog;
use sip::message::{Builder, HeaderName, HostPort, Message, Method, Transport, Via};
use sip::transaction::Peer;

fn sdp(port: u16) -> String {
    format!(
        "v=0\r\no=phone 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

fn via(b: &str) -> Via {
    Via::new(Transport::Udp, HostPort::parse("198.51.100.1:5060").unwrap(), b)
}

fn one_call(invite: &Message) -> usize {
    let now = Instant::now();
    let config = EngineConfig { session: "s1".into(), contact: "sip:s1@192.0.2.1:5060".into(), sdp_user: "callmesh".into() };
    let route = Route { edge: "edge-1".into(), peer: Peer::udp("198.51.100.1:5060".parse().unwrap()) };
    let mut e = Engine::incoming(config, invite.clone(), ServerTx { edge: "edge-1".into(), id: 1 }, route, now);
    let mut written = 0;
    let mut drain = |e: &mut Engine| {
        let mut sent = None;
        let mut ok = None;
        while let Some(o) = e.poll_output() {
            match o {
                Output::Persist => written += e.snapshot(now, 1).encode_to_vec().len(),
                Output::Send { key, request, .. } => sent = Some((key, request)),
                Output::Respond { response, .. } if response.status() == Some(200) => ok = Some(response),
                _ => {}
            }
        }
        (sent, ok)
    };
    drain(&mut e);
    e.handle_command(
        Command::Dial {
            targets: vec![Target { uri: "sip:bob@203.0.113.5".into(), route: None }],
            parallel: true,
            ring: RingPolicy::default(),
        },
        now,
    );
    e.handle_media(
        MediaInput::Allocated {
            node: "m".into(),
            slots: vec!["192.0.2.100:30000".parse().unwrap(), "192.0.2.100:30002".parse().unwrap()],
        },
        now,
    );
    let (Some((key, out)), _) = drain(&mut e) else { panic!("no INVITE") };
    let out = out.with_top_via(&via("z9hG4bK-e1")).unwrap();
    let ringing =
        Builder::response_to(&out, 180, "", Some("bob")).header(HeaderName::Contact, "<sip:bob@203.0.113.5>").build().unwrap();
    e.handle_sip(SipInput::Response { key, response: ringing }, now);
    drain(&mut e);
    let answer = Builder::response_to(&out, 200, "", Some("bob"))
        .header(HeaderName::Contact, "<sip:bob@203.0.113.5>")
        .body("application/sdp", sdp(5000))
        .build()
        .unwrap();
    e.handle_sip(SipInput::Response { key, response: answer }, now);
    let (_, ok) = drain(&mut e);
    let mut alice = Dialog::uac(invite, &ok.unwrap()).unwrap();
    e.handle_sip(SipInput::Ack { request: alice.ack(1, Some(&via("z9hG4bK-a"))).build().unwrap() }, now);
    let bye = alice.request(Method::Bye, Some(&via("z9hG4bK-b"))).build().unwrap();
    e.handle_sip(
        SipInput::Request {
            tx: ServerTx { edge: "edge-1".into(), id: 2 },
            request: bye,
            from: Peer::udp("198.51.100.1:5060".parse().unwrap()),
        },
        now,
    );
    let (Some((key, bye)), _) = drain(&mut e) else { panic!("no BYE") };
    let bye = bye.with_top_via(&via("z9hG4bK-e2")).unwrap();
    e.handle_sip(SipInput::Response { key, response: Builder::response_to(&bye, 200, "", None).build().unwrap() }, now);
    drain(&mut e);
    assert!(e.is_over());
    written
}

fn engine(c: &mut Criterion) {
    let invite = Builder::request(&Method::Invite, "sip:1000@192.0.2.1")
        .header(HeaderName::Via, via("z9hG4bK-c1"))
        .header(HeaderName::MaxForwards, 70)
        .header(HeaderName::From, "<sip:alice@198.51.100.1>;tag=a1")
        .header(HeaderName::To, "<sip:1000@192.0.2.1>")
        .header(HeaderName::CallId, "c1@198.51.100.1")
        .header(HeaderName::CSeq, "1 INVITE")
        .header(HeaderName::Contact, "<sip:alice@198.51.100.1:5060>")
        .body("application/sdp", sdp(4000))
        .build()
        .unwrap();
    c.bench_function("engine: one call, two snapshots", |b| b.iter(|| one_call(black_box(&invite))));
}

criterion_group!(benches, engine);
criterion_main!(benches);
