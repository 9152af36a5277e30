//! The bus conformance suite, run against `LocalBus` and `NatsBus` on a real nats-server:
//! wildcards, queue groups, request/reply, no responders, headers and trace context,
//! undecodable messages, and decoded byte fields that do not pin the payload.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::bus::{BusError, Headers, typed};
use cluster::contracts::{NoRtp, Respond};
use cluster::registry::RegistryConfig;
use cluster::subjects::{test, test_pattern};
use common::{Fabric, within};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

conformance!(RegistryConfig::default();
    wildcards_match_tokens_like_nats,
    queue_groups_deliver_each_message_to_exactly_one_member,
    request_reply_carries_payload_and_headers,
    request_without_responder_fails_fast,
    request_without_reply_times_out,
    trace_context_travels_in_headers,
    undecodable_messages_are_counted_and_skipped,
    decoded_byte_fields_do_not_hold_the_payload,
);

async fn wildcards_match_tokens_like_nats(f: Fabric) {
    let mut one = f.bus.subscribe(&test_pattern("w.*")).await.unwrap();
    let mut all = f.bus.subscribe(&test_pattern("w.>")).await.unwrap();
    let mut exact = f.bus.subscribe(&test("w.a")).await.unwrap();
    f.bus.flush().await.unwrap();
    let publisher = f.other_node().await;
    for s in ["w.a", "w.a.b", "w.b"] {
        publisher.publish(&test_pattern(s), Headers::new(), Bytes::from(s)).await.unwrap();
    }
    publisher.flush().await.unwrap();
    let got = |m: cluster::bus::BusMessage| m.payload;
    assert_eq!(got(within("w.* #1", one.next()).await.unwrap()), "w.a");
    assert_eq!(got(within("w.* #2", one.next()).await.unwrap()), "w.b");
    for want in ["w.a", "w.a.b", "w.b"] {
        assert_eq!(got(within("w.>", all.next()).await.unwrap()), want);
    }
    assert_eq!(got(within("exact", exact.next()).await.unwrap()), "w.a");
    assert!(tokio::time::timeout(Duration::from_millis(100), exact.next()).await.is_err(), "exact got more");
}

async fn queue_groups_deliver_each_message_to_exactly_one_member(f: Fabric) {
    const N: usize = 300;
    let subject = test("work");
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(f.bus.queue_subscribe(&subject, "workers").await.unwrap());
    }
    let mut watcher = f.bus.subscribe(&subject).await.unwrap();
    f.bus.flush().await.unwrap();
    let publisher = f.other_node().await;
    for i in 0..N {
        publisher.publish(&subject, Headers::new(), Bytes::from(i.to_string())).await.unwrap();
    }
    publisher.flush().await.unwrap();
    for _ in 0..N {
        within("the plain subscriber's copy", watcher.next()).await.unwrap();
    }
    let mut seen = HashSet::new();
    let mut per_member = Vec::new();
    for m in &mut members {
        let mut count = 0;
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(300), m.next()).await {
            assert!(seen.insert(msg.payload.clone()), "message {:?} delivered twice", msg.payload);
            count += 1;
        }
        per_member.push(count);
    }
    assert_eq!(seen.len(), N, "every message reached exactly one member: {per_member:?}");
    assert!(per_member.iter().all(|c| *c > 0), "work is shared: {per_member:?}");
}

async fn request_reply_carries_payload_and_headers(f: Fabric) {
    let subject = test("echo");
    let mut server = f.bus.queue_subscribe(&subject, "echo").await.unwrap();
    f.bus.flush().await.unwrap();
    let bus = f.bus.clone();
    tokio::spawn(async move {
        while let Some(req) = server.next().await {
            let mut h = Headers::new();
            h.insert("x-seen".into(), req.headers.get("x-trace").cloned().unwrap_or_default());
            bus.publish_reply(req.reply.as_deref().unwrap(), h, req.payload).await.unwrap();
        }
    });
    let client = f.other_node().await;
    let mut h = Headers::new();
    h.insert("x-trace".into(), "abc".into());
    let reply = client.request(&subject, h, Bytes::from_static(b"ping"), Duration::from_secs(5)).await.unwrap();
    assert_eq!(reply.payload, "ping");
    assert_eq!(reply.headers.get("x-seen").map(String::as_str), Some("abc"));
}

async fn request_without_responder_fails_fast(f: Fabric) {
    let started = Instant::now();
    let err = f.bus.request(&test("nobody"), Headers::new(), Bytes::new(), Duration::from_secs(10)).await.unwrap_err();
    assert!(matches!(err, BusError::NoResponders(ref s) if s == "callmesh.test.nobody"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?} for a 10 s timeout", started.elapsed());
}

async fn request_without_reply_times_out(f: Fabric) {
    let _silent = f.bus.subscribe(&test("silent")).await.unwrap();
    f.bus.flush().await.unwrap();
    let err = f.bus.request(&test("silent"), Headers::new(), Bytes::new(), Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, BusError::Timeout(..)), "{err}");
}

async fn trace_context_travels_in_headers(f: Fabric) {
    let mut sub = typed::subscribe::<NoRtp>(f.bus.as_ref(), &test("traced")).await.unwrap();
    f.bus.flush().await.unwrap();
    let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let span = SpanContext::new(
        trace_id,
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let cx = opentelemetry::Context::new().with_remote_span_context(span);
    {
        let _guard = cx.attach();
        typed::publish(f.bus.as_ref(), &test("traced"), &NoRtp { leg: 1, seconds: 5 }).await.unwrap();
    }
    let got = within("the traced message", sub.next()).await.unwrap();
    assert_eq!(got.message, NoRtp { leg: 1, seconds: 5 });
    assert_eq!(got.trace_context().span().span_context().trace_id(), trace_id);
}

async fn undecodable_messages_are_counted_and_skipped(f: Fabric) {
    let subject = test("garbage");
    let mut sub = typed::subscribe::<NoRtp>(f.bus.as_ref(), &subject).await.unwrap();
    f.bus.flush().await.unwrap();
    let before = cluster::metrics::decode_errors();
    f.bus.publish(&subject, Headers::new(), Bytes::from_static(&[0xff, 0xff, 0xff, 0x0f, 0x01])).await.unwrap();
    typed::publish(f.bus.as_ref(), &subject, &NoRtp { leg: 2, seconds: 9 }).await.unwrap();
    let got = within("the valid message after the garbage", sub.next()).await.unwrap();
    assert_eq!(got.message.leg, 2);
    assert!(cluster::metrics::decode_errors() > before);
}

/// A SIP message an edge keeps for 32 s of retransmissions must not keep the client's read
/// buffer alive with it: a decoded byte field is its own allocation, not a view of the payload.
async fn decoded_byte_fields_do_not_hold_the_payload(f: Fabric) {
    let subject = test("bytes");
    let mut sub = typed::subscribe::<Respond>(f.bus.as_ref(), &subject).await.unwrap();
    f.bus.flush().await.unwrap();
    let response = Bytes::from_static(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    typed::publish(f.bus.as_ref(), &subject, &Respond { tx: 7, response: response.clone() }).await.unwrap();
    let got = within("the response", sub.next()).await.unwrap();
    assert_eq!(got.message.response, response);
    let payload = got.raw.payload.as_ptr_range();
    let field = got.message.response.as_ptr();
    assert!(!payload.contains(&field), "the decoded field points into the bus payload");
}

/// In-process only: a subscriber that stops reading fills its own buffer; publishers wait
/// at most `max_block` per message, then drop it for that subscriber and count it, while
/// other subscribers still get everything.
#[tokio::test]
async fn local_bus_slow_subscriber_never_blocks_a_publisher_forever() {
    use cluster::bus::{Bus, LocalBus, LocalBusConfig};
    let bus = LocalBus::new(LocalBusConfig { capacity: 4, max_block: Duration::from_millis(20) });
    let subject = test("slow");
    let mut stuck = bus.subscribe(&subject).await.unwrap();
    let mut fast = bus.subscribe(&subject).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while n < 20 {
            fast.next().await.unwrap();
            n += 1;
        }
        n
    });
    let before = cluster::metrics::slow_consumer_drops();
    let started = Instant::now();
    for i in 0..20 {
        bus.publish(&subject, Headers::new(), Bytes::from(i.to_string())).await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(5), "publishing took {:?}", started.elapsed());
    assert_eq!(within("the fast subscriber", reader).await.unwrap(), 20);
    assert_eq!(cluster::metrics::slow_consumer_drops() - before, 16, "16 of 20 did not fit a buffer of 4");
    for want in ["0", "1", "2", "3"] {
        assert_eq!(stuck.next().await.unwrap().payload, want);
    }
}
