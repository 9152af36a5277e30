//! Transfers through Callmesh, as users do them: alice calls bob, bob REFERs alice to
//! carol, alice ends up talking to carol. Blind, with SIPp at all three ends (bob's scenario
//! checks the NOTIFY progress: 100, 180, 200, then our BYE) through `callmesh all` and
//! through the multi-process cluster, and with SimplePeer phones whose audio is checked
//! after the transfer. Attended (bob consults carol first, through Callmesh too, then
//! REFERs alice with `Replaces`) with SimplePeer phones. Each in one process and in the
//! cluster.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Callmesh, scenario};
use session_core::peer::{AudioFrame, AutoAnswerHandler, Call, CallState, SimplePeer};
use testkit::ports::free_local_addr;
use testkit::sipp::Sipp;
use testkit::wait::until;

/// Extensions 1xxx go to bob.
fn route_to(bob: SocketAddr) -> String {
    format!("[[routes]]\nuser = '^1\\d{{3}}$'\ntarget = \"sip:${{user}}@{bob}\"\n")
}

/// Extensions 1xxx go to bob, 2xxx to carol.
fn routes_to(bob: SocketAddr, carol: SocketAddr) -> String {
    format!("{}[[routes]]\nuser = '^2\\d{{3}}$'\ntarget = \"sip:${{user}}@{carol}\"\n", route_to(bob))
}

fn transfer_with_sipp(cm: &Callmesh, bob: SocketAddr, carol: SocketAddr) {
    let carol_sipp = Sipp::builtin("uas").local(carol).calls(1).timeout(Duration::from_secs(30)).spawn().unwrap();
    let bob_sipp = Sipp::scenario_file(scenario("uas_refer.xml"))
        .local(bob)
        .calls(1)
        .key("carol", carol)
        .timeout(Duration::from_secs(30))
        .spawn()
        .unwrap();
    // Alice talks for 3 s: the transfer happens meanwhile; her BYE then reaches carol.
    Sipp::builtin("uac")
        .remote(cm.sip[0])
        .local(free_local_addr())
        .calls(1)
        .dial("1000")
        .hold(Duration::from_secs(3))
        .timeout(Duration::from_secs(30))
        .run()
        .unwrap()
        .assert_clean(1);
    bob_sipp.finish().unwrap().assert_clean(1);
    carol_sipp.finish().unwrap().assert_clean(1);
    cm.wait_idle();
}

#[test]
fn bob_transfers_alice_to_carol_in_one_process() {
    let (bob, carol) = (free_local_addr(), free_local_addr());
    let cm = Callmesh::all_in_one(&route_to(bob));
    transfer_with_sipp(&cm, bob, carol);
}

#[test]
fn bob_transfers_alice_to_carol_across_the_cluster() {
    let (bob, carol) = (free_local_addr(), free_local_addr());
    let cm = Callmesh::cluster(&route_to(bob));
    transfer_with_sipp(&cm, bob, carol);
}

/// Bob's phone transfers alice's call to carol's phone (blind): alice hears carol.
async fn phones_transfer_and_the_audio_follows(cluster: bool) {
    let (bob, carol) = phones().await;
    let config = route_to(bob.local_addr());
    let cm = if cluster { Callmesh::cluster(&config) } else { Callmesh::all_in_one(&config) };
    let alice = SimplePeer::new("alice").await.unwrap();
    let call = alice.call(&format!("sip:1000@{}", cm.sip[0])).await.expect("bob answers through callmesh");

    let at_bob = bob.active_calls().pop().expect("bob has the call");
    let status = at_bob.transfer(&format!("sip:carol@{}", carol.local_addr())).await.expect("the transfer succeeds");
    assert_eq!(status, 200);
    assert_eq!(at_bob.wait_ended(Duration::from_secs(10)).await.unwrap(), CallState::Ended, "bob is let go");
    assert_eq!(call.state(), CallState::Active, "alice's call goes on");

    // Alice's audio now reaches carol through the relay.
    let at_carol = carol.active_calls().pop().expect("carol has the call");
    alice_reaches_carol(&call, &at_carol).await;
    cm.wait_idle();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_transfer_blind_in_one_process() {
    phones_transfer_and_the_audio_follows(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_transfer_blind_across_the_cluster() {
    phones_transfer_and_the_audio_follows(true).await;
}

/// A second of alice's audio reaches carol through the relay; alice hangs up, so does carol.
async fn alice_reaches_carol(call: &Call, at_carol: &Call) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..50 {
        tick.tick().await;
        call.send_audio(AudioFrame::new(vec![1000; call.frame_samples()], call.sample_rate())).await.unwrap();
    }
    let received = at_carol.statistics().packets_received;
    assert!(received >= 25, "carol received {received} of alice's 50 RTP packets");
    call.hangup().await.unwrap();
    assert_eq!(at_carol.wait_ended(Duration::from_secs(10)).await.unwrap(), CallState::Ended);
}

/// Alice calls bob through Callmesh; bob puts her aside, consults carol through Callmesh,
/// then transfers alice to carol (REFER with `Replaces` naming his consultation call):
/// carol's consultation call is replaced by alice's, bob's two calls end, and alice's
/// audio reaches carol.
async fn attended_transfer(cm: &Callmesh, bob: &SimplePeer, carol: &SimplePeer) {
    const WAIT: Duration = Duration::from_secs(10);
    let alice = SimplePeer::new("alice").await.unwrap();
    let call = alice.call(&format!("sip:1000@{}", cm.sip[0])).await.expect("bob answers through callmesh");
    let at_bob = bob.active_calls().pop().expect("bob has alice's call");
    at_bob.hold().await.expect("bob holds alice");
    let consultation = bob.call(&format!("sip:2000@{}", cm.sip[0])).await.expect("carol answers bob through callmesh");
    let consulted = carol.active_calls().pop().expect("carol has bob's call");

    let status = at_bob.transfer_attended(&consultation).await.expect("the transfer succeeds");
    assert_eq!(status, 200);
    assert_eq!(at_bob.wait_ended(WAIT).await.unwrap(), CallState::Ended, "bob's call with alice is over");
    assert_eq!(consultation.wait_ended(WAIT).await.unwrap(), CallState::Ended, "and his call with carol");
    assert_eq!(consulted.wait_ended(WAIT).await.unwrap(), CallState::Ended, "carol's consultation call was replaced");
    // Bob had put alice on hold; carol talks: alice is re-INVITEd off hold.
    until("alice's call back from hold, now with carol", WAIT, || call.state() == CallState::Active).await;

    let at_carol = carol.active_calls().into_iter().find(|c| c.id() != consulted.id()).expect("carol has alice's call");
    at_carol.wait_established(WAIT).await.unwrap();
    alice_reaches_carol(&call, &at_carol).await;
    cm.wait_idle();
}

async fn phones() -> (SimplePeer, SimplePeer) {
    let answering = |name: &'static str| SimplePeer::builder(name).handler(std::sync::Arc::new(AutoAnswerHandler)).build();
    (answering("bob").await.unwrap(), answering("carol").await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attended_transfer_in_one_process() {
    let (bob, carol) = phones().await;
    let cm = Callmesh::all_in_one(&routes_to(bob.local_addr(), carol.local_addr()));
    attended_transfer(&cm, &bob, &carol).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attended_transfer_across_the_cluster() {
    let (bob, carol) = phones().await;
    let cm = Callmesh::cluster(&routes_to(bob.local_addr(), carol.local_addr()));
    attended_transfer(&cm, &bob, &carol).await;
}
