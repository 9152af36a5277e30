//! The media node over real UDP, driven through the bus like a session node does:
//! relaying both ways, latching, RTCP, counters, garbage, exhaustion, release, dead media.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cluster::bus::{Bus, LocalBus, typed};
use cluster::contracts::{MediaEvent, media_event};
use cluster::subjects::{self, NodeId, SessionId};
use media_node::{FarMedia, MediaClient, MediaConfig, MediaError, MediaNode};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

async fn node(bus: &LocalBus, ports: (u16, u16), no_rtp: Option<Duration>) -> MediaNode {
    let loopback = MediaConfig::new(NodeId::new("media-1").unwrap(), "127.0.0.1".parse().unwrap(), ports);
    let config = MediaConfig { no_rtp_timeout: no_rtp, ..loopback };
    MediaNode::start(config, Arc::new(bus.clone())).await.unwrap()
}

fn client(bus: &LocalBus) -> MediaClient {
    MediaClient::new(Arc::new(bus.clone()), &NodeId::new("session-1").unwrap(), Duration::from_secs(2))
}

fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef]);
    p.extend_from_slice(payload);
    p
}

async fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (n, from) = timeout(WAIT, socket.recv_from(&mut buf)).await.expect("waiting for a relayed packet").unwrap();
    buf.truncate(n);
    (buf, from)
}

/// The far end at `socket`, as its SDP would describe it (no signalling address apart).
fn far(socket: &UdpSocket, events: Option<u8>) -> FarMedia {
    FarMedia { rtp: socket.local_addr().unwrap(), events, signal: None, clock_rate: 8000, codecs: Vec::new() }
}

/// An RTP socket and the RTCP socket on the next port.
async fn endpoint() -> (UdpSocket, UdpSocket) {
    loop {
        let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = rtp.local_addr().unwrap().port();
        if port % 2 == 1 {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)).await {
            return (rtp, rtcp);
        }
    }
}

#[tokio::test]
async fn relays_both_ways_latching_to_the_real_source() {
    let bus = LocalBus::default();
    let media = node(&bus, (43_000, 43_019), None).await;
    let session = SessionId::new("s1").unwrap();
    let (caller, caller_rtcp) = endpoint().await;
    let (callee, callee_rtcp) = endpoint().await;
    let alloc = client(&bus).allocate(&session, Some(far(&caller, None)), None).await.unwrap();
    client(&bus).connect_confirmed(&alloc.node, &session, 1, far(&callee, None)).await.unwrap();

    caller.send_to(&rtp(1, b"hello"), alloc.legs[0]).await.unwrap();
    let (got, from) = recv(&callee).await;
    assert_eq!((&got[12..], from), (&b"hello"[..], alloc.legs[1]), "relayed unchanged from the callee-side port");

    // The callee answers from another port than its SDP said (NAT): the caller gets it,
    // and the caller's next packets follow the callee to that port.
    let natted = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    natted.send_to(&rtp(7, b"back"), alloc.legs[1]).await.unwrap();
    let (got, from) = recv(&caller).await;
    assert_eq!((&got[12..], from), (&b"back"[..], alloc.legs[0]));
    caller.send_to(&rtp(2, b"again"), alloc.legs[0]).await.unwrap();
    assert_eq!(&recv(&natted).await.0[12..], b"again");

    // RTCP goes port+1 to port+1.
    let rtcp_port = |a: SocketAddr| SocketAddr::new(a.ip(), a.port() + 1);
    let report = [0x81, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef];
    caller_rtcp.send_to(&report, rtcp_port(alloc.legs[0])).await.unwrap();
    assert_eq!(recv(&callee_rtcp).await.0, report);

    // Garbage is dropped and counted; a sequence gap counts as loss (RFC 3550: the first
    // packet is probation, so 2 and 5 were received of 2..=5 expected).
    caller.send_to(b"not rtp at all", alloc.legs[0]).await.unwrap();
    caller.send_to(&rtp(5, b"after a gap"), alloc.legs[0]).await.unwrap();
    assert_eq!(&recv(&natted).await.0[12..], b"after a gap");
    let counters = media.session_counters("s1").unwrap();
    assert_eq!((counters[0].packets_received, counters[0].invalid_packets, counters[0].packets_lost), (3, 1, 2));
    assert_eq!((counters[1].packets_sent, counters[0].packets_sent, counters[0].rtcp_packets), (3, 1, 1));

    let stats = client(&bus).release_with_stats(&alloc.node, &session).await.unwrap();
    assert_eq!(stats.iter().map(|s| s.packets_received).collect::<Vec<_>>(), [3, 1]);
    assert_eq!(media.active_sessions(), 0);
    assert_eq!(media.packets_relayed(), 4);
    drop(callee_rtcp);
}

#[tokio::test]
async fn an_empty_pool_is_a_clear_error_and_release_refills_it() {
    let bus = LocalBus::default();
    let media = node(&bus, (43_100, 43_103), None).await;
    let c = client(&bus);
    let first = c.allocate(&SessionId::new("a").unwrap(), None, None).await.unwrap();
    let err = c.allocate(&SessionId::new("b").unwrap(), None, None).await.unwrap_err();
    assert_eq!(err, MediaError::Unavailable("no free RTP port in 43100-43103: 2 pairs in use, 0 could not be bound".into()));
    assert_eq!(media.stats().allocation_failures.load(std::sync::atomic::Ordering::Relaxed), 1);
    c.release_with_stats(&first.node, &SessionId::new("a").unwrap()).await.unwrap();
    assert_eq!(media.free_port_pairs(), 2);
    c.allocate(&SessionId::new("b").unwrap(), None, None).await.unwrap();
    let unknown = c.release_with_stats(&first.node, &SessionId::new("zzz").unwrap()).await.unwrap_err();
    assert!(matches!(unknown, MediaError::Refused(ref m) if m.contains("unknown session")), "{unknown}");
}

#[tokio::test]
async fn an_allocation_that_comes_after_its_askers_deadline_is_not_made() {
    let bus = LocalBus::default();
    let media = node(&bus, (43_140, 43_159), None).await;
    let free = media.free_port_pairs();
    // The session node stopped waiting a moment ago (its reply would go nowhere).
    let late = cluster::contracts::MediaAllocate {
        meta: cluster::contracts::meta("session-1"),
        session_id: "late".into(),
        legs: 2,
        deadline_unix_ms: cluster::contracts::unix_ms() - 1,
        ..Default::default()
    };
    let reply: cluster::contracts::MediaAllocation =
        typed::request(&bus, &subjects::media_allocate(), &late, WAIT).await.expect("an answer all the same");
    assert!(reply.error.contains("too late") && reply.legs.is_empty(), "{reply:?}");
    assert_eq!((media.active_sessions(), media.free_port_pairs()), (0, free), "no relay, no port taken");
    assert_eq!(media.stats().allocations_too_late.load(std::sync::atomic::Ordering::Relaxed), 1);
    // Asked in time (the client sets the deadline), it is made.
    client(&bus).allocate(&SessionId::new("in-time").unwrap(), None, None).await.unwrap();
    assert_eq!(media.active_sessions(), 1);
}

#[tokio::test]
async fn a_node_at_its_session_limit_declines_until_a_call_ends() {
    let bus = LocalBus::default();
    let loopback = MediaConfig::new(NodeId::new("media-1").unwrap(), "127.0.0.1".parse().unwrap(), (43_120, 43_139));
    let limits = media_node::limits::Limits { max_sessions: Some(1), max_cpu_percent: None };
    let media = MediaNode::start(MediaConfig { limits, ..loopback }, Arc::new(bus.clone())).await.unwrap();
    let c = client(&bus);
    let first = c.allocate(&SessionId::new("a").unwrap(), None, None).await.unwrap();
    assert_eq!(media.declines().as_deref(), Some("busy: 1 sessions, the limit is 1"));
    let err = c.allocate(&SessionId::new("b").unwrap(), None, None).await.unwrap_err();
    assert_eq!(err, MediaError::Unavailable("busy: 1 sessions, the limit is 1".into()));
    assert_eq!(media.stats().allocations_declined.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(media.free_port_pairs(), 8, "a declined call takes no port");
    c.release_with_stats(&first.node, &SessionId::new("a").unwrap()).await.unwrap();
    assert_eq!(media.declines(), None);
    c.allocate(&SessionId::new("b").unwrap(), None, None).await.unwrap();
}

#[tokio::test]
async fn an_allocation_waits_a_few_seconds_for_a_media_node_to_answer() {
    let bus = LocalBus::default();
    // Nobody answers: after a few seconds of asking, a clear error.
    let asked = std::time::Instant::now();
    let err = client(&bus).allocate(&SessionId::new("x").unwrap(), None, None).await.unwrap_err();
    assert!(matches!(err, MediaError::Unavailable(_)), "{err}");
    assert!((Duration::from_secs(2)..WAIT).contains(&asked.elapsed()), "gave up after {:?}", asked.elapsed());
    // A node that comes a moment later (as its NATS connection moves to another server)
    // takes the allocation.
    let late = bus.clone();
    let starting = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        node(&late, (43_700, 43_703), None).await
    });
    let allocation =
        client(&bus).allocate(&SessionId::new("y").unwrap(), None, None).await.expect("allocated once the node is up");
    assert_eq!(allocation.node.as_str(), "media-1");
    drop(starting.await.unwrap());
}

#[tokio::test]
async fn a_silent_leg_is_reported_to_the_session_owner() {
    let bus = LocalBus::default();
    let _media = node(&bus, (43_200, 43_219), Some(Duration::from_secs(1))).await;
    let session = SessionId::new("quiet").unwrap();
    let mut events = typed::subscribe::<MediaEvent>(&bus as &dyn Bus, &subjects::session_media_events(&session)).await.unwrap();
    let alloc = client(&bus).allocate(&session, None, None).await.unwrap();
    let (far_end, _rtcp) = endpoint().await;
    client(&bus).connect_confirmed(&alloc.node, &session, 0, far(&far_end, None)).await.unwrap();
    let event = timeout(WAIT, events.next()).await.expect("waiting for the no-RTP event").unwrap();
    assert!(matches!(event.message.event, Some(media_event::Event::NoRtp(n)) if n.leg == 0 && n.seconds == 1));
}

/// An RFC 4733 packet: `digit` code, end bit, duration, from the callee's stream.
fn event(seq: u16, code: u8, end: bool, duration: u16) -> Vec<u8> {
    let mut p = vec![0x80, 101];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x1f, 0x40, 0xca, 0xfe, 0xf0, 0x0d]);
    p.extend_from_slice(&[code, if end { 0x8a } else { 0x0a }]);
    p.extend_from_slice(&duration.to_be_bytes());
    p
}

#[tokio::test]
async fn dtmf_crosses_between_a_leg_with_events_and_one_without() {
    let bus = LocalBus::default();
    let _media = node(&bus, (43_300, 43_303), None).await;
    let session = SessionId::new("s4").unwrap();
    let mut events = typed::subscribe::<MediaEvent>(&bus as &dyn Bus, &subjects::session_media_events(&session)).await.unwrap();
    let (caller, _caller_rtcp) = endpoint().await;
    let (callee, _callee_rtcp) = endpoint().await;
    // The caller knows no events (SIP INFO only); the callee negotiated them on 101.
    let alloc = client(&bus).allocate(&session, Some(far(&caller, None)), None).await.unwrap();
    client(&bus).connect_confirmed(&alloc.node, &session, 1, far(&callee, Some(101))).await.unwrap();

    // The callee's digit: read, reported once (its end comes three times), never sent on.
    callee.send_to(&event(10, 5, false, 160), alloc.legs[1]).await.unwrap();
    for _ in 0..3 {
        callee.send_to(&event(11, 5, true, 800), alloc.legs[1]).await.unwrap();
    }
    callee.send_to(&rtp(12, b"voice"), alloc.legs[1]).await.unwrap();
    let event = timeout(WAIT, events.next()).await.expect("waiting for the DTMF event").unwrap();
    assert!(
        matches!(&event.message.event, Some(media_event::Event::Dtmf(d)) if d.leg == 1 && d.digit == "5" && d.duration_ms == 100),
        "{:?}",
        event.message.event
    );
    assert_eq!(&recv(&caller).await.0[12..], b"voice", "the events did not reach the caller, the voice did");

    // The caller's digit (from its INFO): written toward the callee in the caller's stream,
    // whose later packets follow the events' sequence numbers.
    caller.send_to(&rtp(100, b"before"), alloc.legs[0]).await.unwrap();
    assert_eq!(u16::from_be_bytes(recv(&callee).await.0[2..4].try_into().unwrap()), 100);
    client(&bus).dtmf(&alloc.node, &session, 1, '#', 60).await.unwrap();
    let mut written = Vec::new();
    while written.len() < 5 {
        let (packet, _) = recv(&callee).await;
        let read = media_node::dtmf::read(&packet, 101).expect("an RFC 4733 packet");
        written.push((u16::from_be_bytes([packet[2], packet[3]]), read.digit, read.end));
    }
    assert_eq!(written, [(101, '#', false), (102, '#', false), (103, '#', true), (104, '#', true), (105, '#', true)]);
    caller.send_to(&rtp(101, b"after"), alloc.legs[0]).await.unwrap();
    let (after, _) = recv(&callee).await;
    assert_eq!((u16::from_be_bytes([after[2], after[3]]), &after[12..]), (106, &b"after"[..]), "shifted past the events");
}

/// Whether `socket` receives anything within `within`.
async fn silent(socket: &UdpSocket, within: Duration) -> bool {
    let mut buf = [0u8; 2048];
    timeout(within, socket.recv_from(&mut buf)).await.is_err()
}

#[tokio::test]
async fn a_stranger_spraying_rtp_mid_call_gets_nothing_and_is_counted() {
    let bus = LocalBus::default();
    let media = node(&bus, (43_400, 43_403), None).await;
    let session = SessionId::new("bleed").unwrap();
    let (caller, _caller_rtcp) = endpoint().await;
    let (callee, _callee_rtcp) = endpoint().await;
    let alloc = client(&bus).allocate(&session, Some(far(&caller, None)), None).await.unwrap();
    client(&bus).connect_confirmed(&alloc.node, &session, 1, far(&callee, None)).await.unwrap();
    caller.send_to(&rtp(1, b"hi bob"), alloc.legs[0]).await.unwrap();
    assert_eq!(&recv(&callee).await.0[12..], b"hi bob");
    callee.send_to(&rtp(1, b"hi alice"), alloc.legs[1]).await.unwrap();
    assert_eq!(&recv(&caller).await.0[12..], b"hi alice");

    // Mid-call, strangers send valid-looking RTP to both ports: another host, and another
    // port of the caller's own host while the caller talks.
    let elsewhere = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let same_host = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for seq in 2..12u16 {
        for sprayer in [&elsewhere, &same_host] {
            for leg in alloc.legs {
                sprayer.send_to(&rtp(seq, b"spray"), leg).await.unwrap();
            }
        }
        caller.send_to(&rtp(seq, b"alice"), alloc.legs[0]).await.unwrap();
        callee.send_to(&rtp(seq, b"bob"), alloc.legs[1]).await.unwrap();
        assert_eq!(&recv(&callee).await.0[12..], b"alice", "the callee hears only the caller");
        assert_eq!(&recv(&caller).await.0[12..], b"bob", "the caller hears only the callee");
    }
    assert!(silent(&elsewhere, Duration::from_millis(300)).await, "no audio went toward the other host");
    assert!(silent(&same_host, Duration::from_millis(10)).await, "nor toward the other port");
    let counters = media.session_counters("bleed").unwrap();
    assert_eq!((counters[0].refused_packets, counters[1].refused_packets), (20, 20));
    assert_eq!((counters[0].packets_received, counters[1].packets_received), (11, 11));
}

#[tokio::test]
async fn rtp_ahead_of_the_answer_waits_for_it_and_only_the_answerers_is_relayed() {
    let bus = LocalBus::default();
    let media = node(&bus, (43_500, 43_503), None).await;
    let session = SessionId::new("early").unwrap();
    let (caller, _caller_rtcp) = endpoint().await;
    let (callee, _callee_rtcp) = endpoint().await;
    let alloc = client(&bus).allocate(&session, Some(far(&caller, None)), None).await.unwrap();
    // The callee starts talking before its 200 OK has reached the session; so does a
    // stranger elsewhere.
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    stranger.send_to(&rtp(40, b"stranger"), alloc.legs[1]).await.unwrap();
    callee.send_to(&rtp(1, b"first words"), alloc.legs[1]).await.unwrap();
    caller.send_to(&rtp(1, b"hello?"), alloc.legs[0]).await.unwrap();
    assert!(silent(&caller, Duration::from_millis(200)).await, "nothing reaches the caller before the answer");
    client(&bus).connect_confirmed(&alloc.node, &session, 1, far(&callee, None)).await.unwrap();
    assert_eq!(&recv(&caller).await.0[12..], b"first words", "the callee's early packet, once its address is known");
    assert!(silent(&caller, Duration::from_millis(200)).await, "the stranger's packet was not relayed");
    assert_eq!(media.session_counters("early").unwrap()[1].refused_packets, 1);
    assert!(silent(&stranger, Duration::from_millis(10)).await);
}

#[tokio::test]
async fn a_lossy_leg_is_scored_and_its_owner_told() {
    let bus = LocalBus::default();
    let _media = node(&bus, (43_600, 43_603), None).await;
    let session = SessionId::new("lossy").unwrap();
    let mut events = typed::subscribe::<MediaEvent>(&bus as &dyn Bus, &subjects::session_media_events(&session)).await.unwrap();
    let (caller, _caller_rtcp) = endpoint().await;
    let (callee, _callee_rtcp) = endpoint().await;
    let alloc = client(&bus).allocate(&session, Some(far(&caller, None)), None).await.unwrap();
    client(&bus).connect_confirmed(&alloc.node, &session, 1, far(&callee, None)).await.unwrap();
    // Six seconds of a real-time stream that loses one packet in four.
    let sending = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        for seq in 0..300u16 {
            ticks.tick().await;
            if seq % 4 != 3 {
                let mut packet = rtp(seq, &[0xff; 160]);
                packet[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                caller.send_to(&packet, alloc.legs[0]).await.unwrap();
            }
        }
    });
    let quality = loop {
        let event = timeout(Duration::from_secs(10), events.next()).await.expect("a quality report").unwrap();
        if let Some(media_event::Event::Quality(q)) = event.message.event {
            break q;
        }
    };
    assert_eq!(quality.leg, 0);
    assert!((20.0..30.0).contains(&quality.loss_percent), "{quality:?}");
    assert!(quality.mos < 3.0 && (quality.level == "poor" || quality.level == "critical"), "{quality:?}");
    sending.await.unwrap();
    let stats = client(&bus).release_with_stats(&alloc.node, &session).await.unwrap();
    assert!(stats[0].worst_mos > 1.0 && stats[0].worst_mos < 3.0, "{:?}", stats[0]);
    drop(callee);
}
