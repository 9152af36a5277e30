//! Digest authentication end to end at the message level: a server challenges, a client
//! answers, the server verifies — for each algorithm, with stale, forged and wrong answers.

use sip::auth::{Algorithm, Credentials, DigestServer, Verdict, answer_challenge};
use sip::message::{Builder, HeaderName, Message, Method};

const NOW: u64 = 1_800_000_000;

fn register(extra: Option<(HeaderName, String)>) -> Message {
    let mut b = Builder::request(&Method::Register, "sip:example.com")
        .header(HeaderName::Via, "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-reg")
        .header(HeaderName::From, "<sip:alice@example.com>;tag=1")
        .header(HeaderName::To, "<sip:alice@example.com>")
        .header(HeaderName::CallId, "reg-1")
        .header(HeaderName::CSeq, "1 REGISTER")
        .header(HeaderName::Contact, "<sip:alice@10.0.0.1:5060>");
    if let Some((name, value)) = extra {
        b = b.header(name, value);
    }
    b.build().unwrap()
}

fn challenge(server: &DigestServer, req: &Message, code: u16, stale: bool) -> Message {
    let header = if code == 401 { HeaderName::WwwAuthenticate } else { HeaderName::ProxyAuthenticate };
    let mut b = Builder::response_to(req, code, "", Some("srv"));
    for c in server.challenges(NOW, stale) {
        b = b.header(header, c);
    }
    b.build().unwrap()
}

fn password_of(user: &str) -> Option<String> {
    (user == "alice").then(|| "wonderland".to_owned())
}

fn answer(server: &DigestServer, code: u16, password: &str) -> Message {
    let first = register(None);
    let resp = challenge(server, &first, code, false);
    let (header, value) =
        answer_challenge(&resp, &Credentials::new("alice", password), &Method::Register, "sip:example.com", 1).unwrap();
    register(Some((header, value.to_string())))
}

#[test]
fn a_challenged_client_authenticates_with_the_strongest_algorithm() {
    let server = DigestServer::new("example.com", [7; 32]);
    let req = answer(&server, 401, "wonderland");
    assert!(req.header(HeaderName::Authorization).unwrap().contains("algorithm=SHA-256"));
    assert_eq!(
        server.verify(&req, HeaderName::Authorization, password_of, NOW + 10),
        Verdict::Authenticated { username: "alice".into() }
    );
}

#[test]
fn md5_only_servers_and_proxy_challenges_work() {
    let server = DigestServer::new("example.com", [1; 32]).with_algorithms(vec![Algorithm::Md5]);
    let req = answer(&server, 407, "wonderland");
    assert!(req.header(HeaderName::ProxyAuthorization).unwrap().contains("algorithm=MD5"));
    assert!(matches!(server.verify(&req, HeaderName::ProxyAuthorization, password_of, NOW), Verdict::Authenticated { .. }));
    assert_eq!(server.verify(&req, HeaderName::Authorization, password_of, NOW), Verdict::Missing);
}

#[test]
fn wrong_password_unknown_user_and_missing_credentials() {
    let server = DigestServer::new("example.com", [7; 32]);
    assert_eq!(
        server.verify(&answer(&server, 401, "guess"), HeaderName::Authorization, password_of, NOW),
        Verdict::Rejected("wrong credentials")
    );
    assert_eq!(
        server.verify(&answer(&server, 401, "wonderland"), HeaderName::Authorization, |_| None, NOW),
        Verdict::Rejected("unknown user")
    );
    assert_eq!(server.verify(&register(None), HeaderName::Authorization, password_of, NOW), Verdict::Missing);
}

#[test]
fn expired_nonce_is_stale_and_a_foreign_nonce_is_rejected() {
    let server = DigestServer::new("example.com", [7; 32]).with_nonce_ttl(60);
    let req = answer(&server, 401, "wonderland");
    assert_eq!(server.verify(&req, HeaderName::Authorization, password_of, NOW + 61), Verdict::Stale);
    let other = DigestServer::new("example.com", [8; 32]);
    assert_eq!(
        other.verify(&req, HeaderName::Authorization, password_of, NOW),
        Verdict::Rejected("nonce not issued by this server")
    );
    let stale_challenge = challenge(&server, &register(None), 401, true);
    assert!(stale_challenge.header(HeaderName::WwwAuthenticate).unwrap().contains("stale=true"));
}

#[test]
fn credentials_for_another_uri_are_malformed() {
    let server = DigestServer::new("example.com", [7; 32]);
    let resp = challenge(&server, &register(None), 401, false);
    let (h, v) =
        answer_challenge(&resp, &Credentials::new("alice", "wonderland"), &Method::Register, "sip:other.com", 1).unwrap();
    assert_eq!(
        server.verify(&register(Some((h, v.to_string()))), HeaderName::Authorization, password_of, NOW),
        Verdict::Malformed("digest uri does not match the Request-URI")
    );
}
