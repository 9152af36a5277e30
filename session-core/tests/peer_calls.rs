//! SimplePeer end to end on loopback, over real SIP and RTP: the seeds' peer-audio criterion
//! (each side records the tone the other sent), hold and resume, DTMF both ways, statistics.

use std::time::Duration;

use media::audio::tone;
use session_core::peer::{
    AudioFrame, Call, CallState, DtmfPolicy, IncomingCallPolicy, PeerError, RecordingLayout, SimplePeer, SimplePeerBuilder,
};

const WAIT: Duration = Duration::from_secs(10);

/// Sends `frames` of a tone in real time, until the call ends.
async fn speak(call: &Call, hz: f64, frames: usize) {
    let rate = call.sample_rate();
    let n = call.frame_samples();
    let signal = tone::sine(hz, rate, n * frames, 8000.0);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for chunk in signal.chunks(n) {
        tick.tick().await;
        match call.send_audio(AudioFrame::new(chunk.to_vec(), rate)).await {
            Err(PeerError::CallEnded) => return,
            other => other.expect("audio sent"),
        }
    }
}

/// Channel `channel` of a two-channel WAV file.
fn channel(path: &std::path::Path, channel: usize) -> (Vec<i16>, u32) {
    let mut reader = hound::WavReader::open(path).expect("a valid WAV file");
    assert_eq!(reader.spec().channels, 2);
    let rate = reader.spec().sample_rate;
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    (samples.chunks(2).map(|s| s[channel]).collect(), rate)
}

#[tokio::test]
async fn alice_and_bob_hear_each_others_tone_in_their_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let alice = SimplePeer::new("alice").await.unwrap();
    let bob = SimplePeer::new("bob").await.unwrap();
    let bob_uri = bob.uri();
    let (alice_wav, bob_wav) = (dir.path().join("alice.wav"), dir.path().join("bob.wav"));
    let bob_task = {
        let bob_wav = bob_wav.clone();
        tokio::spawn(async move {
            let incoming = bob.next_incoming_within(WAIT).await.expect("bob receives the call");
            assert!(incoming.from().starts_with("sip:alice@"), "{}", incoming.from());
            let call = incoming.accept().await.unwrap();
            call.start_recording(&bob_wav, RecordingLayout::PerLeg { legs: 2 }).await.unwrap();
            speak(&call, 1000.0, 75).await;
            call.wait_ended(WAIT).await.expect("alice hangs up")
        })
    };
    let call = alice.call(&bob_uri).await.expect("bob answers");
    assert_eq!(call.state(), CallState::Active);
    call.start_recording(&alice_wav, RecordingLayout::PerLeg { legs: 2 }).await.unwrap();
    speak(&call, 440.0, 75).await;
    let stats = call.statistics();
    call.stop_recording().await.unwrap();
    call.hangup().await.unwrap();
    assert_eq!(bob_task.await.unwrap(), CallState::Ended);
    assert_eq!(call.state(), CallState::Ended);

    assert_eq!(stats.codec, "PCMU");
    assert!(stats.packets_sent >= 70 && stats.packets_received >= 60, "{stats:?}");
    assert!(stats.mos > 4.0, "a clean loopback call: {stats:?}");
    for (path, own, far) in [(&alice_wav, 440.0, 1000.0), (&bob_wav, 1000.0, 440.0)] {
        let (theirs, rate) = channel(path, 1);
        let (ours, _) = channel(path, 0);
        assert!(theirs.len() as u32 >= rate, "{} holds at least a second", path.display());
        let heard = tone::dominant_tone(&theirs, rate, &[440.0, 1000.0]).map(|(hz, _)| hz);
        let said = tone::dominant_tone(&ours, rate, &[440.0, 1000.0]).map(|(hz, _)| hz);
        assert_eq!(heard, Some(far), "{}: far-end channel", path.display());
        assert_eq!(said, Some(own), "{}: our channel", path.display());
    }
}

async fn connected(callee: SimplePeerBuilder) -> (SimplePeer, SimplePeer, Call, Call) {
    let alice = SimplePeer::new("alice").await.unwrap();
    let bob = callee.incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let out = alice.call(&bob.uri()).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let inc = loop {
        if let Some(c) = bob.active_calls().into_iter().find(|c| c.state().is_established()) {
            break c;
        }
        assert!(tokio::time::Instant::now() < deadline, "bob's side never became established");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    (alice, bob, out, inc)
}

async fn wait_state(call: &Call, want: CallState) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while call.state() != want {
        assert!(tokio::time::Instant::now() < deadline, "waited for {want:?}, call is {:?}", call.state());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn hold_and_resume_cross_with_reinvites() {
    let (_a, _b, out, inc) = connected(SimplePeer::builder("bob")).await;
    out.hold().await.expect("hold accepted (HoldPolicy::Accept)");
    assert_eq!(out.state(), CallState::OnHold);
    wait_state(&inc, CallState::RemoteHold).await;
    out.resume().await.unwrap();
    assert_eq!(out.state(), CallState::Active);
    wait_state(&inc, CallState::Active).await;
    inc.hangup().await.unwrap();
    assert_eq!(out.wait_ended(WAIT).await.unwrap(), CallState::Ended);
    assert!(out.end_reason().unwrap().contains("BYE"), "{:?}", out.end_reason());
}

#[tokio::test]
async fn dtmf_digits_arrive_once_each_in_order() {
    let (_a, _b, out, inc) = connected(SimplePeer::builder("bob").dtmf_policy(DtmfPolicy::ForwardImmediate)).await;
    out.send_dtmf_string("12*#9").await.unwrap();
    let mut got = String::new();
    for _ in 0..5 {
        got.push(tokio::time::timeout(WAIT, inc.recv_dtmf()).await.expect("a digit").unwrap());
    }
    assert_eq!(got, "12*#9");
    // The other way, into a buffer that is read without clearing.
    inc.set_policies(session_core::peer::CallPolicies {
        dtmf: Some(DtmfPolicy::Buffer { max_buffer_size: 3, clear_on_read: false }),
        ..Default::default()
    });
    out.set_policies(session_core::peer::CallPolicies {
        dtmf: Some(DtmfPolicy::Buffer { max_buffer_size: 3, clear_on_read: true }),
        ..Default::default()
    });
    inc.send_dtmf_string("4567").await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = String::new();
    while seen.len() < 3 {
        seen = format!("{seen}{}", out.dtmf_buffer());
        assert!(tokio::time::Instant::now() < deadline, "buffer holds {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen.ends_with("567") || seen == "456", "the buffer keeps the newest 3 digits: {seen}");
    out.hangup().await.unwrap();
}

#[tokio::test]
async fn an_opus_call_carries_a_tone_at_48_khz() {
    use session_core::peer::Codec;
    let alice = SimplePeer::builder("alice").codecs(vec![Codec::opus(111)]).build().await.unwrap();
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let call = alice.call(&bob.uri()).await.unwrap();
    assert_eq!((call.statistics().codec.as_str(), call.sample_rate()), ("opus", 48000));
    let at_bob = bob.active_calls().pop().unwrap();
    at_bob.wait_established(WAIT).await.unwrap();
    let listener = tokio::spawn(async move {
        let mut heard = Vec::new();
        while heard.len() < 48000 {
            heard.extend(at_bob.recv_audio().await.expect("frames while the call lasts").samples);
        }
        heard
    });
    speak(&call, 1000.0, 75).await;
    let heard = tokio::time::timeout(WAIT, listener).await.expect("a second of audio at bob").unwrap();
    let tone = tone::dominant_tone(&heard[9600..], 48000, &[440.0, 1000.0]).map(|(hz, _)| hz);
    assert_eq!(tone, Some(1000.0));
    call.hangup().await.unwrap();
}

#[tokio::test]
async fn early_media_reaches_the_caller_before_the_answer() {
    let alice = SimplePeer::new("alice").await.unwrap();
    let bob = SimplePeer::new("bob").await.unwrap();
    let bob_uri = bob.uri();
    let placing = tokio::spawn(async move {
        let call = alice.call(&bob_uri).await;
        (alice, call)
    });
    let incoming = bob.next_incoming_within(WAIT).await.expect("bob receives the call");
    let at_bob = incoming.call().clone();
    at_bob.send_early_media().await.expect("183 with our answer");
    // A second of announcement before bob decides: alice's call rings and hears it.
    speak(&at_bob, 1000.0, 50).await;
    assert_eq!(at_bob.state(), CallState::Incoming, "not answered yet");
    incoming.accept().await.expect("then bob answers");
    let (_alice, call) = placing.await.unwrap();
    let call = call.expect("alice's call is answered");
    let heard = call.statistics().packets_received;
    assert!(heard >= 25, "alice received {heard} of the 50 early-media packets before the answer");
    call.hangup().await.unwrap();
    assert!(at_bob.send_early_media().await.is_err(), "only before the answer");
}

#[tokio::test]
async fn each_side_reads_what_offer_and_answer_agreed() {
    use media::sdp::Direction;
    let (_alice, _bob, call, at_bob) = connected(SimplePeer::builder("bob")).await;
    let (ours, theirs) = (call.negotiated_config().expect("answered"), at_bob.negotiated_config().expect("answered"));
    assert_eq!((ours.codec.name.as_str(), ours.sample_rate, ours.ptime_ms), ("PCMU", 8000, 20));
    assert_eq!(ours.remote_rtp, Some(theirs.local_rtp), "alice sends where bob receives");
    assert_eq!(theirs.remote_rtp, Some(ours.local_rtp), "and the other way");
    assert_eq!((ours.telephone_event, ours.direction), (Some(101), Direction::SendRecv));
    call.hold().await.unwrap();
    assert_eq!(call.negotiated_config().unwrap().direction, Direction::SendOnly, "alice holds: she only sends");
    wait_state(&at_bob, CallState::RemoteHold).await;
    assert_eq!(at_bob.negotiated_config().unwrap().direction, Direction::RecvOnly);
}

/// What `call` hears for `seconds`: its far end's PCM.
async fn listen(call: Call, seconds: f64) -> Vec<i16> {
    let want = (f64::from(call.sample_rate()) * seconds) as usize;
    let mut heard = Vec::new();
    while heard.len() < want {
        let frame = tokio::time::timeout(WAIT, call.recv_audio()).await.expect("audio keeps coming").unwrap();
        heard.extend_from_slice(&frame.samples);
    }
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conference_lets_each_member_hear_the_others() {
    let alice = SimplePeer::new("alice").await.unwrap();
    let callee = |name| SimplePeer::builder(name).incoming_call_policy(IncomingCallPolicy::AcceptAll).build();
    let (bob, carol) = (callee("bob").await.unwrap(), callee("carol").await.unwrap());
    let (to_bob, to_carol) = (alice.call(&bob.uri()).await.unwrap(), alice.call(&carol.uri()).await.unwrap());
    let (at_bob, at_carol) = (bob.active_calls().pop().unwrap(), carol.active_calls().pop().unwrap());
    at_bob.wait_established(WAIT).await.unwrap();
    at_carol.wait_established(WAIT).await.unwrap();

    let conference = alice.create_conference(&[to_bob.clone(), to_carol.clone()]).unwrap();
    assert_eq!(conference.members(), [to_bob.id().clone(), to_carol.id().clone()]);
    // Bob says 440 Hz, carol 880 Hz, for 1.5 s; each listens to the conference for 1 s.
    let talking = [
        tokio::spawn({
            let c = at_bob.clone();
            async move { speak(&c, 440.0, 75).await }
        }),
        tokio::spawn({
            let c = at_carol.clone();
            async move { speak(&c, 880.0, 75).await }
        }),
    ];
    let (bob_hears, carol_heard_bob) = tokio::join!(listen(at_bob.clone(), 1.0), listen(at_carol.clone(), 1.0));
    let tones = [440.0, 880.0];
    let last = |pcm: &[i16]| pcm[pcm.len() / 2..].to_vec();
    assert_eq!(tone::dominant_tone(&last(&bob_hears), 8000, &tones).map(|(f, _)| f), Some(880.0), "bob hears carol");
    assert_eq!(tone::dominant_tone(&last(&carol_heard_bob), 8000, &tones).map(|(f, _)| f), Some(440.0), "carol hears bob");
    for t in talking {
        t.await.unwrap();
    }

    // Muted, bob is no longer heard; his leaving leaves carol alone in it.
    conference.set_muted(&to_bob, true).unwrap();
    let talking = tokio::spawn({
        let c = at_bob.clone();
        async move { speak(&c, 440.0, 75).await }
    });
    // (Carol's first half second is what she had not read yet, from before the mute.)
    let carol_hears = listen(at_carol.clone(), 1.2).await;
    let window = 3200; // 0.4 s at 8 kHz, the end of each listening
    let before = tone::goertzel_power(&carol_heard_bob[carol_heard_bob.len() - window..], 440.0, 8000);
    let after = tone::goertzel_power(&carol_hears[carol_hears.len() - window..], 440.0, 8000);
    assert!(after < 0.01 * before, "a muted member is not heard: 440 Hz power {after} after, {before} before");
    talking.await.unwrap();
    conference.leave(&to_bob).unwrap();
    assert_eq!(conference.members(), [to_carol.id().clone()]);
}

#[tokio::test]
async fn the_call_history_keeps_each_call_with_its_metadata_and_filters() {
    use session_core::peer::{CallDirection, HistoryFilter};
    let (alice, bob, call, _at_bob) = connected(SimplePeer::builder("bob")).await;
    call.set_metadata("queue", "sales");
    call.hangup().await.unwrap();
    let refusing = SimplePeer::builder("busy").incoming_call_policy(IncomingCallPolicy::RejectAll).build().await.unwrap();
    assert!(alice.call(&refusing.uri()).await.is_err());

    let all = alice.call_history(&HistoryFilter::default());
    assert_eq!(all.len(), 2, "{all:#?}");
    let answered = alice.call_history(&HistoryFilter { answered: Some(true), ..Default::default() });
    assert_eq!(answered.len(), 1);
    assert_eq!(
        (answered[0].final_state, answered[0].metadata.get("queue").map(String::as_str)),
        (CallState::Ended, Some("sales"))
    );
    assert!(answered[0].remote_uri.starts_with("sip:bob@"));
    let missed = alice.call_history(&HistoryFilter { answered: Some(false), ..Default::default() });
    assert_eq!(missed[0].final_state, CallState::Failed(603));
    let sales = HistoryFilter { metadata: Some(("queue".into(), "sales".into())), ..Default::default() };
    assert_eq!(alice.call_history(&sales).len(), 1);
    assert!(alice.call_history(&HistoryFilter { direction: Some(CallDirection::Incoming), ..Default::default() }).is_empty());
    // Bob's side: one incoming call, ended by alice.
    testkit::wait::until("bob's record", WAIT, || !bob.call_history(&HistoryFilter::default()).is_empty()).await;
    let at_bob = bob.call_history(&HistoryFilter::default());
    assert_eq!((at_bob[0].direction, at_bob[0].reason.as_str()), (CallDirection::Incoming, "hung up by the far end (BYE)"));
}

#[tokio::test]
async fn per_call_options_choose_the_codec_each_way() {
    use session_core::peer::{CallOptions, Codec, NegotiationOptions};
    let alice = SimplePeer::new("alice").await.unwrap();
    let bob = SimplePeer::new("bob").await.unwrap();
    let bob_uri = bob.uri();
    // Alice offers A-law only on this call; bob answers with it.
    let pcma_only = CallOptions { codecs: Some(vec![Codec::pcma()]), ..Default::default() };
    let placing = tokio::spawn({
        let uri = bob_uri.clone();
        async move { (alice.call_with(&uri, pcma_only).await, alice) }
    });
    let incoming = bob.next_incoming_within(WAIT).await.unwrap();
    // Requiring Opus leaves nothing in common with an A-law offer: refused, still undecided.
    let opus = CallOptions {
        negotiation: Some(NegotiationOptions { required_codecs: vec!["opus".into()], ..Default::default() }),
        ..Default::default()
    };
    assert!(incoming.accept_with(opus).await.is_err());
    assert!(!incoming.is_decided());
    let at_bob = incoming.accept_with(CallOptions::default()).await.unwrap();
    let (call, alice) = placing.await.unwrap();
    let call = call.unwrap();
    assert_eq!(call.negotiated_config().unwrap().codec.name, "PCMA");
    assert_eq!(at_bob.negotiated_config().unwrap().codec.name, "PCMA");
    call.hangup().await.unwrap();

    // Alice offers everything; bob answers preferring wideband: Opus at 48 kHz.
    let placing = tokio::spawn(async move { alice.call(&bob_uri).await });
    let incoming = bob.next_incoming_within(WAIT).await.unwrap();
    let wide = CallOptions {
        negotiation: Some(NegotiationOptions {
            strategy: session_core::peer::NegotiationStrategy::PreferWideband,
            ..Default::default()
        }),
        ..Default::default()
    };
    let at_bob = incoming.accept_with(wide).await.unwrap();
    let call = placing.await.unwrap().unwrap();
    assert_eq!(
        (at_bob.negotiated_config().unwrap().codec.name.to_ascii_lowercase().as_str(), call.sample_rate()),
        ("opus", 48000)
    );
}
