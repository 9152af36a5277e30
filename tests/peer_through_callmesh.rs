//! A SimplePeer as a phone of the call center: it registers to `callmesh all` with digest
//! authentication, receives a call SIPp places to its user through Callmesh, talks with
//! another peer through the media relay, and unregisters.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Callmesh;
use session_core::peer::{AudioFrame, AutoAnswerHandler, CallState, PeerError, SimplePeer};
use testkit::ports::free_local_addr;
use testkit::sipp::Sipp;

const USERS: &str =
    "[[users]]\nusername = \"alice\"\npassword = \"wonderland\"\n[[routes]]\nuser = \".*\"\ntarget = \"registered\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_peer_takes_calls_through_callmesh() {
    let cm = Callmesh::all_in_one(USERS);
    let registrar = format!("sip:{}", cm.sip[0]);

    let intruder = SimplePeer::builder("alice").credentials("alice", "guess").build().await.unwrap();
    match intruder.register(&registrar).await {
        Err(PeerError::Registration(why)) => assert!(why.contains("403") || why.contains("refused"), "{why}"),
        other => panic!("a wrong password must not register: {:?}", other.map(|r| r.expires())),
    }

    let alice = SimplePeer::builder("alice")
        .credentials("alice", "wonderland")
        .handler(Arc::new(AutoAnswerHandler))
        .build()
        .await
        .unwrap();
    let registration = alice.register(&registrar).await.expect("the right password registers");
    assert!(registration.expires() > 0);

    let edge = cm.sip[0];
    let report = tokio::task::spawn_blocking(move || {
        Sipp::builtin("uac")
            .remote(edge)
            .local(free_local_addr())
            .calls(2)
            .rate(5.0)
            .dial("alice")
            .timeout(Duration::from_secs(30))
            .run()
            .unwrap()
    })
    .await
    .unwrap();
    report.assert_clean(2);

    // Another peer calls alice's number; audio crosses the media node both ways.
    let carol = SimplePeer::new("carol").await.unwrap();
    let call = carol.call(&format!("sip:alice@{edge}")).await.expect("callmesh finds alice");
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..50 {
        tick.tick().await;
        call.send_audio(AudioFrame::new(vec![1000; call.frame_samples()], call.sample_rate())).await.unwrap();
    }
    let at_alice = alice.active_calls().pop().expect("alice has the call");
    let received = at_alice.statistics().packets_received;
    assert!(received >= 25, "alice received {received} RTP packets of 50 through the relay");
    call.hangup().await.unwrap();
    assert_eq!(at_alice.wait_ended(Duration::from_secs(10)).await.unwrap(), CallState::Ended);

    registration.unregister().await.expect("unregistered");
    match carol.call(&format!("sip:alice@{edge}")).await {
        Err(PeerError::CallFailed { status: 480, .. }) => {}
        other => panic!("nobody is registered as alice any more: {other:?}"),
    }
}
