//! Recording a relayed call, end to end: a route with `record = true`, two SimplePeer phones
//! on loopback each playing its own tone through `callmesh all`; once the call is over the
//! recording directory holds `<session>.wav` — stereo, the caller's tone on the left and the
//! callee's on the right, as long as the call — and its JSON sidecar.

mod common;

use std::time::Duration;

use common::Callmesh;
use common::tones::play;
use session_core::peer::{IncomingCallPolicy, SimplePeer};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_route_writes_each_side_on_its_channel() {
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("recordings");
    let callee = SimplePeer::builder("callee").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let config = format!(
        "[media]\nrecordings_dir = \"{}\"\n[[routes]]\nuser = '^1'\ntarget = \"{}\"\nrecord = true\n",
        recordings.display(),
        callee.uri()
    );
    let cm = tokio::task::spawn_blocking(move || Callmesh::all_in_one(&config)).await.unwrap();
    let caller = SimplePeer::new("caller").await.unwrap();
    let call = caller.call(&format!("sip:1000@{}", cm.sip[0])).await.unwrap();
    call.wait_established(WAIT).await.unwrap();
    let answered = callee.active_calls().pop().unwrap();
    let talking = [play(call.clone(), 440.0), play(answered.clone(), 1000.0)];
    // Two seconds of conversation, heard by the caller (the wait is for audio, not a sleep).
    let mut heard = 0;
    while heard < 2 * call.sample_rate() as usize {
        heard += tokio::time::timeout(WAIT, call.recv_audio()).await.expect("the callee's audio").unwrap().samples.len();
    }
    call.hangup().await.unwrap();
    for t in talking {
        t.await.unwrap();
    }

    let (sidecar, info) = common::recordings::sidecar(recordings, WAIT).await;
    let parties: Vec<_> =
        info["parties"].as_array().unwrap().iter().map(|p| (p["session"].as_str(), p["codec"].as_str())).collect();
    assert!(parties.contains(&(Some("caller"), Some("PCMU"))) && parties.contains(&(Some("callee"), Some("PCMU"))), "{info}");
    let (left, right, length) = common::recordings::middle_tones(&sidecar.with_extension("wav"), &[440.0, 1000.0]);
    assert!(length >= Duration::from_secs(2), "the whole call: {length:?}");
    assert_eq!((left, right), (Some(440.0), Some(1000.0)), "the caller left, the callee right");
}
