//! Parser behaviour on valid but unusual messages: compact forms, folding, IPv6, comma-joined
//! Vias, bare LF, unknown methods, and messages adapted from RFC 4475 (torture tests).

use bytes::Bytes;
use sip::message::{HeaderName, Host, Message, Method, ParseError, Transport, Uri};

fn crlf(s: &str) -> Bytes {
    Bytes::from(s.replace("\r\n", "\n").replace('\n', "\r\n"))
}

fn parse(s: &str) -> Message {
    Message::parse_datagram(crlf(s)).unwrap_or_else(|e| panic!("{e}"))
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";

#[test]
fn typical_invite_exposes_core_fields() {
    let text = format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport\n\
Max-Forwards: 70\n\
To: Bob <sip:bob@biloxi.example.com>\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\n\
Call-ID: a84b4c76e66710\n\
CSeq: 314159 INVITE\n\
Contact: <sip:alice@pc33.atlanta.example.com>\n\
Content-Type: application/sdp\n\
Content-Length: {}\n\n{SDP}",
        SDP.len()
    );
    let m = parse(&text);
    assert!(m.is_request());
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(m.request_uri_str(), Some("sip:bob@biloxi.example.com"));
    assert_eq!(m.call_id(), Some("a84b4c76e66710"));
    assert_eq!(m.cseq(), Some((314159, &Method::Invite)));
    assert_eq!(m.branch(), Some("z9hG4bKnashds8"));
    assert_eq!(m.via_sent_by(), Some("pc33.atlanta.example.com:5060"));
    let via = m.top_via().unwrap();
    assert_eq!((via.transport.clone(), via.port, via.rport), (Transport::Udp, Some(5060), true));
    assert_eq!(m.from_tag(), Some("1928301774"));
    assert_eq!(m.to_tag(), None);
    assert_eq!(m.max_forwards(), Some(70));
    assert_eq!(m.body(), SDP.as_bytes());
    assert_eq!(m.content_type(), Some("application/sdp"));
    assert_eq!(m.from().unwrap().display_name.as_deref(), Some("Alice"));
}

#[test]
fn compact_forms_and_space_before_colon() {
    let m = parse(
        "OPTIONS sip:a@example.com SIP/2.0\n\
v: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\n\
f: <sip:b@example.com>;tag=x\n\
t: <sip:a@example.com>\n\
i: call-1\n\
Via  : SIP/2.0/UDP second.example.com;branch=z9hG4bK2\n\
m: <sip:b@h.example.com>\n\
CSeq: 1 OPTIONS\n\
l: 0\n\n",
    );
    assert_eq!(m.call_id(), Some("call-1"));
    assert_eq!(m.from_tag(), Some("x"));
    assert_eq!(m.branch(), Some("z9hG4bK1"));
    assert_eq!(m.vias().unwrap().len(), 2);
    assert_eq!(m.name_addrs(HeaderName::Contact).unwrap().len(), 1);
    assert_eq!(m.header(HeaderName::ContentLength), Some("0"));
}

#[test]
fn comma_joined_vias_and_multi_line_routes_are_all_kept() {
    let m = parse(
        "BYE sip:a@[2001:db8::1]:5070;transport=udp SIP/2.0\n\
Via: SIP/2.0/UDP [2001:db8::2]:5060;branch=z9hG4bKa, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb\n\
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\n\
Route: <sip:p3.example.com;lr>\n\
From: <sip:b@example.com>;tag=1\nTo: <sip:a@example.com>;tag=2\nCall-ID: c\nCSeq: 2 BYE\nContent-Length: 0\n\n",
    );
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[1].branch(), Some("z9hG4bKb"));
    assert_eq!(m.branch(), Some("z9hG4bKa"));
    assert_eq!(m.via_host(), Some("[2001:db8::2]"));
    assert_eq!(vias[0].sent_by.host, Host::Ipv6("2001:db8::2".parse().unwrap()));
    let routes = m.name_addrs(HeaderName::Route).unwrap();
    assert_eq!(
        routes.iter().map(|r| r.uri.to_string()).collect::<Vec<_>>(),
        ["sip:p1.example.com;lr", "sip:p2.example.com;lr", "sip:p3.example.com;lr"]
    );
    let Uri::Sip(uri) = m.request_uri().unwrap() else { panic!("sip uri") };
    assert_eq!(uri.host_port.host, Host::Ipv6("2001:db8::1".parse().unwrap()));
    assert_eq!(uri.params.value("transport"), Some("udp"));
}

#[test]
fn bare_lf_leading_crlf_and_trailing_octets() {
    let raw = "\r\n\r\nMESSAGE sip:a@example.com SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:b@h>;tag=1\n\
To: <sip:a@example.com>\nCall-ID: c\nCSeq: 1 MESSAGE\nContent-Length: 5\n\nhello-trailing-garbage";
    let m = Message::parse_datagram(Bytes::from(raw)).unwrap();
    assert_eq!(m.body(), b"hello");
    assert_eq!(m.method(), Some(&Method::Message));
}

#[test]
fn missing_content_length_on_udp_takes_the_rest() {
    let m = parse("MESSAGE sip:a@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nCall-ID: c\n\nbody");
    assert_eq!(m.body(), b"body");
    let stream = Message::parse_stream_message(crlf("MESSAGE sip:a@h SIP/2.0\nCall-ID: c\n\nbody"));
    assert!(matches!(stream, Err(ParseError::MissingContentLength)));
}

#[test]
fn truncated_messages_are_errors_that_keep_the_head() {
    let e =
        Message::parse_datagram(crlf("INVITE sip:a@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nContent-Length: 100\n\nshort"))
            .unwrap_err();
    let ParseError::Truncated { partial, .. } = e else { panic!("expected truncation, got {e}") };
    assert_eq!(partial.branch(), Some("z9hG4bK1"));
    let e = Message::parse_datagram(crlf("INVITE sip:a@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nCall-ID: x")).unwrap_err();
    assert!(matches!(e, ParseError::Truncated { .. }), "{e}");
}

#[test]
fn a_malformed_header_line_is_an_error_that_keeps_the_rest_of_the_head() {
    let e = Message::parse_datagram(crlf(
        "REGISTER sip:h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nu1[authentication username= password=x]\nCall-ID: c\n\n",
    ))
    .unwrap_err();
    let ParseError::MalformedHeaderLine { reason, partial } = e else { panic!("expected a bad header line, got {e}") };
    assert_eq!(reason, "no colon");
    assert_eq!((partial.branch(), partial.call_id()), (Some("z9hG4bK1"), Some("c")), "headers after the bad line are read");
}

#[test]
fn unknown_method_parses_as_extension() {
    let m = parse("FOO sip:a@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nCSeq: 1 FOO\n\n");
    assert_eq!(m.method(), Some(&Method::Extension("FOO".into())));
}

#[test]
fn rfc4475_short_tortuous_invite() {
    let body = "v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.4\r\nt=0 0\r\n\
m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n";
    let head = format!(
        "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\n\
TO :\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\n\
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\n  ;\n  tag = 98asjd8\n\
MaX-fOrWaRdS: 0068\n\
Call-ID: wsinv.ndaksdj@192.0.2.1\n\
Content-Length   : {}\n\
cseq: 0009\n  INVITE\n\
Via  : SIP  /   2.0\n /UDP\n    192.0.2.2;branch=390skdjuw\n\
s :\n\
NewFangledHeader:   newfangled value\n continued newfangled value\n\
UnknownHeaderWithUnusualValue: ;;,,;;,;\n\
Content-Type: application/sdp\n\
Route:\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\n\
v:  SIP  / 2.0  / TCP     spindle.example.com   ;\n  branch  =   z9hG4bK9ikj8  ,\n SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n z9hG4bK30239\n\
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\n      newvalue ;\n  secondparam ; q = 0.33\n\n",
        body.len()
    );
    let m = Message::parse_datagram(Bytes::from(format!("{}{body}", head.replace('\n', "\r\n")))).unwrap();
    assert_eq!(m.to_tag(), Some("1918181833n"));
    assert_eq!(m.from_tag(), Some("98asjd8"));
    assert_eq!(m.from().unwrap().display_name.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(m.max_forwards(), Some(68));
    assert_eq!(m.cseq(), Some((9, &Method::Invite)));
    assert_eq!(m.branch(), Some("390skdjuw"));
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(vias[1].transport, Transport::Tcp);
    assert_eq!(m.header(HeaderName::Subject), Some(""));
    assert_eq!(
        m.header_named("newfangledheader").map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")).as_deref(),
        Some("newfangled value continued newfangled value")
    );
    let contact = &m.name_addrs(HeaderName::Contact).unwrap()[0];
    assert_eq!(contact.display_name.as_deref(), Some("Quoted string \"\""));
    assert_eq!(contact.params.value("newparam"), Some("newvalue"));
    assert_eq!(contact.params.value("q"), Some("0.33"));
    assert_eq!(m.body(), body.as_bytes());
}

#[test]
fn rfc4475_wide_range_of_valid_characters() {
    let m = parse(
        "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\n\
Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\n\
To: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7F\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\n\
From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\\xD1\\x80\\xD0\\xB0\";tag=_token~1'+`*%!-.\n\
Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\n\
CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\n\
Max-Forwards: 255\n\
extensionHeader-!.%*+_`'~:\u{feff}\u{5927}\u{5b9c}\n\
Content-Length: 0\n\n",
    );
    assert_eq!(m.method().unwrap().as_str(), "!interesting-Method0123456789_*+`.%indeed'~");
    assert_eq!(m.cseq().unwrap().1, m.method().unwrap());
    let Uri::Sip(uri) = m.request_uri().unwrap() else { panic!() };
    assert_eq!(uri.user.as_deref(), Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"));
    assert_eq!(uri.password.as_deref(), Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"));
    assert_eq!(m.from_tag(), Some("_token~1'+`*%!-."));
    assert_eq!(m.from().unwrap().display_name.as_deref(), Some("token1~` token2'+_ token3*%!.-"));
}

#[test]
fn rfc4475_tel_and_escaped_uris() {
    let m = parse(
        "INVITE tel:+1-201-555-0123;phone-context=example.com SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n\
From: <sip:%61lice@example.com>;tag=1\nTo: <tel:+1-201-555-0123>\nCall-ID: t\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
    );
    assert_eq!(m.request_uri().unwrap().scheme(), "tel");
    assert_eq!(m.request_uri().unwrap().user(), Some("+1-201-555-0123"));
    assert_eq!(m.from().unwrap().uri.user(), Some("%61lice"));
}

#[test]
fn rfc2543_style_request_without_cookie() {
    let m = parse(
        "INVITE sip:UserB@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.15\nFrom: <sip:UserA@example.com>\n\
To: <sip:UserB@example.com>\nCall-ID: 242976@192.0.2.15\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
    );
    assert_eq!(m.branch(), None);
    assert_eq!(m.via_sent_by(), Some("192.0.2.15"));
}

#[test]
fn structural_errors() {
    for (bad, what) in [
        ("", "empty"),
        ("\r\n\r\n", "keep-alive only"),
        ("INVITE sip:a@h SIP/2.0", "no line end"),
        ("INVITE  sip:a@h SIP/2.0\n\n", "double space"),
        ("INVITE sip:a@h\n\n", "no version"),
        ("INV ITE sip:a@h SIP/2.0\n\n", "space in method"),
        ("INVITE sip:a@h SIP/2.0\nNo colon here\n\n", "header without colon"),
        ("INVITE sip:a@h SIP/2.0\n continuation\n\n", "fold before first header"),
        ("INVITE sip:a@h SIP/2.0\nBad Name: x\n\n", "space in header name"),
        ("SIP/2.0 2000 OK\n\n", "four-digit status"),
        ("SIP/2.0 4294967301 Bad\n\n", "huge status"),
        ("SIP/2.0 099 Low\n\n", "status below 100"),
        ("SIP/2.0 abc OK\n\n", "non-numeric status"),
        ("HTTP/1.1 200 OK\n\n", "not SIP"),
    ] {
        assert!(Message::parse_datagram(crlf(bad)).is_err(), "{what}: accepted");
    }
    let mut not_utf8 = b"OPTIONS sip:a@h SIP/2.0\r\nSubject: ".to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe, b'\r', b'\n', b'\r', b'\n']);
    assert!(matches!(Message::parse_datagram(Bytes::from(not_utf8)), Err(ParseError::NotUtf8)));
}

#[test]
fn binary_bodies_are_kept() {
    let mut raw = crlf("MESSAGE sip:a@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nContent-Length: 4\n\n").to_vec();
    raw.extend_from_slice(&[0, 0xff, 0x80, 1]);
    let m = Message::parse_datagram(Bytes::from(raw)).unwrap();
    assert_eq!(m.body(), &[0, 0xff, 0x80, 1]);
}

#[test]
fn a_via_can_be_stamped_on_a_built_request() {
    let req = sip::message::Builder::request(&Method::Bye, "sip:b@h")
        .header(HeaderName::From, "<sip:a@h>;tag=1")
        .header(HeaderName::To, "<sip:b@h>;tag=2")
        .header(HeaderName::CallId, "c")
        .header(HeaderName::CSeq, "2 BYE")
        .build()
        .unwrap();
    assert_eq!(req.top_via().map(|_| ()), None);
    let via = sip::message::Via::parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKxyz").unwrap();
    let stamped = req.with_top_via(&via).unwrap();
    assert_eq!(stamped.branch(), Some("z9hG4bKxyz"));
    assert_eq!(stamped.call_id(), Some("c"));
    let twice = stamped.with_top_via(&sip::message::Via::parse("SIP/2.0/TCP 10.0.0.2;branch=z9hG4bKtop").unwrap()).unwrap();
    assert_eq!((twice.branch(), twice.vias().unwrap().len()), (Some("z9hG4bKtop"), 2));
}
