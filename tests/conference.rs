//! Conferences through Callmesh, over real SIP and RTP: three phones (SimplePeer, one on
//! G.711 µ-law, one on A-law, one on Opus) dial the same `conference:${user}` target, each
//! plays its own tone, and each must hear the other two and not itself — in `callmesh all`
//! and across the cluster of processes on a real nats-server. Then they hang up, the room
//! closes and its ports are free again.

mod common;

use std::time::Duration;

use common::Callmesh;
use common::tones::{hear, play, tone_file};
use media::audio::tone;
use media::sdp::Codec;
use session_core::peer::{CallOptions, SimplePeer};

const WAIT: Duration = Duration::from_secs(10);
const ROUTE: &str = "[[routes]]\nuser = '^8'\ntarget = \"conference:${user}\"\n";
const FREQS: [f64; 3] = [440.0, 1000.0, 1800.0];

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

/// The tone among `candidates` that dominates `samples`.
fn dominant(samples: &[i16], rate: u32, candidates: &[f64]) -> Option<f64> {
    tone::dominant_tone(samples, rate, candidates).map(|(f, _)| f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_greets_plays_music_to_a_lone_caller_and_records_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let (prompts, recordings) = (dir.path().join("prompts"), dir.path().join("recordings"));
    std::fs::create_dir(&prompts).unwrap();
    tone_file(&prompts.join("welcome.wav"), 1500.0, 1.0);
    tone_file(&prompts.join("music.wav"), 700.0, 2.0);
    let config = format!(
        "[media]\nprompts_dir = \"{}\"\nrecordings_dir = \"{}\"\n[[routes]]\nuser = '^8'\ntarget = \"conference:${{user}}\"\n\
         greeting = \"welcome.wav\"\nmusic_on_hold = \"music.wav\"\nrecord = true\n",
        prompts.display(),
        recordings.display()
    );
    let cm = tokio::task::spawn_blocking(move || Callmesh::all_in_one(&config)).await.unwrap();
    let target = format!("sip:801@{}", cm.sip[0]);
    let alice = SimplePeer::new("alice").await.unwrap();
    let first = alice.call_with(&target, CallOptions { codecs: Some(vec![Codec::pcmu()]), ..Default::default() }).await.unwrap();
    first.wait_established(WAIT).await.unwrap();
    let alice_talks = play(first.clone(), 1000.0);
    let candidates = [440.0, 700.0, 1000.0, 1500.0];
    let greeting = hear(&first, 0.5).await;
    assert_eq!(dominant(&greeting[2000..], 8000, &candidates), Some(1500.0), "the greeting first");
    hear(&first, 0.7).await;
    let alone = hear(&first, 0.5).await;
    assert_eq!(dominant(&alone, 8000, &candidates), Some(700.0), "then music while alone");

    let bob = SimplePeer::new("bob").await.unwrap();
    let second =
        bob.call_with(&target, CallOptions { codecs: Some(vec![Codec::opus(111)]), ..Default::default() }).await.unwrap();
    second.wait_established(WAIT).await.unwrap();
    let bob_talks = play(second.clone(), 440.0);
    hear(&first, 1.2).await;
    let together = hear(&first, 0.5).await;
    assert_eq!(dominant(&together, 8000, &candidates), Some(440.0), "bob, and no more music, once he is there");
    second.hangup().await.unwrap();
    first.hangup().await.unwrap();
    alice_talks.await.unwrap();
    bob_talks.await.unwrap();

    // The recording: alice (who asked for it) on the left, the room on the right.
    let (sidecar, info) = common::recordings::sidecar(recordings, WAIT).await;
    assert_eq!(info["room"], "801");
    assert_eq!(info["parties"].as_array().map(Vec::len), Some(2), "{info}");
    let (rate, left, right) = common::recordings::stereo(&sidecar.with_extension("wav"));
    let half = rate as usize / 2;
    let windows: Vec<(Option<f64>, Option<f64>)> = left
        .chunks_exact(half)
        .zip(right.chunks_exact(half))
        .map(|(l, r)| (dominant(l, rate, &candidates), dominant(r, rate, &candidates)))
        .collect();
    assert!(windows.contains(&(Some(1000.0), Some(700.0))), "alice alone with the music: {windows:?}");
    assert!(windows.contains(&(Some(1000.0), Some(440.0))), "alice on the left, bob on the right: {windows:?}");
    assert!(!windows.iter().any(|w| w.0 == Some(1500.0)), "the greeting was alice's alone, not the room's: {windows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digits_a_sipp_caller_sends_as_tones_are_read_by_the_room() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("digits.pcap");
    let digits: Vec<i16> =
        "2468".chars().flat_map(|d| tone::dtmf(d, 8000, 800, 5000.0).unwrap().into_iter().chain([0i16; 800])).collect();
    testkit::pcap::write_pcmu(&capture, &digits).unwrap();
    let cm = tokio::task::spawn_blocking(|| Callmesh::all_in_one(ROUTE)).await.unwrap();
    let sip = cm.sip[0];
    let report = tokio::task::spawn_blocking(move || {
        testkit::sipp::Sipp::scenario_file(common::scenario("uac_dtmf_audio.xml"))
            .remote(sip)
            .local(testkit::ports::free_local_addr())
            .media()
            .key("tones", capture.display())
            .calls(1)
            .dial("803")
            .timeout(Duration::from_secs(30))
            .run()
    })
    .await
    .unwrap()
    .unwrap();
    report.assert_clean(1);
    let cm = tokio::task::spawn_blocking(move || {
        cm.wait_metric("media_dtmf_digits_total", "the four digits read from the caller's audio", |v| v >= 4);
        cm
    })
    .await
    .unwrap();
    assert_eq!(cm.metric("media_dtmf_digits_total"), 4, "each digit once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_six_mutes_and_unmutes_a_caller() {
    let cm = tokio::task::spawn_blocking(|| Callmesh::all_in_one(ROUTE)).await.unwrap();
    let target = format!("sip:804@{}", cm.sip[0]);
    let (alice, bob) = (SimplePeer::new("alice").await.unwrap(), SimplePeer::new("bob").await.unwrap());
    let talker = alice.call(&target).await.unwrap();
    let listener = bob.call(&target).await.unwrap();
    talker.wait_established(WAIT).await.unwrap();
    listener.wait_established(WAIT).await.unwrap();
    let talking = play(talker.clone(), 440.0);
    let loud = |heard: &[i16]| tone::goertzel_power(heard, 440.0, 8000) > 10_000.0;
    hear(&listener, 0.5).await;
    assert!(loud(&hear(&listener, 0.5).await), "bob hears alice");

    talker.send_dtmf_string("*6").await.unwrap();
    hear(&listener, 0.8).await;
    assert!(!loud(&hear(&listener, 0.5).await), "alice pressed *6: muted");
    talker.send_dtmf_string("*6").await.unwrap();
    hear(&listener, 0.8).await;
    assert!(loud(&hear(&listener, 0.5).await), "*6 again: heard again");
    talker.hangup().await.unwrap();
    listener.hangup().await.unwrap();
    talking.await.unwrap();
}
