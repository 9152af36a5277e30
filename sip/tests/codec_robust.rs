//! Robustness of the codec under arbitrary input (no panic, whatever the bytes), and typed
//! headers that survive print → parse for generated values.

use bytes::Bytes;
use proptest::prelude::*;
use sip::message::framing::StreamFramer;
use sip::message::validate::{ServerProfile, validate_request, validate_response};
use sip::message::{
    AuthValue, CSeq, HeaderName, Host, HostPort, Message, Method, NameAddr, Params, SipUri, Transport, Uri, ValueParams, Via,
};

const INVITE: &str = "INVITE sip:bob@[2001:db8::1]:5060;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport, SIP/2.0/TCP h.example.com\r\n\
Max-Forwards: 70\r\nTo: \"Bob \\\"B\\\"\" <sip:bob@biloxi.com>\r\nf: <sip:alice@atlanta.com>;tag=1928301774\r\n\
i: a84b4c76e66710@pc33\r\nCSeq: 314159 INVITE\r\nContact: <sip:alice@pc33.atlanta.com>;expires=30\r\n\
Require: timer\r\nRoute: <sip:p1;lr>,<sip:p2;lr>\r\nAuthorization: Digest username=\"a\", nonce=\"n\"\r\n\
Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\r\n";

/// Touches every accessor a transaction layer or application might call.
fn exercise(m: &Message) {
    let _ = (m.method(), m.status(), m.reason(), m.request_uri(), m.call_id(), m.cseq(), m.branch());
    let _ = (m.via_sent_by(), m.via_host(), m.from_tag(), m.to_tag(), m.max_forwards(), m.body(), m.head());
    let _ = (m.from(), m.to(), m.vias(), m.is_contact_star(), m.header_problem());
    for name in [HeaderName::Contact, HeaderName::Route, HeaderName::RecordRoute] {
        let _ = m.name_addrs(name);
    }
    for v in m.header_values(HeaderName::Authorization) {
        let _ = AuthValue::parse(v, HeaderName::Authorization);
    }
    let _ = m.headers().count();
    if m.is_request() {
        let _ = validate_request(m, &ServerProfile::default());
    } else {
        let _ = validate_response(m);
    }
}

fn try_everything(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    match Message::parse_datagram(bytes.clone()) {
        Ok(m) => exercise(&m),
        Err(sip::message::ParseError::Truncated { partial, .. }) => exercise(&partial),
        Err(e) => {
            let _ = e.reason_phrase();
        }
    }
    if let Ok(m) = Message::parse_stream_message(bytes) {
        exercise(&m);
    }
    let mut framer = StreamFramer::new();
    framer.buffer_mut().extend_from_slice(data);
    for _ in 0..64 {
        match framer.next_frame() {
            Ok(Some(sip::message::framing::Frame::Message(m))) => {
                if let Ok(m) = Message::parse_stream_message(m) {
                    exercise(&m);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let special =
        prop::sample::select(vec![b'\r', b'\n', b' ', b':', b';', b',', b'"', b'<', b'>', b'\\', b'@', b'[', b']', 0, 0xff]);
    prop_oneof![
        (any::<usize>(), prop_oneof![any::<u8>(), special.clone()]).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), 0usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), prop::collection::vec(special, 1..8)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(base: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut v = base.to_vec();
    for m in muts {
        let len = v.len().max(1);
        match m {
            Mutation::Set(i, b) if !v.is_empty() => v[i % len] = *b,
            Mutation::Delete(i, n) if !v.is_empty() => {
                let start = i % len;
                let end = (start + n).min(v.len());
                v.drain(start..end);
            }
            Mutation::Insert(i, bytes) => {
                let at = i % (v.len() + 1);
                v.splice(at..at, bytes.iter().copied());
            }
            Mutation::Truncate(i) => v.truncate(i % len),
            _ => {}
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..1500)) {
        try_everything(&data);
    }

    #[test]
    fn mutated_messages_never_panic(muts in prop::collection::vec(mutation(), 1..6)) {
        try_everything(&apply(INVITE.as_bytes(), &muts));
    }
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,11}"
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| Host::Ipv4(o.into())),
        any::<[u16; 8]>().prop_map(|s| Host::Ipv6(s.into())),
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9]{0,6}){0,3}".prop_map(Host::Domain),
    ]
}

fn params() -> impl Strategy<Value = Params> {
    prop::collection::vec((token(), prop::option::of(prop_oneof![token(), "\"[a-z ,;:<>@]{0,8}\""])), 0..4).prop_map(|ps| {
        let mut p = Params::new();
        for (n, v) in ps {
            if !p.contains(&n) {
                p.set(&n, v.as_deref());
            }
        }
        p
    })
}

fn uri() -> impl Strategy<Value = Uri> {
    let user = prop::option::of("[a-zA-Z0-9_.!~*'()&=+$,;?/%-]{1,12}");
    let uri_params = prop::collection::vec((token(), prop::option::of(token())), 0..3);
    prop_oneof![
        (any::<bool>(), user, host(), prop::option::of(any::<u16>()), uri_params).prop_map(|(secure, user, host, port, ps)| {
            let mut u = SipUri::new(user.as_deref(), HostPort::new(host, port));
            u.secure = secure;
            for (n, v) in ps {
                u.params.set(&n, v.as_deref());
            }
            Uri::Sip(u)
        }),
        "\\+?[0-9][0-9.-]{0,12}".prop_map(|n| Uri::parse(&format!("tel:{n}")).unwrap()),
    ]
}

proptest! {
    #[test]
    fn uris_round_trip(u in uri()) {
        prop_assert_eq!(Uri::parse(&u.to_string()).unwrap(), u);
    }

    #[test]
    fn vias_round_trip(h in host(), port in prop::option::of(any::<u16>()), t in prop::sample::select(vec!["UDP", "TCP", "TLS", "WS"]), ps in params()) {
        let via = Via { transport: Transport::parse(t), sent_by: HostPort::new(h, port), params: ps };
        prop_assert_eq!(Via::parse(&via.to_string()).unwrap(), via);
    }

    #[test]
    fn name_addrs_round_trip(display in prop::option::of("[ -~]{0,12}"), u in uri(), ps in params()) {
        let na = NameAddr { display_name: display, uri: u, params: ps };
        prop_assert_eq!(NameAddr::parse(&na.to_string()).unwrap(), na);
    }

    #[test]
    fn cseqs_round_trip(seq in 0u32..(1 << 31), m in prop::sample::select(Method::KNOWN.to_vec())) {
        let c = CSeq::new(seq, m);
        prop_assert_eq!(CSeq::parse(&c.to_string()).unwrap(), c);
    }

    #[test]
    fn auth_values_round_trip(ps in prop::collection::vec((token(), "[ -~]{0,16}", any::<bool>()), 1..6)) {
        let mut a = AuthValue::new("Digest");
        for (n, v, quoted) in &ps {
            let quoted = *quoted || v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric());
            a.push(n, v, quoted);
        }
        prop_assert_eq!(AuthValue::parse(&a.to_string(), HeaderName::Authorization).unwrap(), a);
    }

    #[test]
    fn value_params_round_trip(v in "[a-z]{1,8}(/[a-z0-9.+-]{1,10})?", ps in params()) {
        let vp = ValueParams { value: v, params: ps };
        prop_assert_eq!(ValueParams::parse(&vp.to_string(), HeaderName::ContentType).unwrap(), vp);
    }
}
