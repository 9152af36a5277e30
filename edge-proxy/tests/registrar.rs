//! The registrar: challenge, digest answer, bindings stored with their expiry, refusals.

use std::collections::HashMap;
use std::sync::Arc;

use cluster::locations;
use cluster::registry::{MemoryRegistry, Registry};
use edge_proxy::registrar::{Registrar, RegistrarConfig};
use sip::auth::{Credentials, answer_challenge};
use sip::message::{Builder, HeaderName, Message, Method};
use sip::transaction::Peer;

fn registrar(registry: Arc<MemoryRegistry>) -> Registrar {
    let config =
        RegistrarConfig { users: HashMap::from([("alice".to_owned(), "wonderland".to_owned())]), ..RegistrarConfig::default() };
    Registrar::new(config, registry, "edge-1")
}

fn register(user: &str, contact: Option<&str>, expires: Option<u32>, auth: Option<(HeaderName, String)>) -> Message {
    let mut b = Builder::request(&Method::Register, "sip:127.0.0.1")
        .header(HeaderName::Via, "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-r1")
        .header(HeaderName::From, format!("<sip:{user}@127.0.0.1>;tag=1"))
        .header(HeaderName::To, format!("<sip:{user}@127.0.0.1>"))
        .header(HeaderName::CallId, "reg-call")
        .header(HeaderName::CSeq, "1 REGISTER");
    if let Some(c) = contact {
        b = b.header(HeaderName::Contact, c);
    }
    if let Some(e) = expires {
        b = b.header(HeaderName::Expires, e);
    }
    if let Some((h, v)) = auth {
        b = b.header(h, v);
    }
    b.build().unwrap()
}

fn source() -> Peer {
    Peer::udp("127.0.0.1:5099".parse().unwrap())
}

async fn authorized(r: &Registrar, user: &str, password: &str, contact: Option<&str>, expires: Option<u32>) -> Message {
    let challenge = r.handle(&register(user, contact, expires, None), source()).await.unwrap();
    assert_eq!(challenge.status(), Some(401));
    let (h, v) = answer_challenge(&challenge, &Credentials::new(user, password), &Method::Register, "sip:127.0.0.1", 1).unwrap();
    r.handle(&register(user, contact, expires, Some((h, v.to_string()))), source()).await.unwrap()
}

#[tokio::test]
async fn challenged_registration_stores_a_binding() {
    let registry = Arc::new(MemoryRegistry::default());
    let r = registrar(registry.clone());
    let ok = authorized(&r, "alice", "wonderland", Some("<sip:alice@127.0.0.1:5099>"), Some(600)).await;
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.header(HeaderName::Contact), Some("<sip:alice@127.0.0.1:5099>;expires=600"));
    let bindings = locations::lookup(registry.as_ref() as &dyn Registry, "alice", cluster::contracts::unix_ms()).await.unwrap();
    assert_eq!(bindings.len(), 1);
    assert_eq!((bindings[0].contact.as_str(), bindings[0].edge_id.as_str()), ("sip:alice@127.0.0.1:5099", "edge-1"));
    assert_eq!(bindings[0].source.as_ref().unwrap().addr, "127.0.0.1:5099");
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_stores_nothing() {
    let registry = Arc::new(MemoryRegistry::default());
    let r = registrar(registry.clone());
    let refused = authorized(&r, "alice", "guess", Some("<sip:alice@127.0.0.1:5099>"), None).await;
    assert_eq!(refused.status(), Some(403));
    assert!(locations::lookup(registry.as_ref() as &dyn Registry, "alice", 0).await.unwrap().is_empty());
    let stranger = authorized(&r, "mallory", "x", Some("<sip:mallory@127.0.0.1:5099>"), None).await;
    assert_eq!(stranger.status(), Some(403));
}

#[tokio::test]
async fn expiry_limits_removal_and_queries() {
    let registry = Arc::new(MemoryRegistry::default());
    let r = registrar(registry.clone());
    let brief = authorized(&r, "alice", "wonderland", Some("<sip:alice@127.0.0.1:5099>"), Some(10)).await;
    assert_eq!((brief.status(), brief.header(HeaderName::MinExpires)), (Some(423), Some("60")));
    let capped = authorized(&r, "alice", "wonderland", Some("<sip:alice@127.0.0.1:5099>;expires=99999"), None).await;
    assert_eq!(capped.header(HeaderName::Contact), Some("<sip:alice@127.0.0.1:5099>;expires=3600"));
    let query = authorized(&r, "alice", "wonderland", None, None).await;
    assert_eq!(query.header_values(HeaderName::Contact).count(), 1);
    let removed = authorized(&r, "alice", "wonderland", Some("*"), Some(0)).await;
    assert_eq!((removed.status(), removed.header(HeaderName::Contact)), (Some(200), None));
    let bad_star = authorized(&r, "alice", "wonderland", Some("*"), Some(60)).await;
    assert_eq!(bad_star.status(), Some(400));
}
