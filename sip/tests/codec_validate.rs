//! Server-side validation (RFC 3261 §8.2, §16.3): every refusal has its precise status, a
//! reason phrase naming the problem, and the extra header the status needs.

use bytes::Bytes;
use sip::message::validate::{ServerProfile, validate_request, validate_response};
use sip::message::{HeaderName, Message, Method};

const GOOD: &[(&str, &str)] = &[
    ("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1"),
    ("From", "<sip:alice@example.com>;tag=1"),
    ("To", "<sip:bob@example.com>"),
    ("Call-ID", "call-1"),
    ("CSeq", "1 INVITE"),
    ("Max-Forwards", "70"),
];

/// An INVITE built from `GOOD` with `changes` applied: `(name, Some(v))` replaces or adds,
/// `(name, None)` removes.
fn request(start: &str, changes: &[(&str, Option<&str>)]) -> Message {
    let mut headers: Vec<(String, String)> = GOOD.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    for (name, value) in changes {
        headers.retain(|(n, _)| n != name);
        if let Some(v) = value {
            headers.push((name.to_string(), v.to_string()));
        }
    }
    let mut text = format!("{start}\r\n");
    for (n, v) in headers {
        text.push_str(&format!("{n}: {v}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    Message::parse_datagram(Bytes::from(text)).expect("structurally valid")
}

fn status_of(m: &Message) -> (u16, String) {
    match validate_request(m, &ServerProfile::default()) {
        Ok(()) => (0, String::new()),
        Err(r) => (r.status, r.reason),
    }
}

#[test]
fn a_good_request_passes() {
    assert_eq!(status_of(&request("INVITE sip:bob@example.com SIP/2.0", &[])).0, 0);
}

#[test]
fn missing_mandatory_headers_name_the_header() {
    for name in ["From", "To", "Call-ID", "CSeq", "Via"] {
        let m = request("INVITE sip:bob@example.com SIP/2.0", &[(name, None)]);
        assert_eq!(status_of(&m), (400, format!("Missing {name} header")));
    }
}

#[test]
fn malformed_and_duplicated_core_headers() {
    let cases = [
        ("CSeq", "abc INVITE", "Malformed CSeq header"),
        ("Call-ID", "has space", "Malformed Call-ID header"),
        ("Max-Forwards", "lots", "Malformed Max-Forwards header"),
        ("From", "<sip:a@b", "Malformed From header"),
        ("Via", "SIP/2.0/UDP", "Malformed Via header"),
    ];
    for (name, value, reason) in cases {
        let m = request("INVITE sip:bob@example.com SIP/2.0", &[(name, Some(value))]);
        assert_eq!(status_of(&m), (400, reason.to_string()), "{name}: {value}");
    }
    let text = "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\n\
Call-ID: c\r\nCSeq: 1 INVITE\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n";
    let m = Message::parse_datagram(Bytes::from(text)).unwrap();
    assert_eq!(status_of(&m), (400, "Duplicate CSeq header".into()));
}

#[test]
fn cseq_method_mismatch_is_400() {
    let m = request("INVITE sip:bob@example.com SIP/2.0", &[("CSeq", Some("1 BYE"))]);
    assert_eq!(status_of(&m), (400, "CSeq method does not match request method".into()));
}

#[test]
fn max_forwards_zero_is_483() {
    let m = request("INVITE sip:bob@example.com SIP/2.0", &[("Max-Forwards", Some("0"))]);
    assert_eq!(status_of(&m).0, 483);
}

#[test]
fn unknown_uri_scheme_is_416_and_bad_uri_400() {
    let m = request("INVITE mailto:bob@example.com SIP/2.0", &[]);
    assert_eq!(status_of(&m), (416, "Unsupported URI Scheme".into()));
    let lws_in_uri = "INVITE sip:bob@exa mple SIP/2.0\r\nContent-Length: 0\r\n\r\n";
    assert!(Message::parse_datagram(Bytes::from(lws_in_uri)).is_err());
    let m = request("INVITE <sip:bob@example.com> SIP/2.0", &[]);
    assert_eq!(status_of(&m), (400, "Malformed Request-URI".into()));
    let m = request("INVITE sip:@example.com SIP/2.0", &[]);
    assert_eq!(status_of(&m), (400, "Malformed Request-URI".into()));
}

#[test]
fn unsupported_require_is_420_with_unsupported() {
    let m = request("INVITE sip:bob@example.com SIP/2.0", &[("Require", Some("replaces, foo")), ("Proxy-Require", Some("bar"))]);
    let r = validate_request(&m, &ServerProfile::default()).unwrap_err();
    assert_eq!(r.status, 420);
    assert_eq!(r.header, Some((HeaderName::Unsupported, "foo, bar".into())));
}

#[test]
fn unknown_method_is_501_and_disallowed_405_with_allow() {
    let m = request("FOO sip:bob@example.com SIP/2.0", &[("CSeq", Some("1 FOO"))]);
    let r = validate_request(&m, &ServerProfile::default()).unwrap_err();
    assert_eq!((r.status, r.header.as_ref().map(|h| h.0)), (501, Some(HeaderName::Allow)));
    let profile = ServerProfile { allowed: vec![Method::Invite, Method::Ack, Method::Bye], ..Default::default() };
    let m = request("REGISTER sip:example.com SIP/2.0", &[("CSeq", Some("1 REGISTER"))]);
    let r = validate_request(&m, &profile).unwrap_err();
    assert_eq!(r.status, 405);
    assert_eq!(r.header, Some((HeaderName::Allow, "INVITE, ACK, BYE".into())));
}

#[test]
fn other_sip_versions_are_505() {
    let m = request("INVITE sip:bob@example.com SIP/7.0", &[]);
    assert_eq!(status_of(&m).0, 505);
}

#[test]
fn malformed_responses_are_refused() {
    let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\n\
Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    assert!(validate_response(&Message::parse_datagram(Bytes::from(ok)).unwrap()).is_ok());
    for broken in [
        ok.replace("CSeq: 1 INVITE", "CSeq: x"),
        ok.replace("Call-ID: c\r\n", ""),
        ok.replace("Via: SIP/2.0/UDP h", "Via: nonsense"),
    ] {
        let m = Message::parse_datagram(Bytes::from(broken)).unwrap();
        assert!(validate_response(&m).is_err());
    }
}
