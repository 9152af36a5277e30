//! The decision and policy variants the other tests leave out, each over real SIP between
//! peers on loopback: a handler's `Redirect`, `Defer` and `DeferFor` (with `Accept` and
//! `SendToVoicemail` when time runs out), `CallFailurePolicy::LogAndContinue`, DTMF
//! commands that hang up, run a custom command or transfer the caller, the built-in
//! `RoutingHandler` and `QueueHandler` composed by a `CompositeHandler`, hold media from a
//! file (`MusicFile`, `Message`) and `Silence`, `RetryConnection` on an unanswered re-INVITE, and DTMF
//! policies `Ignore` and `LogOnly` against `ForwardImmediate`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use session_core::peer::{
    AutoAnswerHandler, Call, CallDecision, CallFailurePolicy, CallHandler, CallState, Config, DtmfAction, DtmfCommand,
    DtmfPolicy, IncomingCall, IncomingCallPolicy, PeerError, SimplePeer, TimeoutAction, TransferPolicy,
};
use testkit::wait::until;

const WAIT: Duration = Duration::from_secs(10);

fn status_of(result: Result<Call, PeerError>) -> u16 {
    match result {
        Err(PeerError::CallFailed { status, .. }) => status,
        other => panic!("expected a failed call, got {other:?}"),
    }
}

/// Decides by the called user; keeps the calls it defers, and the custom commands it hears.
#[derive(Default)]
struct Desk {
    kept: Mutex<Vec<IncomingCall>>,
    commands: Mutex<Vec<String>>,
}

#[async_trait]
impl CallHandler for Desk {
    async fn on_incoming_call(&self, call: &IncomingCall) -> CallDecision {
        let short = Duration::from_millis(300);
        match call.info().target_user.as_str() {
            "redirect" => CallDecision::Redirect("sip:elsewhere@192.0.2.9".into()),
            "later" => {
                self.kept.lock().unwrap().push(call.clone());
                CallDecision::Defer
            }
            "accept-soon" => CallDecision::DeferFor(short, TimeoutAction::Accept),
            "voicemail" => CallDecision::DeferFor(short, TimeoutAction::SendToVoicemail),
            _ => CallDecision::Accept,
        }
    }

    async fn on_dtmf_command(&self, _call: &Call, name: &str) {
        self.commands.lock().unwrap().push(name.to_owned());
    }
}

#[tokio::test]
async fn a_handler_redirects_defers_and_lets_time_decide() {
    let desk = Arc::new(Desk::default());
    let config = Config { voicemail_uri: Some("sip:voicemail@192.0.2.10".into()), ..Config::default() };
    let bob = SimplePeer::builder("bob").config(config).handler(desk.clone()).build().await.unwrap();
    let alice = SimplePeer::new("alice").await.unwrap();
    let at = |user: &str| format!("sip:{user}@{}", bob.local_addr());

    assert_eq!(status_of(alice.call(&at("redirect")).await), 302);
    assert_eq!(status_of(alice.call(&at("voicemail")).await), 302, "nobody decided: to voicemail");
    let soon = alice.call(&at("accept-soon")).await.expect("nobody decided: accepted");
    assert_eq!(soon.state(), CallState::Active);
    soon.hangup().await.unwrap();

    let later = tokio::spawn({
        let uri = at("later");
        async move { alice.call(&uri).await.map(|c| c.state()) }
    });
    until("the handler to keep the call", WAIT, || !desk.kept.lock().unwrap().is_empty()).await;
    let kept = desk.kept.lock().unwrap().pop().unwrap();
    assert!(!kept.is_decided());
    kept.accept().await.expect("the handler's own decision, later");
    assert_eq!(later.await.unwrap().unwrap(), CallState::Active);
}

#[tokio::test]
async fn log_and_continue_returns_the_failed_call() {
    let refusing = SimplePeer::builder("busy").incoming_call_policy(IncomingCallPolicy::RejectAll).build().await.unwrap();
    let alice = SimplePeer::builder("alice").call_failure_policy(CallFailurePolicy::LogAndContinue).build().await.unwrap();
    let call = alice.call(&refusing.uri()).await.expect("the failure is logged, the call returned");
    assert_eq!(call.state(), CallState::Failed(603));
}

/// An IVR answering with `handler` and running `commands` on the digits it hears.
async fn ivr(handler: Arc<dyn CallHandler>, commands: Vec<DtmfCommand>) -> SimplePeer {
    let policy = DtmfPolicy::ExecuteCommands { commands };
    SimplePeer::builder("ivr").handler(handler).dtmf_policy(policy).build().await.unwrap()
}

#[tokio::test]
async fn dtmf_commands_run_a_custom_command_transfer_and_hang_up() {
    let desk = Arc::new(Desk::default());
    let commands = vec![DtmfCommand::new("*7", DtmfAction::Custom("menu".into())), DtmfCommand::new("*9", DtmfAction::Hangup)];
    let ivr = ivr(desk.clone(), commands).await;
    let alice = SimplePeer::new("alice").await.unwrap();

    let call = alice.call(&ivr.uri()).await.unwrap();
    call.send_dtmf_string("1*7").await.unwrap();
    until("the custom command", WAIT, || desk.commands.lock().unwrap().as_slice() == ["menu"]).await;
    call.send_dtmf_string("*9").await.unwrap();
    assert_eq!(call.wait_ended(WAIT).await.unwrap(), CallState::Ended, "the IVR hung up");

    // `*8`: the IVR transfers the caller to carol (the caller accepts transfers).
    let carol = SimplePeer::builder("carol").handler(Arc::new(AutoAnswerHandler)).build().await.unwrap();
    let commands = vec![DtmfCommand::new("*8", DtmfAction::Transfer(carol.uri()))];
    let ivr = SimplePeer::builder("ivr2")
        .incoming_call_policy(IncomingCallPolicy::AcceptAll)
        .dtmf_policy(DtmfPolicy::ExecuteCommands { commands })
        .build()
        .await
        .unwrap();
    let caller = SimplePeer::builder("caller").transfer_policy(TransferPolicy::AcceptAll).build().await.unwrap();
    let call = caller.call(&ivr.uri()).await.unwrap();
    call.send_dtmf_string("*8").await.unwrap();
    until("carol to be called by the caller", WAIT, || !carol.active_calls().is_empty()).await;
    carol.active_calls()[0].wait_established(WAIT).await.expect("the transferred call is up");
    assert_eq!(call.wait_ended(WAIT).await.unwrap(), CallState::Ended, "the caller's call with the IVR ended");
}

#[tokio::test]
async fn routing_then_a_queue_composed_decide_incoming_calls() {
    use session_core::peer::{CompositeHandler, QueueHandler, RouteAction, RoutingHandler};
    let routing = RoutingHandler::new()
        .route("sales*", RouteAction::Accept)
        .route("spam", RouteAction::Reject(403))
        .route("old", RouteAction::Redirect("sip:new@192.0.2.9".into()));
    // What routing leaves to the policy waits in a queue of one, 400 ms at most.
    let queue = Arc::new(QueueHandler::new(1, Duration::from_millis(400)));
    let desk = CompositeHandler::new().with(Arc::new(routing)).with(queue.clone());
    let bob = SimplePeer::builder("bob").handler(Arc::new(desk)).build().await.unwrap();
    let alice = Arc::new(SimplePeer::new("alice").await.unwrap());
    let at = |user: &str| format!("sip:{user}@{}", bob.local_addr());

    alice.call(&at("sales-east")).await.expect("a sales* call is accepted").hangup().await.unwrap();
    assert_eq!(status_of(alice.call(&at("spam")).await), 403);
    assert_eq!(status_of(alice.call(&at("old")).await), 302);

    // Support goes to the queue, where someone takes it.
    let placing = tokio::spawn({
        let (alice, uri) = (alice.clone(), at("support"));
        async move { alice.call(&uri).await.map(|c| c.state()) }
    });
    let waiting = tokio::time::timeout(WAIT, queue.next_call()).await.expect("the call is queued");
    waiting.accept().await.unwrap();
    assert_eq!(placing.await.unwrap().unwrap(), CallState::Active);

    // A second caller while one waits finds the queue full; the one waiting times out.
    let first = tokio::spawn({
        let (alice, uri) = (alice.clone(), at("support"));
        async move { alice.call(&uri).await }
    });
    until("the first call to wait in the queue", WAIT, || queue.len() == 1).await;
    assert_eq!(status_of(alice.call(&at("support")).await), 486, "the queue is full");
    assert_eq!(status_of(first.await.unwrap()), 480, "nobody took it in time");
}

#[tokio::test]
async fn hold_media_from_a_file_reaches_the_held_party() {
    use media::audio::tone;
    use session_core::peer::{HoldMediaSource, HoldPolicy};
    let dir = tempfile::tempdir().unwrap();
    let music = dir.path().join("music.wav");
    let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut wav = hound::WavWriter::create(&music, spec).unwrap();
    for s in tone::sine(1000.0, 8000, 8000, 8000.0) {
        wav.write_sample(s).unwrap();
    }
    wav.finalize().unwrap();

    let path = music.display().to_string();
    for source in [HoldMediaSource::MusicFile(path.clone()), HoldMediaSource::Message(path)] {
        let policy = HoldPolicy::AcceptWithMedia { media_source: source.clone() };
        let alice = SimplePeer::builder("alice").hold_policy(policy).build().await.unwrap();
        let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
        let call = alice.call(&bob.uri()).await.unwrap();
        let at_bob = bob.active_calls().pop().unwrap();
        at_bob.wait_established(WAIT).await.unwrap();
        call.hold().await.unwrap();
        // Half a second of what bob hears while held: the file's 1 kHz.
        let mut heard = Vec::new();
        while heard.len() < 4000 {
            let frame = tokio::time::timeout(WAIT, at_bob.recv_audio()).await.expect("hold media reaches bob").unwrap();
            heard.extend_from_slice(&frame.samples);
        }
        let rate = at_bob.sample_rate();
        let found = tone::dominant_tone(&heard[heard.len() - 2000..], rate, &[440.0, 1000.0, 1500.0]).map(|(f, _)| f);
        assert_eq!(found, Some(1000.0), "{source:?}");
        call.hangup().await.unwrap();
    }
}

/// Energy of `samples` (root mean square).
fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}

/// The next `n` samples `call` hears.
async fn hear(call: &Call, n: usize) -> Vec<i16> {
    let mut heard = Vec::new();
    while heard.len() < n {
        let frame = tokio::time::timeout(WAIT, call.recv_audio()).await.expect("audio keeps arriving").unwrap();
        heard.extend_from_slice(&frame.samples);
    }
    heard
}

#[tokio::test]
async fn silence_on_hold_replaces_what_the_holder_sends() {
    use media::audio::tone;
    use session_core::peer::{AudioFrame, HoldMediaSource, HoldPolicy};
    let policy = HoldPolicy::AcceptWithMedia { media_source: HoldMediaSource::Silence };
    let alice = SimplePeer::builder("alice").hold_policy(policy).build().await.unwrap();
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let call = alice.call(&bob.uri()).await.unwrap();
    let at_bob = bob.active_calls().pop().unwrap();
    at_bob.wait_established(WAIT).await.unwrap();
    // Alice's "microphone": 440 Hz, frame by frame, for as long as the call lasts.
    let (rate, frame) = (call.sample_rate(), call.frame_samples());
    let speaker = call.clone();
    let talking = tokio::spawn(async move {
        let tone = tone::sine(440.0, rate, rate as usize, 8000.0);
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        for chunk in tone.chunks(frame).cycle() {
            ticks.tick().await;
            if speaker.send_audio(AudioFrame::new(chunk.to_vec(), rate)).await.is_err() {
                break;
            }
        }
    });
    let before = hear(&at_bob, 8000).await;
    let bob_rate = at_bob.sample_rate();
    let found = tone::dominant_tone(&before[4000..], bob_rate, &[440.0, 1000.0]).map(|(f, _)| f);
    assert_eq!(found, Some(440.0), "bob hears alice before the hold");

    call.hold().await.unwrap();
    // What was in flight when the hold took effect drains within half a second.
    hear(&at_bob, 4000).await;
    let held = hear(&at_bob, 8000).await;
    assert!(rms(&held) < 50.0, "bob hears silence while held, not alice (rms {:.0})", rms(&held));

    call.resume().await.unwrap();
    hear(&at_bob, 4000).await;
    let after = hear(&at_bob, 4000).await;
    assert!(rms(&after) > 1000.0, "alice is heard again after the resume (rms {:.0})", rms(&after));
    call.hangup().await.unwrap();
    talking.await.unwrap();
}

/// Notes whether our sending is on, from the media-flow events.
#[derive(Default)]
struct Sending(Mutex<Vec<bool>>);

#[async_trait]
impl CallHandler for Sending {
    async fn on_incoming_call(&self, _call: &IncomingCall) -> CallDecision {
        CallDecision::Accept
    }

    async fn on_media_flow(&self, event: &session_core::peer::MediaFlowEvent) {
        if event.direction == session_core::peer::MediaDirection::Send {
            self.0.lock().unwrap().push(event.active);
        }
    }
}

#[tokio::test]
async fn dtmf_commands_mute_and_unmute_the_ivr() {
    let sending = Arc::new(Sending::default());
    let commands = vec![DtmfCommand::new("*5", DtmfAction::Mute), DtmfCommand::new("*6", DtmfAction::Unmute)];
    let ivr = ivr(sending.clone(), commands).await;
    let alice = SimplePeer::new("alice").await.unwrap();
    let call = alice.call(&ivr.uri()).await.unwrap();
    until("the IVR sending", WAIT, || sending.0.lock().unwrap().as_slice() == [true]).await;
    call.send_dtmf_string("*5").await.unwrap();
    until("the IVR muted", WAIT, || sending.0.lock().unwrap().as_slice() == [true, false]).await;
    call.send_dtmf_string("*6").await.unwrap();
    until("the IVR unmuted", WAIT, || sending.0.lock().unwrap().as_slice() == [true, false, true]).await;
    call.hangup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_connection_sends_an_unanswered_reinvite_again() {
    use session_core::peer::{NetworkErrorPolicy, TimerConfig};
    use testkit::ports::free_local_addr;
    use testkit::sipp::Sipp;
    // T1 of 10 ms: a request without an answer times out after 640 ms.
    let config =
        Config { sip_timers: TimerConfig { t1: Duration::from_millis(10), ..TimerConfig::default() }, ..Config::default() };
    let policy = NetworkErrorPolicy::RetryConnection { max_retries: 2, timeout_secs: 1 };
    let alice = SimplePeer::builder("alice").config(config).network_error_policy(policy).build().await.unwrap();
    let addr = free_local_addr();
    let uas = tokio::task::spawn_blocking(move || Sipp::builtin("uas").local(addr).timeout(WAIT).spawn().unwrap()).await.unwrap();
    let call = alice.call(&format!("sip:service@{addr}")).await.expect("SIPp answers");
    tokio::task::spawn_blocking(move || uas.kill()).await.unwrap();
    // Where SIPp was, a socket that only listens: each re-INVITE is seen, none answered.
    let silent = tokio::net::UdpSocket::bind(addr).await.expect("SIPp's port, free again");
    let mut hold = tokio::spawn(async move { call.hold().await });
    let mut cseqs = std::collections::BTreeSet::new();
    let mut buf = vec![0u8; 4096];
    // Every INVITE that arrives until the hold gives up (bounded by WAIT).
    let outcome = tokio::time::timeout(WAIT, async {
        loop {
            tokio::select! {
                done = &mut hold => return done.unwrap(),
                Ok((n, _)) = silent.recv_from(&mut buf) => {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    if text.starts_with("INVITE ")
                        && let Some(line) = text.lines().find(|l| l.to_ascii_lowercase().starts_with("cseq:"))
                    {
                        cseqs.insert(line.to_owned());
                    }
                }
            }
        }
    })
    .await
    .expect("the hold gives up");
    assert!(matches!(outcome, Err(PeerError::Timeout)), "the hold fails in the end: {outcome:?}");
    assert_eq!(cseqs.len(), 3, "the re-INVITE and its two retries: {cseqs:?}");
}

#[tokio::test]
async fn ignored_and_logged_digits_reach_nobody() {
    use session_core::peer::{EventType, PeerEvent};
    for (policy, delivered) in [(DtmfPolicy::ForwardImmediate, true), (DtmfPolicy::Ignore, false), (DtmfPolicy::LogOnly, false)] {
        let bob = SimplePeer::builder("bob")
            .incoming_call_policy(IncomingCallPolicy::AcceptAll)
            .dtmf_policy(policy.clone())
            .event_history_size(Some(100))
            .build()
            .await
            .unwrap();
        let alice = SimplePeer::new("alice").await.unwrap();
        let call = alice.call(&bob.uri()).await.unwrap();
        let at_bob = bob.active_calls().pop().unwrap();
        call.send_dtmf('5', Duration::from_millis(100)).await.unwrap();
        until("bob's DTMF event", WAIT, || bob.event_history().iter().any(|(_, e)| e.event_type() == EventType::Dtmf)).await;
        call.hangup().await.unwrap();
        // Events are handled in order: once the call's end is in, the digit was dealt with.
        let ended = || bob.event_history().iter().any(|(_, e)| matches!(e, PeerEvent::CallEnded { .. }));
        until("bob's call to end", WAIT, ended).await;
        let got = tokio::time::timeout(WAIT, at_bob.recv_dtmf()).await.expect("recv_dtmf returns once the call is over");
        assert_eq!(got.is_ok(), delivered, "{policy:?}: {got:?}");
        assert!(at_bob.dtmf_buffer().is_empty());
    }
}

// Several threads, as an application's runtime has: the application's task resumes while the
// call's task may still be at work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_call_knows_its_codec_and_rate_when_accept_returns() {
    for _ in 0..50 {
        let alice = SimplePeer::new("alice").await.unwrap();
        let bob = SimplePeer::new("bob").await.unwrap();
        let uri = bob.uri();
        let calling = tokio::spawn(async move { alice.call(&uri).await.map(|c| (alice, c)) });
        let incoming = tokio::time::timeout(WAIT, bob.next_incoming()).await.unwrap().unwrap();
        let call = incoming.accept().await.unwrap();
        assert_eq!((call.sample_rate(), call.frame_samples()), (8000, 160), "known as accept returns");
        let (_alice, theirs) = calling.await.unwrap().unwrap();
        assert_eq!(theirs.sample_rate(), 8000);
        call.hangup().await.unwrap();
    }
}
