//! Conferences through Callmesh, over real SIP and RTP: three phones (SimplePeer, one on
//! G.711 µ-law, one on A-law, one on Opus) dial the same `conference:${user}` target, each
//! plays its own tone, and each must hear the other two and not itself — in `callmesh all`
//! and across the cluster of processes on a real nats-server. Then they hang up, the room
//! closes and its ports are free again.

mod common;

use std::time::Duration;

use common::Callmesh;
use media::audio::tone;
use media::sdp::Codec;
use session_core::peer::{AudioFrame, Call, CallOptions, SimplePeer};

const WAIT: Duration = Duration::from_secs(10);
const ROUTE: &str = "[[routes]]\nuser = '^8'\ntarget = \"conference:${user}\"\n";
const FREQS: [f64; 3] = [440.0, 1000.0, 1800.0];

/// Plays `freq` into `call` for as long as it lasts.
fn play(call: Call, freq: f64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (rate, n) = (call.sample_rate(), call.frame_samples());
        let tone = tone::sine(freq, rate, rate as usize, 6000.0);
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        for chunk in tone.chunks(n).cycle() {
            ticks.tick().await;
            if call.send_audio(AudioFrame::new(chunk.to_vec(), rate)).await.is_err() {
                break;
            }
        }
    })
}

/// The next `seconds` of what `call` hears.
async fn hear(call: &Call, seconds: f64) -> Vec<i16> {
    let want = (f64::from(call.sample_rate()) * seconds) as usize;
    let mut heard = Vec::new();
    while heard.len() < want {
        let frame = tokio::time::timeout(WAIT, call.recv_audio()).await.expect("the room's audio keeps coming").unwrap();
        heard.extend_from_slice(&frame.samples);
    }
    heard
}

async fn three_in_a_room(cm: &Callmesh) {
    let target = format!("sip:800@{}", cm.sip[0]);
    let codecs = [Codec::pcmu(), Codec::pcma(), Codec::opus(111)];
    let mut calls = Vec::new();
    let mut peers = Vec::new();
    for (i, codec) in codecs.iter().enumerate() {
        let peer = SimplePeer::new(&format!("phone{i}")).await.unwrap();
        let options = CallOptions { codecs: Some(vec![codec.clone()]), ..Default::default() };
        let call = peer.call_with(&target, options).await.unwrap();
        call.wait_established(WAIT).await.unwrap();
        assert_eq!(call.negotiated_config().unwrap().codec.name, codec.name, "phone{i}'s codec");
        peers.push(peer);
        calls.push(call);
    }
    let players: Vec<_> = calls.iter().zip(FREQS).map(|(c, f)| play(c.clone(), f)).collect();
    for (i, call) in calls.iter().enumerate() {
        hear(call, 0.5).await;
        let heard = hear(call, 1.0).await;
        let rate = call.sample_rate();
        let own = tone::goertzel_power(&heard, FREQS[i], rate);
        for (j, f) in FREQS.iter().enumerate().filter(|(j, _)| *j != i) {
            let other = tone::goertzel_power(&heard, *f, rate);
            assert!(other > 30.0 * own.max(1.0), "phone{i} hears phone{j}'s {f} Hz ({other:.0}) above its own ({own:.0})");
        }
    }
    for call in &calls {
        call.hangup().await.unwrap();
    }
    for p in players {
        p.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_phones_of_three_codecs_confer_in_one_process() {
    let cm = tokio::task::spawn_blocking(|| Callmesh::all_in_one(ROUTE)).await.unwrap();
    let pairs = cm.metric("media_free_port_pairs");
    three_in_a_room(&cm).await;
    let cm = tokio::task::spawn_blocking(move || {
        cm.wait_metric("media_free_port_pairs", "every seat's ports back in the pool", |v| v == pairs);
        cm
    })
    .await
    .unwrap();
    assert_eq!(cm.metric("media_rooms_open"), 0, "the room closed with its last seat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_phones_confer_across_the_cluster() {
    let cm = tokio::task::spawn_blocking(|| Callmesh::cluster(ROUTE)).await.unwrap();
    three_in_a_room(&cm).await;
    tokio::task::spawn_blocking(move || cm.wait_idle()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_softphone_confers_with_two_sdk_phones() {
    use testkit::baresip::Baresip;
    let cm = tokio::task::spawn_blocking(|| Callmesh::all_in_one(ROUTE)).await.unwrap();
    let mut softphone = Baresip::start("baresip", 660).unwrap();
    softphone.command(&format!("/dial sip:800@{}", cm.sip[0])).unwrap();
    let mut softphone = tokio::task::spawn_blocking(move || {
        softphone.wait_for("Call established", WAIT).unwrap_or_else(|e| panic!("{e}\n{}", softphone.output()));
        softphone
    })
    .await
    .unwrap();
    let target = format!("sip:800@{}", cm.sip[0]);
    let mut calls = Vec::new();
    for (name, codec) in [("narrow", Codec::pcmu()), ("wide", Codec::opus(111))] {
        let peer = SimplePeer::new(name).await.unwrap();
        let call = peer.call_with(&target, CallOptions { codecs: Some(vec![codec]), ..Default::default() }).await.unwrap();
        call.wait_established(WAIT).await.unwrap();
        calls.push((peer, call));
    }
    let players: Vec<_> = calls.iter().zip([440.0, 1800.0]).map(|((_, c), f)| play(c.clone(), f)).collect();
    for (_, call) in &calls {
        hear(call, 0.5).await;
        let heard = hear(call, 1.0).await;
        let found = tone::dominant_tone(&heard, call.sample_rate(), &[660.0, 3000.0]).map(|(f, _)| f);
        assert_eq!(found, Some(660.0), "the SDK phones hear the softphone");
    }
    softphone.command("/hangup").unwrap();
    let softphone = tokio::task::spawn_blocking(move || {
        softphone.wait_for("terminated", WAIT).unwrap();
        softphone
    })
    .await
    .unwrap();
    let heard = session_core::peer::load_wav(softphone.heard().unwrap()).unwrap();
    let tail = &heard.samples[heard.samples.len().saturating_sub(8000)..];
    let power = |f| tone::goertzel_power(tail, f, heard.sample_rate);
    for f in [440.0, 1800.0] {
        assert!(power(f) > 30.0 * power(660.0).max(1.0), "the softphone hears {f} Hz, not its own 660 Hz");
    }
    for (_, call) in &calls {
        call.hangup().await.unwrap();
    }
    for p in players {
        p.await.unwrap();
    }
}
