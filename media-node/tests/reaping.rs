//! Relays whose call is gone are reaped, on a real nats-server with the JetStream session
//! registry: a relay nobody released (no record) is freed with its ports, a recorded call's
//! relay and a relay still carrying audio are kept, and each goes once its record is
//! deleted or its audio stops.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use cluster::bus::NatsBus;
use cluster::registry::{Bucket, JetStreamRegistry, Registry, RegistryConfig};
use cluster::subjects::{NodeId, SessionId};
use media_node::{FarMedia, MediaClient, MediaConfig, MediaNode};
use testkit::nats::NatsServer;
use tokio::net::UdpSocket;

const SWEEP: Duration = Duration::from_millis(200);
/// Two sweeps and the time a loaded machine takes for them, with room to spare.
const REAPED_WITHIN: Duration = Duration::from_secs(5);

/// Waits until `done` holds, up to `REAPED_WITHIN`, sending `talk` a packet every 20 ms
/// meanwhile; panics naming `what`.
async fn until(what: &str, talk: &UdpSocket, to: std::net::SocketAddr, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + REAPED_WITHIN;
    let mut seq = 0u16;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "waited {REAPED_WITHIN:?} for {what}");
        seq = seq.wrapping_add(1);
        let mut packet = vec![0x80, 0x00];
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&[0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef]);
        packet.extend_from_slice(&[0xff; 160]);
        talk.send_to(&packet, to).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn relays_without_a_record_are_reaped_unless_they_carry_audio() {
    let server = NatsServer::start().expect("nats-server starts");
    let bus = NatsBus::connect(&server.url, "media-1").await.expect("connects to NATS");
    let registry: Arc<dyn Registry> =
        Arc::new(JetStreamRegistry::connect(bus.client().clone(), &RegistryConfig::default()).await.expect("buckets"));
    let bus = Arc::new(bus);
    let config = MediaConfig::new(NodeId::new("media-1").unwrap(), "127.0.0.1".parse().unwrap(), (42000, 42019));
    let media = MediaNode::start(config, bus.clone()).await.unwrap();
    let free = media.free_port_pairs();
    let client = MediaClient::new(bus, &NodeId::new("session-1").unwrap(), Duration::from_secs(2));

    let talker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let far = FarMedia { rtp: talker.local_addr().unwrap(), events: None, signal: None, clock_rate: 8000, codecs: vec![] };
    let id = |s: &str| SessionId::new(s).unwrap();
    client.allocate(&id("forgotten"), None, None).await.unwrap();
    client.allocate(&id("recorded"), None, None).await.unwrap();
    let talking = client.allocate(&id("talking"), Some(far), None).await.unwrap();
    registry.create(Bucket::Sessions, "recorded", Bytes::from_static(b"a call")).await.unwrap();
    assert_eq!(media.free_port_pairs(), free - 6);

    media.reap_with(registry.clone(), SWEEP);
    let to = talking.legs[0];
    until("the forgotten relay to be reaped", &talker, to, || media.session_counters("forgotten").is_none()).await;
    assert!(media.session_counters("recorded").is_some(), "a recorded call's relay is kept");
    assert!(media.session_counters("talking").is_some(), "a relay carrying audio is kept");
    assert_eq!(media.free_port_pairs(), free - 4, "the reaped relay's two port pairs are free again");

    // Its call ends but the release is lost: the record goes, then the relay.
    registry.delete(Bucket::Sessions, "recorded", None).await.unwrap();
    until("the relay whose record went to be reaped", &talker, to, || media.session_counters("recorded").is_none()).await;
    assert!(media.session_counters("talking").is_some(), "still carrying audio, still kept");

    // Its audio stops.
    let deadline = tokio::time::Instant::now() + REAPED_WITHIN;
    while media.session_counters("talking").is_some() {
        assert!(tokio::time::Instant::now() < deadline, "waited {REAPED_WITHIN:?} for the silent relay to be reaped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(media.free_port_pairs(), free);
    assert_eq!(media.stats().relays_reaped.load(Ordering::Relaxed), 3);
}
