//! What an edge publishes again: for a session's new owner (`EdgeCommand.replay`), an ACK it
//! forwarded just before the old owner died — which may have died before recording it; and
//! of itself, every second, a request its session has not answered yet (the session's node
//! may have missed it while a NATS server died). And what it does not do twice: a request
//! a session sends again (nothing heard of it, or a new owner that cannot know it left) is
//! carried by the transaction under way. An edge on a real nats-server, a phone's requests
//! sent to it over UDP, the test reading the session's events.

use std::sync::Arc;
use std::time::Duration;

use cluster::bus::typed::{self, TypedSubscription};
use cluster::bus::{Bus, NatsBus};
use cluster::contracts::{EdgeCommand, EdgeEvent, Peer, Replay, SendRequest, Transport, edge_command, edge_event};
use cluster::registry::MemoryRegistry;
use cluster::subjects::{self, NodeId, SessionId};
use edge_proxy::{EdgeConfig, RegistrarConfig};
use sip::message::{Builder, HeaderName, Method};
use testkit::nats::NatsServer;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

/// A phone's in-dialog `method` (CSeq `seq`) in session `session`'s caller leg.
fn in_dialog(method: Method, seq: u32, session: &SessionId, call: &str) -> Vec<u8> {
    let request = Builder::request(&method, "sip:bob@127.0.0.1")
        .header(HeaderName::Via, format!("SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-{call}-{seq}"))
        .header(HeaderName::From, "<sip:alice@127.0.0.1>;tag=alice")
        .header(HeaderName::To, format!("<sip:bob@127.0.0.1>;tag={session}-0"))
        .header(HeaderName::CallId, call)
        .header(HeaderName::CSeq, format!("{seq} {method}"))
        .build()
        .unwrap();
    request.as_bytes().to_vec()
}

fn ack(session: &SessionId, call: &str) -> Vec<u8> {
    in_dialog(Method::Ack, 1, session, call)
}

/// The next ACK among `events`' events (the Call-ID it carries).
async fn next_ack(events: &mut TypedSubscription<EdgeEvent>) -> Option<String> {
    loop {
        let event = timeout(WAIT, events.next()).await.ok()??;
        if let Some(edge_event::Event::Ack(a)) = event.message.event {
            return Some(sip::message::Message::parse_datagram(a.ack).ok()?.call_id()?.to_owned());
        }
    }
}

/// An edge on `nats`, where it takes SIP, a session and its events as the edge publishes
/// them, and a phone's socket.
struct Setup {
    listen: std::net::SocketAddr,
    session: SessionId,
    events: TypedSubscription<EdgeEvent>,
    phone: tokio::net::UdpSocket,
    bus: Arc<dyn Bus>,
    _edge: edge_proxy::EdgeHandle,
}

async fn setup(nats: &NatsServer) -> Setup {
    let (bus, listen, edge) = edge(nats).await;
    let session = SessionId::random();
    let events = typed::subscribe(bus.as_ref(), &subjects::session_events(&session)).await.unwrap();
    bus.flush().await.unwrap();
    let phone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    Setup { listen, session, events, phone, bus, _edge: edge }
}

/// An edge on `nats`, and where it takes SIP.
async fn edge(nats: &NatsServer) -> (Arc<dyn Bus>, std::net::SocketAddr, edge_proxy::EdgeHandle) {
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&nats.url, "edge-test").await.unwrap());
    let listen = testkit::ports::free_local_addr();
    let config = EdgeConfig {
        node_id: NodeId::new("edge-1").unwrap(),
        listen,
        advertise: None,
        registrar: RegistrarConfig::default(),
        orphan_timeout: Duration::from_secs(5),
        drain: Default::default(),
        reuse_port: false,
    };
    let edge = edge_proxy::start(config, bus.clone(), Arc::new(MemoryRegistry::default())).await.unwrap();
    (bus, listen, edge)
}

#[tokio::test]
async fn a_request_not_answered_is_published_again() {
    let nats = tokio::task::spawn_blocking(NatsServer::start).await.unwrap().unwrap();
    let mut s = setup(&nats).await;
    s.phone.send_to(&in_dialog(Method::Bye, 2, &s.session, "bye"), s.listen).await.unwrap();
    let mut heard = Vec::new();
    while heard.len() < 2 {
        let event = timeout(WAIT, s.events.next()).await.expect("the BYE, then the BYE again").unwrap();
        if let Some(edge_event::Event::Request(r)) = event.message.event {
            heard.push((r.tx, tokio::time::Instant::now()));
        }
    }
    assert_eq!(heard[0].0, heard[1].0, "the same transaction");
    assert!(heard[1].1 - heard[0].1 >= Duration::from_millis(500), "again after a while: {heard:?}");
}

#[tokio::test]
async fn a_new_owner_gets_the_acks_the_edge_forwarded_lately() {
    let nats = tokio::task::spawn_blocking(NatsServer::start).await.unwrap().unwrap();
    let mut s = setup(&nats).await;
    s.phone.send_to(&ack(&s.session, "ours"), s.listen).await.unwrap();
    assert_eq!(next_ack(&mut s.events).await.as_deref(), Some("ours"), "the ACK forwarded to the session");

    // The session's new owner asks every edge for what it had.
    let replay = EdgeCommand {
        session_id: s.session.to_string(),
        command: Some(edge_command::Command::Replay(Replay {})),
        ..Default::default()
    };
    typed::publish(s.bus.as_ref(), &subjects::all_edge_commands(), &replay).await.unwrap();
    assert_eq!(next_ack(&mut s.events).await.as_deref(), Some("ours"), "the ACK again, for the new owner");
}

/// A session's request to `to`: `method` in call `call`.
fn request(session: &SessionId, correlation: u64, method: Method, call: &str, to: std::net::SocketAddr) -> EdgeCommand {
    let request = Builder::request(&method, format!("sip:bob@{to}"))
        .header(HeaderName::From, format!("<sip:alice@127.0.0.1>;tag={session}-0"))
        .header(HeaderName::To, "<sip:bob@127.0.0.1>")
        .header(HeaderName::CallId, call)
        .header(HeaderName::CSeq, format!("1 {method}"))
        .build()
        .unwrap();
    let destination = Some(Peer { transport: Transport::Udp as i32, addr: to.to_string() });
    let send = SendRequest { correlation, request: request.as_bytes().clone(), destination };
    EdgeCommand { session_id: session.to_string(), command: Some(edge_command::Command::SendRequest(send)), ..Default::default() }
}

#[tokio::test]
async fn a_request_its_session_sends_again_goes_out_once() {
    let nats = tokio::task::spawn_blocking(NatsServer::start).await.unwrap().unwrap();
    let s = setup(&nats).await;
    let (callee, to) = (&s.phone, s.phone.local_addr().unwrap());
    let edge_commands = subjects::edge_commands(&NodeId::new("edge-1").unwrap());
    let invite = request(&s.session, 7, Method::Invite, "twice", to);
    typed::publish(s.bus.as_ref(), &edge_commands, &invite).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, edge) = timeout(WAIT, callee.recv_from(&mut buf)).await.expect("the INVITE").unwrap();
    let first = sip::message::Message::parse_datagram(buf[..n].to_vec().into()).unwrap();
    let ringing = Builder::response_to(&first, 180, "Ringing", Some("bob")).build().unwrap();
    callee.send_to(ringing.as_bytes(), edge).await.unwrap();

    // The same request again, then another: the edge carries out its commands in order, so
    // the OPTIONS comes after anything the repeated INVITE would have sent.
    typed::publish(s.bus.as_ref(), &edge_commands, &invite).await.unwrap();
    typed::publish(s.bus.as_ref(), &edge_commands, &request(&s.session, 8, Method::Options, "marker", to)).await.unwrap();
    let mut invites = 0;
    loop {
        let (n, _) = timeout(WAIT, callee.recv_from(&mut buf)).await.expect("the OPTIONS").unwrap();
        let message = sip::message::Message::parse_datagram(buf[..n].to_vec().into()).unwrap();
        match message.method() {
            Some(Method::Options) => break,
            Some(Method::Invite) => invites += 1,
            _ => {}
        }
    }
    assert_eq!(invites, 0, "the INVITE went out once");
}
