//! Registration against a registrar the test controls (a UDP socket answering REGISTER with
//! a one-second lifetime, or falling silent): refreshes before expiry and on demand,
//! `Expires: 0` on unregister, the peer's table of registrations and its clean-up, and what
//! the network error policy does when the registrar stops answering (offline mode queues
//! calls until it answers again).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use session_core::peer::{Config, EventType, NetworkErrorPolicy, PeerEvent, RegistrationEvent, SimplePeer, TimerConfig};
use sip::message::{Builder, HeaderName, Message};
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Registrar {
    silent: AtomicBool,
    refreshes: AtomicU32,
    removals: AtomicU32,
}

/// Answers REGISTER with 200 and `expires=1` (or nothing while silent).
async fn registrar() -> (Arc<Registrar>, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("sip:{}", socket.local_addr().unwrap());
    let state = Arc::new(Registrar::default());
    let s = state.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(request) = Message::parse_datagram(Bytes::copy_from_slice(&buf[..n])) else { continue };
            if s.silent.load(Ordering::SeqCst) {
                continue;
            }
            let asked = request.header(HeaderName::Expires).and_then(|e| e.trim().parse::<u32>().ok()).unwrap_or(1);
            let counter = if asked == 0 { &s.removals } else { &s.refreshes };
            counter.fetch_add(1, Ordering::SeqCst);
            let contact = request.header(HeaderName::Contact).unwrap_or_default().to_owned();
            let granted = asked.min(1);
            let ok = Builder::response_to(&request, 200, "", Some("reg"))
                .header(HeaderName::Contact, format_args!("{contact};expires={granted}"));
            let _ = socket.send_to(ok.build().unwrap().as_bytes(), from).await;
        }
    });
    (state, uri)
}

async fn peer(policy: NetworkErrorPolicy) -> SimplePeer {
    let fast =
        Config { sip_timers: TimerConfig { t1: Duration::from_millis(10), ..TimerConfig::default() }, ..Config::default() };
    SimplePeer::builder("phone").config(fast).network_error_policy(policy).event_history_size(Some(500)).build().await.unwrap()
}

fn count(p: &SimplePeer, f: impl Fn(&RegistrationEvent) -> bool) -> usize {
    p.event_history().iter().filter(|(_, e)| matches!(e, PeerEvent::Registration(r) if f(r))).count()
}

async fn until(what: &str, ok: impl Fn() -> bool) {
    testkit::wait::until(what, WAIT, ok).await;
}

#[tokio::test]
async fn registrations_refresh_before_expiry_and_unregister_with_expires_zero() {
    let (reg, uri) = registrar().await;
    let phone = peer(NetworkErrorPolicy::ReturnError).await;
    let registration = phone.register(&uri).await.unwrap();
    assert_eq!(registration.expires(), 1);
    until("two refreshes of a one-second registration", || reg.refreshes.load(Ordering::SeqCst) >= 3).await;
    assert!(count(&phone, |r| matches!(r, RegistrationEvent::Refreshed { .. })) >= 2);
    registration.unregister().await.unwrap();
    assert_eq!(reg.removals.load(Ordering::SeqCst), 1);
    until("the Unregistered event", || count(&phone, |r| matches!(r, RegistrationEvent::Unregistered { .. })) == 1).await;
    assert!(phone.event_history().iter().all(|(_, e)| e.event_type() == EventType::Registration));
}

#[tokio::test]
async fn offline_mode_keeps_retrying_and_return_error_gives_up() {
    for policy in [NetworkErrorPolicy::EnterOfflineMode, NetworkErrorPolicy::RetryConnection { max_retries: 2, timeout_secs: 1 }]
    {
        let (reg, uri) = registrar().await;
        let phone = peer(policy).await;
        let _registration = phone.register(&uri).await.unwrap();
        reg.silent.store(true, Ordering::SeqCst);
        until("a failed refresh", || count(&phone, |r| matches!(r, RegistrationEvent::Failed { .. })) >= 1).await;
        reg.silent.store(false, Ordering::SeqCst);
        let before = count(&phone, |r| matches!(r, RegistrationEvent::Refreshed { .. }));
        until("the registration to come back", || count(&phone, |r| matches!(r, RegistrationEvent::Refreshed { .. })) > before)
            .await;
    }
    let (reg, uri) = registrar().await;
    let phone = peer(NetworkErrorPolicy::ReturnError).await;
    let _registration = phone.register(&uri).await.unwrap();
    reg.silent.store(true, Ordering::SeqCst);
    until("a failed refresh", || count(&phone, |r| matches!(r, RegistrationEvent::Failed { .. })) == 1).await;
    reg.silent.store(false, Ordering::SeqCst);
    let answered = reg.refreshes.load(Ordering::SeqCst);
    // Several refresh periods with the registrar back: ReturnError does not try again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(reg.refreshes.load(Ordering::SeqCst), answered);
}

#[tokio::test]
async fn registrations_are_listed_refreshed_on_demand_and_lapsed_ones_cleared() {
    let (reg, uri) = registrar().await;
    let phone = peer(NetworkErrorPolicy::ReturnError).await;
    let registration = phone.register(&uri).await.unwrap();
    let info = phone.registration(&uri).expect("listed");
    assert_eq!((info.expires, info.failing), (1, false));
    assert!(info.aor.starts_with("sip:phone@127.0.0.1"), "{}", info.aor);
    let listed: Vec<String> = phone.registrations().into_iter().map(|r| r.registrar).collect();
    assert_eq!(listed, vec![uri.clone()]);

    let before = reg.refreshes.load(Ordering::SeqCst);
    assert_eq!(registration.refresh().await.unwrap(), 1, "a REGISTER now, the lifetime granted");
    assert!(reg.refreshes.load(Ordering::SeqCst) > before);

    // The registrar falls silent: the refresh fails (ReturnError gives up), the binding lapses.
    reg.silent.store(true, Ordering::SeqCst);
    until("a failed refresh", || phone.registration(&uri).is_some_and(|r| r.failing)).await;
    until("the binding to lapse", || phone.registration(&uri).is_some_and(|r| r.is_expired(std::time::Instant::now()))).await;
    assert_eq!(phone.clear_expired_registrations(), 1);
    assert!(phone.registrations().is_empty());
}

#[tokio::test]
async fn offline_mode_queues_a_call_until_the_registrar_answers_again() {
    use session_core::peer::{CallState, IncomingCallPolicy};
    let (reg, uri) = registrar().await;
    let phone = Arc::new(peer(NetworkErrorPolicy::EnterOfflineMode).await);
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let _registration = phone.register(&uri).await.unwrap();
    reg.silent.store(true, Ordering::SeqCst);
    until("the phone to go offline", || phone.is_offline()).await;

    let placing = tokio::spawn({
        let (phone, bob) = (phone.clone(), bob.uri());
        async move { phone.call(&bob).await }
    });
    tokio::task::yield_now().await;
    assert!(phone.active_calls().is_empty() && !placing.is_finished(), "queued while offline");
    reg.silent.store(false, Ordering::SeqCst);
    let call = tokio::time::timeout(WAIT, placing).await.expect("placed once back").unwrap().expect("answered");
    assert_eq!(call.state(), CallState::Active);
    assert!(!phone.is_offline());
}
