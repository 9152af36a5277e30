//! Seed 003's extension point over real SIP: a peer built with its own
//! `SignalingInterceptor` decides by the called user — a custom action (an announcement as
//! early media, then the answer), a refusal, a redirect, the application's queue, or the
//! call taken — and a custom action nobody registered refuses the call.

use std::time::Duration;

use async_trait::async_trait;
use session_core::interceptor::{CallInfo, Decision, SignalingInterceptor};
use session_core::peer::{AudioFrame, CallState, PeerError, SimplePeer};
use session_core::policy::TimeoutAction;

const WAIT: Duration = Duration::from_secs(10);

/// Decides by the user part of the Request-URI.
struct ByUser;

#[async_trait]
impl SignalingInterceptor for ByUser {
    async fn on_incoming_call(&self, call: &CallInfo) -> Decision {
        match call.target_user.as_str() {
            "sales" => Decision::custom("announce"),
            "busy" => Decision::reject(486, "Busy Here"),
            "moved" => Decision::Route { targets: vec!["sip:elsewhere@192.0.2.9".into()] },
            "later" => Decision::Defer { timeout: None, on_timeout: TimeoutAction::Reject },
            "nobody" => Decision::custom("not-registered"),
            _ => Decision::Accept,
        }
    }
}

fn refused(r: Result<session_core::peer::Call, PeerError>) -> u16 {
    match r {
        Err(PeerError::CallFailed { status, .. }) => status,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_custom_interceptor_and_its_actions_decide_incoming_calls() {
    let bob = SimplePeer::builder("bob")
        .interceptor(ByUser)
        .custom_action("announce", |incoming| async move {
            // Half a second of announcement before the answer.
            let call = incoming.call().clone();
            call.send_early_media().await.expect("early media");
            let frame = AudioFrame::new(vec![2000; call.frame_samples()], call.sample_rate());
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for _ in 0..25 {
                tick.tick().await;
                call.send_audio(frame.clone()).await.unwrap();
            }
            incoming.accept().await.expect("answered after the announcement");
        })
        .build()
        .await
        .unwrap();
    let alice = SimplePeer::new("alice").await.unwrap();
    let at = |user: &str| format!("sip:{user}@{}", bob.local_addr());

    let sales = alice.call(&at("sales")).await.expect("the announce action answers");
    assert!(sales.statistics().packets_received >= 12, "the announcement was heard before the answer");
    sales.hangup().await.unwrap();

    assert_eq!(refused(alice.call(&at("busy")).await), 486);
    assert_eq!(refused(alice.call(&at("moved")).await), 302);
    assert_eq!(refused(alice.call(&at("nobody")).await), 500, "no such action");

    let later = tokio::spawn({
        let uri = at("later");
        async move { alice.call(&uri).await.map(|c| c.state()) }
    });
    let incoming = bob.next_incoming_within(WAIT).await.expect("deferred to the application");
    assert_eq!(incoming.info().target_user, "later");
    incoming.accept().await.unwrap();
    assert_eq!(later.await.unwrap().expect("answered by the application"), CallState::Active);
}
