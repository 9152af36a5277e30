//! What an edge publishes again for a session's new owner (`EdgeCommand.replay`): an ACK it
//! forwarded just before the old owner died — which may have died before recording it —
//! comes again. An edge on a real nats-server, a phone's ACK sent to it over UDP, the test
//! reading the session's events.

use std::sync::Arc;
use std::time::Duration;

use cluster::bus::typed::{self, TypedSubscription};
use cluster::bus::{Bus, NatsBus};
use cluster::contracts::{EdgeCommand, EdgeEvent, Replay, edge_command, edge_event};
use cluster::registry::MemoryRegistry;
use cluster::subjects::{self, NodeId, SessionId};
use edge_proxy::{EdgeConfig, RegistrarConfig};
use sip::message::{Builder, HeaderName, Method};
use testkit::nats::NatsServer;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

/// A phone's ACK for the 2xx of session `session`'s caller leg.
fn ack(session: &SessionId, call: &str) -> Vec<u8> {
    let ack = Builder::request(&Method::Ack, "sip:bob@127.0.0.1")
        .header(HeaderName::Via, format!("SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-{call}"))
        .header(HeaderName::From, "<sip:alice@127.0.0.1>;tag=alice")
        .header(HeaderName::To, format!("<sip:bob@127.0.0.1>;tag={session}-0"))
        .header(HeaderName::CallId, call)
        .header(HeaderName::CSeq, "1 ACK")
        .build()
        .unwrap();
    ack.as_bytes().to_vec()
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

#[tokio::test]
async fn a_new_owner_gets_the_acks_the_edge_forwarded_lately() {
    let nats = tokio::task::spawn_blocking(NatsServer::start).await.unwrap().unwrap();
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
    let _edge = edge_proxy::start(config, bus.clone(), Arc::new(MemoryRegistry::default())).await.unwrap();
    let ours = SessionId::random();
    let mut events: TypedSubscription<EdgeEvent> =
        typed::subscribe(bus.as_ref(), &subjects::session_events(&ours)).await.unwrap();
    bus.flush().await.unwrap();

    let phone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    phone.send_to(&ack(&ours, "ours"), listen).await.unwrap();
    assert_eq!(next_ack(&mut events).await.as_deref(), Some("ours"), "the ACK forwarded to the session");

    // The session's new owner asks every edge for what it had.
    let replay = EdgeCommand {
        session_id: ours.to_string(),
        command: Some(edge_command::Command::Replay(Replay {})),
        ..Default::default()
    };
    typed::publish(bus.as_ref(), &subjects::all_edge_commands(), &replay).await.unwrap();
    assert_eq!(next_ack(&mut events).await.as_deref(), Some("ours"), "the ACK again, for the new owner");
}
