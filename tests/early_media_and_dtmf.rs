//! Early media and DTMF through Callmesh. With SIPp at both ends: the callee plays early
//! media in a reliable 183 (RFC 3262) that we acknowledge with PRACK and pass to the caller
//! as an ordinary 183 with its description at the relay; after the answer the caller's INFO
//! digit reaches the callee as INFO. With a SIPp caller that knows only INFO and a
//! SimplePeer callee that knows only RFC 4733: each hears the other's digit its own way.
//! In one process and across the cluster.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Callmesh, scenario};
use session_core::peer::{AutoAnswerHandler, SimplePeer};
use testkit::ports::free_local_addr;
use testkit::sipp::Sipp;

fn route_to(callee: SocketAddr) -> String {
    format!("[[routes]]\nuser = '^1\\d{{3}}$'\ntarget = \"sip:${{user}}@{callee}\"\n")
}

fn early_media_then_info(cm: &Callmesh, callee: SocketAddr) {
    let far = Sipp::scenario_file(scenario("uas_early_info.xml"))
        .local(callee)
        .calls(3)
        .timeout(Duration::from_secs(30))
        .spawn()
        .unwrap();
    Sipp::scenario_file(scenario("uac_early_info.xml"))
        .remote(cm.sip[0])
        .local(free_local_addr())
        .calls(3)
        .dial("1000")
        .timeout(Duration::from_secs(30))
        .run()
        .unwrap()
        .assert_clean(3);
    let far = far.finish().unwrap();
    far.assert_clean(3);
    assert_eq!(far.counter("FailedRegexpDoesntMatch"), 0, "the callee saw Supported: 100rel, our PRACK and the digit");
    cm.wait_idle();
}

#[test]
fn early_media_and_info_in_one_process() {
    let callee = free_local_addr();
    let cm = Callmesh::all_in_one(&route_to(callee));
    early_media_then_info(&cm, callee);
}

#[test]
fn early_media_and_info_across_the_cluster() {
    let callee = free_local_addr();
    let cm = Callmesh::cluster(&route_to(callee));
    early_media_then_info(&cm, callee);
}

/// The SIPp caller sends 5 in INFO; bob's phone hears it as RFC 4733 events and answers 7,
/// which reaches the caller in INFO.
async fn dtmf_mapped(cluster: bool) {
    const WAIT: Duration = Duration::from_secs(10);
    let bob = SimplePeer::builder("bob").handler(std::sync::Arc::new(AutoAnswerHandler)).build().await.unwrap();
    let config = route_to(bob.local_addr());
    let cm = if cluster { Callmesh::cluster(&config) } else { Callmesh::all_in_one(&config) };
    let sip = cm.sip[0];
    let caller = tokio::task::spawn_blocking(move || {
        Sipp::scenario_file(scenario("uac_info_dtmf.xml"))
            .remote(sip)
            .local(free_local_addr())
            .calls(1)
            .dial("1000")
            .timeout(Duration::from_secs(30))
            .run()
            .unwrap()
    });
    testkit::wait::until("bob's call", WAIT, || !bob.active_calls().is_empty()).await;
    let at_bob = bob.active_calls().pop().unwrap();
    let heard = tokio::time::timeout(WAIT, at_bob.recv_dtmf()).await.expect("the caller's INFO digit as events").unwrap();
    assert_eq!(heard, '5');
    at_bob.send_dtmf('7', Duration::from_millis(100)).await.unwrap();
    let report = caller.await.unwrap();
    report.assert_clean(1);
    assert_eq!(report.counter("FailedRegexpDoesntMatch"), 0, "no events answered to the caller; its INFO said 7");
    cm.wait_idle();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_between_info_and_rfc4733_in_one_process() {
    dtmf_mapped(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_between_info_and_rfc4733_across_the_cluster() {
    dtmf_mapped(true).await;
}
