//! Parse throughput for a typical INVITE (with SDP) and a 200 OK, plus building a response.
//! Run: `cargo bench -p callmesh-sip --bench parse`.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sip::message::{Builder, Message};
use std::hint::black_box;

const INVITE: &str = "INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-3164-1-0\r\n\
From: sipp <sip:sipp@127.0.0.1:5080>;tag=3164SIPpTag001\r\n\
To: service <sip:service@127.0.0.1:5060>\r\n\
Call-ID: 1-3164@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@127.0.0.1:5080\r\n\
Max-Forwards: 70\r\n\
Subject: Performance Test\r\n\
Content-Type: application/sdp\r\n\
Content-Length:   129\r\n\
\r\n\
v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-3164-1-0\r\n\
From: sipp <sip:sipp@127.0.0.1:5080>;tag=3164SIPpTag001\r\n\
To: service <sip:service@127.0.0.1:5060>;tag=3164SIPpTag011\r\n\
Call-ID: 1-3164@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:127.0.0.1:5060;transport=UDP>\r\n\
Content-Length: 0\r\n\
\r\n";

fn bench(c: &mut Criterion) {
    let invite = Bytes::from_static(INVITE.as_bytes());
    let ok = Bytes::from_static(OK.as_bytes());
    assert!(Message::parse_datagram(invite.clone()).is_ok() && Message::parse_datagram(ok.clone()).is_ok());
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("invite", |b| b.iter(|| Message::parse_datagram(black_box(invite.clone())).unwrap()));
    g.bench_function("200_ok", |b| b.iter(|| Message::parse_datagram(black_box(ok.clone())).unwrap()));
    let parsed = Message::parse_datagram(invite.clone()).unwrap();
    g.bench_function("build_200_to_invite", |b| {
        b.iter(|| Builder::response_to(black_box(&parsed), 200, "", Some("as8d7f")).build().unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
