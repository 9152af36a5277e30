//! Seed 001's and 002's callbacks, each made to fire by a real call over SIP and RTP: a
//! handler on bob's peer records what it is told while alice calls, talks, sends a digit
//! and hangs up; a handler on alice's sees her call refused (`on_call_failed`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use media::audio::tone;
use session_core::peer::{
    AudioFrame, Call, CallDecision, CallHandler, CallState, DtmfEvent, IncomingCall, MediaFlowEvent, SimplePeer, StateChangeEvent,
};
use testkit::wait::until;

const WAIT: Duration = Duration::from_secs(10);

/// Takes every call and writes down every callback, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn seen(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn saw(&self, prefix: &str) -> bool {
        self.seen().iter().any(|s| s.starts_with(prefix))
    }

    fn note(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

#[async_trait]
impl CallHandler for Recorder {
    async fn on_incoming_call(&self, call: &IncomingCall) -> CallDecision {
        self.note(format!("incoming from {}", call.info().from_user));
        CallDecision::Accept
    }

    async fn on_call_established(&self, call: &Call, local_sdp: Option<&str>, remote_sdp: Option<&str>) {
        self.note(format!("established {:?}", call.state()));
        // Bob answered: his SDP is the answer (his RTP port), alice's the offer.
        let port = call.negotiated_config().map(|n| n.local_rtp.port()).unwrap_or_default();
        if local_sdp.is_some_and(|s| s.contains(&format!("m=audio {port} ")))
            && remote_sdp.is_some_and(|s| s.contains("o=alice "))
        {
            self.note("established with both SDPs".into());
        }
    }

    async fn on_call_ended(&self, _call: &Call, reason: &str) {
        self.note(format!("ended: {reason}"));
    }

    async fn on_call_failed(&self, _call: &Call, status: u16, _reason: &str) {
        self.note(format!("failed {status}"));
    }

    async fn on_call_state_changed(&self, event: &StateChangeEvent) {
        self.note(format!("state {:?} -> {:?}", event.old_state, event.new_state));
    }

    async fn on_dtmf(&self, event: &DtmfEvent) -> bool {
        self.note(format!("dtmf {}", event.digit));
        true
    }

    async fn on_media_flow(&self, event: &MediaFlowEvent) {
        self.note(format!("flow {:?} {}", event.direction, event.active));
    }
}

#[tokio::test]
async fn every_call_callback_fires_for_a_real_call() {
    let recorder = Arc::new(Recorder::default());
    let bob = SimplePeer::builder("bob").handler(recorder.clone()).build().await.unwrap();
    let alice = SimplePeer::new("alice").await.unwrap();
    let call = alice.call(&bob.uri()).await.expect("bob's handler accepts");

    // Alice talks: bob's media starts flowing in.
    let (rate, n) = (call.sample_rate(), call.frame_samples());
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for chunk in tone::sine(440.0, rate, n * 25, 8000.0).chunks(n) {
        tick.tick().await;
        call.send_audio(AudioFrame::new(chunk.to_vec(), rate)).await.unwrap();
    }
    until("bob's media flow callback", WAIT, || recorder.saw("flow Receive true")).await;
    call.send_dtmf('7', Duration::from_millis(100)).await.unwrap();
    until("bob's DTMF callback", WAIT, || recorder.saw("dtmf 7")).await;
    // Bob's own sending: on since the answer, off while muted, on again.
    assert!(recorder.saw("flow Send true"), "{:#?}", recorder.seen());
    let at_bob = bob.active_calls().pop().expect("bob's call");
    at_bob.set_muted(true).unwrap();
    until("bob's send-flow off", WAIT, || recorder.saw("flow Send false")).await;
    at_bob.set_muted(false).unwrap();
    let sends_on = || recorder.seen().iter().filter(|s| *s == "flow Send true").count();
    until("bob's send-flow on again", WAIT, || sends_on() == 2).await;
    call.hangup().await.unwrap();
    assert_eq!(call.state(), CallState::Ended);
    until("bob's call-ended callback", WAIT, || recorder.saw("ended:")).await;

    let seen = recorder.seen();
    let at =
        |prefix: &str| seen.iter().position(|s| s.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in {seen:#?}"));
    assert!(at("incoming from alice") < at("established Active"), "{seen:#?}");
    at("established with both SDPs");
    assert!(at("state Incoming -> Active") < at("dtmf 7"), "{seen:#?}");
    assert!(at("ended: hung up by the far end (BYE)") > at("dtmf 7"), "{seen:#?}");
    assert!(seen.iter().any(|s| s.starts_with("state ") && s.ends_with("-> Ended")), "the last state change: {seen:#?}");
}

#[tokio::test]
async fn a_call_that_is_never_answered_reports_its_failure() {
    use session_core::peer::IncomingCallPolicy;
    let recorder = Arc::new(Recorder::default());
    let alice = SimplePeer::builder("alice").handler(recorder.clone()).build().await.unwrap();
    let refusing = SimplePeer::builder("busy").incoming_call_policy(IncomingCallPolicy::RejectAll).build().await.unwrap();
    assert!(alice.call(&refusing.uri()).await.is_err());
    until("alice's call-ended callback", WAIT, || recorder.saw("ended:")).await;
    let seen = recorder.seen();
    let failed = seen.iter().position(|s| s == "failed 603").unwrap_or_else(|| panic!("no failure reported: {seen:#?}"));
    assert!(failed < seen.iter().position(|s| s.starts_with("ended:")).unwrap(), "{seen:#?}");
    assert!(!recorder.saw("established"), "{seen:#?}");
}

#[tokio::test]
async fn subscribers_each_get_the_events_their_filter_lets_through() {
    use session_core::peer::{EventFilter, EventPriority, EventType, IncomingCallPolicy};
    let bob = SimplePeer::builder("bob").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let mut calls = bob.subscribe(EventFilter::types([EventType::CallEstablished, EventType::CallEnded]));
    let mut urgent = bob.subscribe(EventFilter::at_least(EventPriority::High));
    drop(bob.subscribe(EventFilter::all())); // gone: forgotten, nothing breaks
    let alice = SimplePeer::new("alice").await.unwrap();
    alice.call(&bob.uri()).await.unwrap().hangup().await.unwrap();

    let mut got = Vec::new();
    while got.len() < 2 {
        let event = tokio::time::timeout(WAIT, calls.recv()).await.expect("call events").unwrap();
        got.push(event.event_type());
    }
    assert_eq!(got, [EventType::CallEstablished, EventType::CallEnded]);
    let first = tokio::time::timeout(WAIT, urgent.recv()).await.expect("an urgent event").unwrap();
    assert_eq!((first.event_type(), first.priority()), (EventType::IncomingCall, EventPriority::High));
    assert!(urgent.try_recv().is_err(), "nothing else was that important");
}
