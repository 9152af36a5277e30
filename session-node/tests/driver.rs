//! The session node on the in-process bus with a real media node, the test playing the edge
//! (it reads the commands sent to edge-1 and answers as phones would): a call's record is the
//! engine's state while it runs (one a node can resume from) and is gone after; another
//! node taking the call over makes this one leave it; no media node means 503 to the caller;
//! every call, answered or not, leaves one detail record.

use std::sync::Arc;
use std::time::Duration;

use cluster::bus::typed::{self, TypedSubscription};
use cluster::bus::{Bus, LocalBus};
use cluster::contracts::call_notice;
use cluster::contracts::{
    self, EdgeCommand, EdgeEvent, IncomingCall, Peer, ResponseReceived, RoutedCall, Transport, edge_command, edge_event,
};
use cluster::contracts::{NodeHeartbeat, Role};
use cluster::journal::{Journal, Log, MemoryJournal, Start};
use cluster::membership::Heartbeat;
use cluster::ownership::SessionStore;
use cluster::registry::MemoryRegistry;
use cluster::subjects::{self, NodeId, SessionId};
use futures::StreamExt;
use media_node::{MediaConfig, MediaNode};
use prost::Message as _;
use session_core::engine::Engine;
use session_node::SessionConfig;
use sip::dialog::Dialog;
use sip::message::{Builder, HeaderName, Message, Method};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

struct Harness {
    bus: LocalBus,
    registry: Arc<MemoryRegistry>,
    journal: MemoryJournal,
    stats: Arc<session_node::SessionStats>,
    edge: TypedSubscription<EdgeCommand>,
    session: SessionId,
    invite: Message,
}

fn caller_invite() -> Message {
    let sdp = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    Builder::request(&Method::Invite, "sip:1000@127.0.0.1:5060")
        .header(HeaderName::Via, "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-1")
        .header(HeaderName::From, "<sip:alice@127.0.0.1>;tag=alice")
        .header(HeaderName::To, "<sip:1000@127.0.0.1>")
        .header(HeaderName::CallId, "call-1")
        .header(HeaderName::CSeq, "1 INVITE")
        .header(HeaderName::Contact, "<sip:alice@127.0.0.1:5080>")
        .body("application/sdp", sdp)
        .build()
        .unwrap()
}

/// A session node (and, with `media`, a media node) on one in-process bus, and a routed call.
async fn harness(media: bool) -> Harness {
    let bus = LocalBus::default();
    let registry = Arc::new(MemoryRegistry::default());
    let shared: Arc<dyn Bus> = Arc::new(bus.clone());
    if media {
        let port = 30_000 + (std::process::id() % 1000) as u16 * 20;
        let config = MediaConfig::new(NodeId::new("media-1").unwrap(), "127.0.0.1".parse().unwrap(), (port, port + 19));
        MediaNode::start(config, shared.clone()).await.unwrap();
    }
    let config = SessionConfig {
        node_id: NodeId::new("session-1").unwrap(),
        lease: Duration::from_secs(30),
        media_timeout: Duration::from_millis(300),
        drain: Default::default(),
    };
    let journal = MemoryJournal::default();
    journal.capture(&bus).await.unwrap();
    let stats = session_node::start(config, shared.clone(), registry.clone(), Arc::new(journal.clone())).await.unwrap();
    let edge = typed::subscribe(&bus as &dyn Bus, &subjects::edge_commands(&NodeId::new("edge-1").unwrap())).await.unwrap();
    let session = SessionId::random();
    let invite = caller_invite();
    let call = IncomingCall {
        edge_id: "edge-1".into(),
        edge_tx: 7,
        source: Some(Peer { transport: Transport::Udp as i32, addr: "127.0.0.1:5080".into() }),
        call_id: "call-1".into(),
        request_uri: "sip:1000@127.0.0.1:5060".into(),
        edge_uri: "sip:127.0.0.1:5060;transport=udp".into(),
        session_id: session.to_string(),
        invite: invite.as_bytes().clone(),
        ..Default::default()
    };
    let routed = RoutedCall { call: Some(call), targets: vec!["sip:bob@127.0.0.1:5090".into()], ..Default::default() };
    typed::publish(&bus as &dyn Bus, &subjects::routed_calls(), &routed).await.unwrap();
    Harness { bus, registry, journal, stats, edge, session, invite }
}

impl Harness {
    async fn command(&mut self) -> edge_command::Command {
        timeout(WAIT, self.edge.next()).await.expect("waiting for an edge command").unwrap().message.command.unwrap()
    }

    /// The next request the session asks the edge to send, with its correlation.
    async fn request(&mut self) -> (u64, Message) {
        loop {
            if let edge_command::Command::SendRequest(s) = self.command().await {
                return (s.correlation, Message::parse_stream_message(s.request).unwrap());
            }
        }
    }

    /// The next response on the caller's server transaction.
    async fn response(&mut self) -> Message {
        loop {
            if let edge_command::Command::Respond(r) = self.command().await {
                return Message::parse_stream_message(r.response).unwrap();
            }
        }
    }

    async fn event(&self, event: edge_event::Event) {
        let message = EdgeEvent {
            session_id: self.session.to_string(),
            edge_id: "edge-1".into(),
            event: Some(event),
            ..Default::default()
        };
        typed::publish(&self.bus as &dyn Bus, &subjects::session_events(&self.session), &message).await.unwrap();
    }

    /// Bob answers the INVITE sent with `key`.
    async fn answer(&self, key: u64, invite: &Message) {
        let sdp = "v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 41000 RTP/AVP 0\r\n";
        let ok = Builder::response_to(invite, 200, "", Some("bob"))
            .header(HeaderName::Via, "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-e")
            .header(HeaderName::Contact, "<sip:bob@127.0.0.1:5090>")
            .body("application/sdp", sdp)
            .build()
            .unwrap();
        self.event(edge_event::Event::Response(ResponseReceived { correlation: key, response: ok.as_bytes().clone() })).await;
    }

    /// Every call record written so far.
    async fn cdrs(&self) -> Vec<contracts::Cdr> {
        let entries = self.journal.read(Log::Cdrs, Start::Sequence(1), false).await.unwrap();
        entries.map(|e| contracts::Cdr::decode(e.unwrap().payload).unwrap()).collect().await
    }

    /// The call notices published so far.
    async fn notices(&self) -> Vec<call_notice::Notice> {
        let entries = self.journal.read(Log::Events, Start::Sequence(1), false).await.unwrap();
        let notices: Vec<_> = entries.map(|e| contracts::CallNotice::decode(e.unwrap().payload).unwrap()).collect().await;
        notices.into_iter().filter_map(|n| n.notice).collect()
    }

    async fn record(&self) -> Option<contracts::SessionRecord> {
        let store = SessionStore::new(self.registry.clone(), NodeId::new("probe").unwrap(), Duration::from_secs(30));
        store.load(&self.session).await.unwrap().map(|(r, _)| r)
    }
}

#[tokio::test]
async fn the_record_is_the_engines_state_while_the_call_runs_and_is_gone_after() {
    let mut h = harness(true).await;
    let (key, invite) = h.request().await;
    assert_eq!(invite.request_uri_str(), Some("sip:bob@127.0.0.1:5090"));
    let record = h.record().await.expect("recorded once media is allocated");
    assert_eq!(record.owner, "session-1");
    h.answer(key, &invite).await;
    let ok = h.response().await;
    assert_eq!(ok.status(), Some(200));
    // The record follows the answer, and a node could resume the call from it.
    testkit::wait::until_async("the answered call to be recorded", WAIT, || async {
        h.record().await.and_then(|r| r.engine).is_some_and(|e| e.partner.contains_key(&0))
    })
    .await;
    let state = h.record().await.unwrap().engine.unwrap();
    let resumed = Engine::restore(state, std::time::Instant::now(), contracts::unix_ms()).unwrap();
    assert_eq!(resumed.partner(session_core::engine::CALLER), Some(session_core::engine::LegId(1)));

    // Alice hangs up: the BYE crosses, the record goes.
    let mut alice = Dialog::uac(&h.invite, &ok).unwrap();
    let bye = alice
        .request(Method::Bye, None)
        .header(HeaderName::Via, "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-bye")
        .build()
        .unwrap();
    let request = |tx, m: &Message| {
        edge_event::Event::Request(contracts::RequestReceived { tx, request: m.as_bytes().clone(), source: None })
    };
    h.event(request(9, &bye)).await;
    // An edge publishes a request again until it is answered: the call takes it once (a
    // second BYE would be refused with 481), and goes on with the next (an OPTIONS).
    h.event(request(9, &bye)).await;
    let options = alice
        .request(Method::Options, None)
        .header(HeaderName::Via, "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-opt")
        .build()
        .unwrap();
    h.event(request(10, &options)).await;
    let (mut answered, mut bob_bye) = (Vec::new(), None);
    while answered.last() != Some(&10) {
        match h.command().await {
            edge_command::Command::Respond(r) => {
                assert_eq!((r.tx, Message::parse_stream_message(r.response).unwrap().status()), (r.tx, Some(200)));
                answered.push(r.tx);
            }
            edge_command::Command::SendRequest(s) => {
                bob_bye = Some((s.correlation, Message::parse_stream_message(s.request).unwrap()))
            }
            _ => {}
        }
    }
    assert_eq!(answered, [9, 10], "the BYE answered once, then the OPTIONS");
    let (bye_key, bob_bye) = bob_bye.expect("the BYE goes on to bob");
    assert_eq!(bob_bye.method(), Some(&Method::Bye));
    let ok = Builder::response_to(&bob_bye, 200, "", None).build().unwrap();
    h.event(edge_event::Event::Response(ResponseReceived { correlation: bye_key, response: ok.as_bytes().clone() })).await;
    testkit::wait::until_async("the record to be removed", WAIT, || async { h.record().await.is_none() }).await;

    // Its detail record was written before: one, with both legs.
    let cdrs = h.cdrs().await;
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    let cdr = &cdrs[0];
    assert_eq!((cdr.session_id.as_str(), cdr.kind.as_str()), (h.session.as_str(), "call"));
    assert_eq!((cdr.caller.as_str(), cdr.callee.as_str()), ("sip:alice@127.0.0.1", "sip:1000@127.0.0.1"));
    assert_eq!((cdr.disposition.as_str(), cdr.status, cdr.hangup_by.as_str()), ("answered", 200, "caller"));
    assert!(cdr.start_ms > 0 && cdr.start_ms <= cdr.answer_ms && cdr.answer_ms <= cdr.end_ms, "{cdr:?}");
    let legs: Vec<_> = cdr.legs.iter().map(|l| (l.role.as_str(), l.call_id.as_str(), l.answered)).collect();
    assert_eq!(legs, [("caller", "call-1", true), ("callee", bob_bye.call_id().unwrap(), true)]);
    assert_eq!(cdr.legs[1].uri, "sip:bob@127.0.0.1:5090");
    // And the feed heard the call start, be answered and end.
    let kinds: Vec<_> = h
        .notices()
        .await
        .into_iter()
        .map(|n| match n {
            call_notice::Notice::Started(s) => format!("started {} {}", s.caller, s.call_id),
            call_notice::Notice::Answered(_) => "answered".into(),
            call_notice::Notice::Ended(c) => format!("ended {}", c.disposition),
        })
        .collect();
    assert_eq!(kinds, ["started sip:alice@127.0.0.1 call-1", "answered", "ended answered"]);
}

#[tokio::test]
async fn a_node_that_loses_the_call_to_another_leaves_it() {
    let mut h = harness(true).await;
    let (key, invite) = h.request().await;
    // Another node takes the session over (a bumped epoch) while bob rings.
    let other = SessionStore::new(h.registry.clone(), NodeId::new("session-2").unwrap(), Duration::from_secs(30));
    other.take_over(&h.session, true).await.unwrap();
    h.answer(key, &invite).await;
    // The fenced write stops this node before it answers the caller (the ACK to bob, which
    // precedes the write, may go out).
    while let Ok(Some(m)) = timeout(Duration::from_millis(500), h.edge.next()).await {
        let command = m.message.command.unwrap();
        assert!(!matches!(command, edge_command::Command::Respond(_)), "the old owner answered the caller: {command:?}");
    }
    assert_eq!(h.record().await.unwrap().owner, "session-2");
}

#[tokio::test]
async fn without_a_media_node_the_caller_gets_503() {
    let mut h = harness(false).await;
    let refused = h.response().await;
    assert_eq!(refused.status(), Some(503));
    assert_eq!(cluster::tags::session_of(refused.to_tag().unwrap()), Some((h.session.clone(), 0)));
    // A call that failed has its record too.
    testkit::wait::until_async("the failed call's record", WAIT, || async { !h.cdrs().await.is_empty() }).await;
    let cdrs = h.cdrs().await;
    let c = &cdrs[0];
    assert_eq!((c.disposition.as_str(), c.status, c.answer_ms, c.hangup_by.as_str()), ("failed", 503, 0, "system"));
}

#[tokio::test]
async fn the_callers_answer_goes_out_through_another_edge_when_its_edge_died() {
    let mut h = harness(true).await;
    let mut any_edge: TypedSubscription<EdgeCommand> =
        typed::subscribe(&h.bus as &dyn Bus, &subjects::any_edge_commands()).await.unwrap();
    let (key, invite) = h.request().await;
    // The session node and edge-1 beat; then edge-1 stops, and is seen dead 3 s later.
    let beat = |id: &str, role: Role| {
        let id = id.to_owned();
        let registry: Arc<dyn cluster::registry::Registry> = h.registry.clone();
        Heartbeat::start(registry, Duration::from_millis(200), move || NodeHeartbeat {
            node_id: id.clone(),
            role: role as i32,
            ..Default::default()
        })
    };
    let _session = beat("session-1", Role::Session);
    let edge = beat("edge-1", Role::Edge);
    testkit::wait::until("edge-1's heartbeat", WAIT, || edge.since_written().is_some()).await;
    drop(edge);
    let gone = || h.stats.edges_gone.load(std::sync::atomic::Ordering::Relaxed) == 1;
    testkit::wait::until("edge-1 seen dead", Duration::from_secs(10), gone).await;

    // Bob answers: the 200 for alice, whose INVITE's transaction died with edge-1, goes to
    // her address outside any transaction, through any edge.
    h.answer(key, &invite).await;
    let (ok, to) = loop {
        let command = timeout(WAIT, any_edge.next()).await.expect("a command for any edge").unwrap().message.command.unwrap();
        if let edge_command::Command::SendStateless(m) = command {
            break (Message::parse_stream_message(m.message).unwrap(), m.destination.unwrap().addr);
        }
    };
    assert_eq!((ok.status(), ok.call_id()), (Some(200), Some("call-1")));
    assert_eq!(to, "127.0.0.1:5080", "to where alice's INVITE came from");
}

#[tokio::test]
async fn a_request_nothing_is_heard_of_is_sent_again_to_its_edge() {
    let mut h = harness(true).await;
    // The callee's INVITE never reached the edge (lost with a NATS server, say): no news.
    let (key, invite) = h.request().await;
    let (again, resent) = timeout(WAIT, h.request()).await.expect("sent again after a while of silence");
    assert_eq!((again, resent.as_bytes()), (key, invite.as_bytes()), "the same request, for the edge to skip if it has it");
    // The call goes on with the answer to either.
    h.answer(key, &invite).await;
    assert_eq!(h.response().await.status(), Some(200));
}
