//! SimplePeer against SIPp, an independent SIP implementation: we call SIPp's built-in UAS,
//! and SIPp's built-in UAC calls a peer that answers everything.

use std::sync::Arc;
use std::time::Duration;

use session_core::peer::{AutoAnswerHandler, CallState, EventType, SimplePeer};
use testkit::ports::free_local_addr;
use testkit::sipp::Sipp;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_calls_sipp_uas_and_hangs_up() {
    let addr = free_local_addr();
    let uas = tokio::task::spawn_blocking(move || Sipp::builtin("uas").local(addr).calls(1).timeout(WAIT).spawn().unwrap())
        .await
        .unwrap();
    let alice = SimplePeer::new("alice").await.unwrap();
    let call = alice.call(&format!("sip:service@{addr}")).await.expect("SIPp answers");
    assert_eq!(call.state(), CallState::Active);
    assert_eq!(call.statistics().codec, "PCMU", "SIPp's uas answers with G.711 µ-law");
    call.hangup().await.unwrap();
    assert_eq!(call.wait_ended(WAIT).await.unwrap(), CallState::Ended);
    let report = tokio::task::spawn_blocking(move || uas.finish().unwrap()).await.unwrap();
    report.assert_clean(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_calls_an_auto_answering_peer() {
    let bob =
        SimplePeer::builder("bob").handler(Arc::new(AutoAnswerHandler)).event_history_size(Some(100)).build().await.unwrap();
    let target = bob.local_addr();
    let report = tokio::task::spawn_blocking(move || {
        Sipp::builtin("uac").remote(target).local(free_local_addr()).calls(3).rate(3.0).timeout(WAIT).run().unwrap()
    })
    .await
    .unwrap();
    report.assert_clean(3);
    // SIPp exits on the 200 to its last BYE, which bob sends just before ending the call.
    let deadline = tokio::time::Instant::now() + WAIT;
    let ended = || bob.event_history().iter().filter(|(_, e)| e.event_type() == EventType::CallEnded).count();
    while ended() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "bob saw {} of the 3 calls end", ended());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(bob.active_calls().is_empty());
}
