//! Transcoding between relayed legs, end to end: a phone that speaks only G.711 calls one
//! that speaks only Opus (and the other way round) through Callmesh. The session offers the
//! callee the codecs the media node transcodes, answers the caller in its own codec, and
//! the media node transcodes: each phone hears the other's tone, and an RFC 4733 digit
//! crosses with the audio — in `callmesh all` and across the cluster on a real nats-server.

mod common;

use std::time::Duration;

use common::Callmesh;
use common::tones::{hear, play};
use media::audio::tone;
use media::sdp::Codec;
use session_core::peer::{IncomingCallPolicy, SimplePeer};

const WAIT: Duration = Duration::from_secs(10);
const FREQS: [f64; 2] = [440.0, 1000.0];

/// A phone of `caller` codec calls one of `callee` codec through a fresh Callmesh.
async fn tones_cross(caller_codec: Codec, callee_codec: Codec, cluster: bool) {
    let callee = SimplePeer::builder("callee")
        .codecs(vec![callee_codec.clone()])
        .incoming_call_policy(IncomingCallPolicy::AcceptAll)
        .build()
        .await
        .unwrap();
    let config = format!("[[routes]]\nuser = '^1'\ntarget = \"{}\"\n", callee.uri());
    let cm =
        tokio::task::spawn_blocking(move || if cluster { Callmesh::cluster(&config) } else { Callmesh::all_in_one(&config) })
            .await
            .unwrap();
    let caller = SimplePeer::builder("caller").codecs(vec![caller_codec.clone()]).build().await.unwrap();
    let call = caller.call(&format!("sip:1000@{}", cm.sip[0])).await.unwrap();
    call.wait_established(WAIT).await.unwrap();
    let answered = callee.active_calls().pop().unwrap();
    assert_eq!(call.negotiated_config().unwrap().codec.name, caller_codec.name, "the caller is answered in its codec");
    assert_eq!(answered.negotiated_config().unwrap().codec.name, callee_codec.name, "the callee is offered its codec");

    let calls = [call.clone(), answered.clone()];
    let players: Vec<_> = calls.iter().zip(FREQS).map(|(c, f)| play(c.clone(), f)).collect();
    for (i, c) in calls.iter().enumerate() {
        hear(c, 0.5).await;
        let heard = hear(c, 1.0).await;
        let rate = c.sample_rate();
        let (own, other) = (FREQS[i], FREQS[1 - i]);
        let found = tone::dominant_tone(&heard, rate, &FREQS).map(|(f, _)| f);
        assert_eq!(found, Some(other), "phone {i} hears the other's {other} Hz, not its own {own} Hz");
        let power = tone::goertzel_power(&heard, other, rate);
        assert!(power > 1e6, "phone {i} hears the tone loud enough ({power:.0})");
    }
    call.send_dtmf('5', Duration::from_millis(120)).await.unwrap();
    let digit = tokio::time::timeout(WAIT, answered.recv_dtmf()).await.expect("the caller's digit as events").unwrap();
    assert_eq!(digit, '5');

    call.hangup().await.unwrap();
    for p in players {
        p.await.unwrap();
    }
    tokio::task::spawn_blocking(move || cm.wait_idle()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_g711_phone_and_an_opus_phone_hear_each_other_in_one_process() {
    tones_cross(Codec::pcmu(), Codec::opus(111), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opus_phone_and_an_a_law_phone_hear_each_other_across_the_cluster() {
    tones_cross(Codec::opus(111), Codec::pcma(), true).await;
}
