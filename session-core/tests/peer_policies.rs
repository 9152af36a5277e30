//! The builder's policies through real SIP between peers on loopback: each variant does
//! what its name says, seen from the other end of the call.

use std::time::Duration;

use session_core::peer::{
    CallFailurePolicy, CallState, DtmfAction, DtmfCommand, DtmfPolicy, EventType, HoldPolicy, IncomingCallPolicy, PeerError,
    SimplePeer, SimplePeerBuilder, TimeoutAction, TransferPolicy, UnhandledEventPolicy,
};

const WAIT: Duration = Duration::from_secs(10);

async fn peer(name: &str, configure: impl FnOnce(SimplePeerBuilder) -> SimplePeerBuilder) -> SimplePeer {
    configure(SimplePeer::builder(name).event_history_size(Some(200))).build().await.unwrap()
}

fn status_of(result: Result<session_core::peer::Call, PeerError>) -> u16 {
    match result {
        Err(PeerError::CallFailed { status, .. }) => status,
        other => panic!("expected a failed call, got {other:?}"),
    }
}

fn incoming_calls(p: &SimplePeer) -> usize {
    p.event_history().iter().filter(|(_, e)| e.event_type() == EventType::IncomingCall).count()
}

async fn until(what: &str, ok: impl Fn() -> bool) {
    testkit::wait::until(what, WAIT, ok).await;
}

#[tokio::test]
async fn incoming_call_policies_answer_as_named() {
    let alice = peer("alice", |b| b).await;
    let mallory = peer("mallory", |b| b).await;
    let rejecting = peer("dialer", |b| b.incoming_call_policy(IncomingCallPolicy::RejectAll)).await;
    assert_eq!(status_of(alice.call(&rejecting.uri()).await), 603);

    let whitelist =
        IncomingCallPolicy::AcceptWhitelist { allowed_domains: vec![], allowed_users: vec!["alice@127.0.0.1".into()] };
    let boss = peer("boss", |b| b.incoming_call_policy(whitelist)).await;
    let call = alice.call(&boss.uri()).await.expect("alice is whitelisted");
    assert_eq!(status_of(mallory.call(&boss.uri()).await), 403);
    call.hangup().await.unwrap();

    let queue = IncomingCallPolicy::QueueWithTimeout { timeout_secs: 1, on_timeout: TimeoutAction::Reject };
    let desk = peer("desk", |b| b.incoming_call_policy(queue)).await;
    let attempt = tokio::spawn({
        let uri = desk.uri();
        async move { alice.call(&uri).await }
    });
    let queued = desk.next_incoming_within(WAIT).await.expect("the call waits in the queue");
    assert!(!queued.is_decided());
    assert_eq!(status_of(attempt.await.unwrap()), 480, "nobody took it within 1 s");
    assert!(matches!(queued.accept().await, Err(PeerError::AlreadyDecided)));

    let manual = peer("manual", |b| b).await;
    let caller = tokio::spawn({
        let uri = manual.uri();
        async move { mallory.call(&uri).await }
    });
    manual.next_incoming_within(WAIT).await.expect("RequireManual hands the call to the application").reject(486).unwrap();
    assert_eq!(status_of(caller.await.unwrap()), 486);
}

#[tokio::test]
async fn call_failure_policies_retry_or_try_alternates() {
    let busy = peer("busy", |b| b.incoming_call_policy(IncomingCallPolicy::RejectAll)).await;
    let backup = peer("backup", |b| b.incoming_call_policy(IncomingCallPolicy::AcceptAll)).await;
    let failover =
        peer("failover", |b| b.call_failure_policy(CallFailurePolicy::TryAlternates { alternates: vec![backup.uri()] })).await;
    let call = failover.call(&busy.uri()).await.expect("the alternate answers");
    assert_eq!(call.remote_uri(), backup.uri());
    call.hangup().await.unwrap();

    let retry = CallFailurePolicy::RetryWithBackoff { max_retries: 2, initial_delay_ms: 50, max_delay_ms: 80 };
    let dialer = peer("dialer", |b| b.call_failure_policy(retry)).await;
    assert_eq!(status_of(dialer.call(&busy.uri()).await), 603);
    until("the failover's attempt and the dialer's three at the busy peer", || incoming_calls(&busy) == 4).await;

    let lenient = peer("lenient", |b| b.call_failure_policy(CallFailurePolicy::Ignore)).await;
    let failed = lenient.call(&busy.uri()).await.expect("Ignore returns the failed call");
    assert_eq!(failed.state(), CallState::Failed(603));
}

#[tokio::test]
async fn transfer_policies_decline_or_carry_out_the_refer() {
    let bob = peer("bob", |b| b.incoming_call_policy(IncomingCallPolicy::AcceptAll)).await;
    let carol = peer("carol", |b| b.incoming_call_policy(IncomingCallPolicy::AcceptAll)).await;

    // RejectAll (the default) declines with 603.
    let alice = peer("alice", |b| b).await;
    let call = alice.call(&bob.uri()).await.unwrap();
    let bobs = bob.active_calls().pop().unwrap();
    bobs.wait_established(WAIT).await.unwrap();
    match bobs.transfer(&carol.uri()).await {
        Err(PeerError::Refused { status: 603, .. }) => {}
        other => panic!("RejectAll should decline: {other:?}"),
    }
    assert_eq!(call.state(), CallState::Active, "a declined transfer leaves the call alone");
    call.hangup().await.unwrap();

    // AcceptBlind calls the target; the transferor's call ends.
    let dave = peer("dave", |b| b.transfer_policy(TransferPolicy::AcceptBlind)).await;
    let call = dave.call(&bob.uri()).await.unwrap();
    let bobs = bob.active_calls().into_iter().find(|c| c.remote_uri().contains("dave")).unwrap();
    bobs.wait_established(WAIT).await.unwrap();
    assert_eq!(bobs.transfer(&carol.uri()).await.expect("the transfer succeeds"), 200);
    assert_eq!(call.wait_ended(WAIT).await.unwrap(), CallState::Ended);
    assert_eq!(call.end_reason().as_deref(), Some("transferred"));
    let at_carol = carol.active_calls().into_iter().find(|c| c.remote_uri().contains("dave")).expect("carol has dave's call");
    at_carol.wait_established(WAIT).await.unwrap();
    assert!(dave.active_calls().iter().any(|c| c.remote_uri() == carol.uri()));

    // RequireManual without a handler: declined, and the event is kept as unhandled.
    let erin = peer("erin", |b| {
        b.transfer_policy(TransferPolicy::RequireManual).unhandled_event_policy(UnhandledEventPolicy::StoreInHistory)
    })
    .await;
    let _call = erin.call(&bob.uri()).await.unwrap();
    let bobs = bob.active_calls().into_iter().find(|c| c.remote_uri().contains("erin")).unwrap();
    bobs.wait_established(WAIT).await.unwrap();
    assert!(matches!(bobs.transfer(&carol.uri()).await, Err(PeerError::Refused { status: 603, .. })));
    let unhandled = erin.unhandled_events();
    assert_eq!(unhandled.len(), 1);
    assert_eq!(unhandled[0].event_type(), EventType::TransferRequested);
}

#[tokio::test]
async fn dtmf_star_one_holds_the_call_and_hold_policy_reject_refuses_holds() {
    let commands = vec![DtmfCommand::new("*1", DtmfAction::Hold), DtmfCommand::new("*2", DtmfAction::Resume)];
    let ivr = peer("ivr", |b| {
        b.incoming_call_policy(IncomingCallPolicy::AcceptAll).dtmf_policy(DtmfPolicy::ExecuteCommands { commands })
    })
    .await;
    let alice = peer("alice", |b| b).await;
    let call = alice.call(&ivr.uri()).await.unwrap();
    let at_ivr = ivr.active_calls().pop().unwrap();
    at_ivr.wait_established(WAIT).await.unwrap();
    call.send_dtmf_string("5*1").await.unwrap();
    until("the IVR to hold the caller", || at_ivr.state() == CallState::OnHold).await;
    until("the caller to see the hold", || call.state() == CallState::RemoteHold).await;
    call.send_dtmf_string("*2").await.unwrap();
    until("the IVR to resume", || at_ivr.state() == CallState::Active).await;
    call.hangup().await.unwrap();

    let stubborn =
        peer("stubborn", |b| b.incoming_call_policy(IncomingCallPolicy::AcceptAll).hold_policy(HoldPolicy::Reject)).await;
    let call = alice.call(&stubborn.uri()).await.unwrap();
    match call.hold().await {
        Err(PeerError::Refused { status: 488, .. }) => {}
        other => panic!("HoldPolicy::Reject should refuse the hold: {other:?}"),
    }
    assert_eq!(call.state(), CallState::Active);
    call.hangup().await.unwrap();
}

#[tokio::test]
async fn attended_transfer_replaces_the_consultation_call() {
    let alice = peer("alice", |b| b.transfer_policy(TransferPolicy::AcceptAttended)).await;
    let bob = peer("bob", |b| b.incoming_call_policy(IncomingCallPolicy::AcceptAll)).await;
    let carol = peer("carol", |b| b.incoming_call_policy(IncomingCallPolicy::AcceptAll)).await;
    let alice_bob = alice.call(&bob.uri()).await.unwrap();
    let bob_alice = bob.active_calls().pop().unwrap();
    bob_alice.wait_established(WAIT).await.unwrap();
    let bob_carol = bob.call(&carol.uri()).await.expect("the consultation call");
    let carol_bob = carol.active_calls().pop().unwrap();

    assert_eq!(bob_alice.transfer_attended(&bob_carol).await.expect("alice completes the transfer"), 200);
    assert_eq!(alice_bob.wait_ended(WAIT).await.unwrap(), CallState::Ended);
    assert_eq!(carol_bob.wait_ended(WAIT).await.unwrap(), CallState::Ended, "the new call replaced it");
    assert_eq!(bob_carol.wait_ended(WAIT).await.unwrap(), CallState::Ended);
    let carol_alice = carol.active_calls().pop().expect("carol talks to alice now");
    assert!(carol_alice.remote_uri().contains("alice"), "{}", carol_alice.remote_uri());
    carol_alice.wait_established(WAIT).await.unwrap();
    until("bob has no call left", || bob.active_calls().is_empty()).await;

    // A blind-only transferee declines the attended kind.
    let dave = peer("dave", |b| b.transfer_policy(TransferPolicy::AcceptBlind)).await;
    let _dave_bob = dave.call(&bob.uri()).await.unwrap();
    let bob_dave = bob.active_calls().pop().unwrap();
    bob_dave.wait_established(WAIT).await.unwrap();
    let consult = bob.call(&carol.uri()).await.unwrap();
    assert!(matches!(bob_dave.transfer_attended(&consult).await, Err(PeerError::Refused { status: 603, .. })));
}

#[tokio::test]
async fn media_error_policies_act_when_the_far_end_sends_no_rtp() {
    use session_core::peer::{Config, MediaErrorPolicy};
    // Bob answers but never sends audio; Alice's media times out after 300 ms.
    let bob = peer("bob", |b| b.incoming_call_policy(IncomingCallPolicy::AcceptAll)).await;
    let quiet = || Config { media_timeout: Duration::from_millis(300), ..Config::default() };
    let warnings = |p: &SimplePeer| p.event_history().iter().filter(|(_, e)| e.event_type() == EventType::Warning).count();

    let terminating = peer("t", |b| b.config(quiet()).media_error_policy(MediaErrorPolicy::TerminateCall)).await;
    let call = terminating.call(&bob.uri()).await.unwrap();
    assert_eq!(call.wait_ended(WAIT).await.unwrap(), CallState::Ended);
    assert!(call.end_reason().unwrap().contains("media failed"), "{:?}", call.end_reason());

    let recovering =
        peer("r", |b| b.config(quiet()).media_error_policy(MediaErrorPolicy::AttemptRecovery { max_attempts: 2 })).await;
    let call = recovering.call(&bob.uri()).await.unwrap();
    assert_eq!(call.wait_ended(WAIT).await.unwrap(), CallState::Ended);
    assert!(call.end_reason().unwrap().contains("after recovery attempts"), "{:?}", call.end_reason());
    assert_eq!(warnings(&recovering), 2, "one warning per re-INVITE attempt");

    let returning = peer("e", |b| b.config(quiet()).media_error_policy(MediaErrorPolicy::ReturnError)).await;
    let call = returning.call(&bob.uri()).await.unwrap();
    until("the media warning", || warnings(&returning) == 1).await;
    assert!(matches!(call.recv_audio().await, Err(PeerError::Media(_))));
    assert_eq!(call.state(), CallState::Active, "ReturnError leaves the call up");
    call.hangup().await.unwrap();

    let degraded = peer("d", |b| b.config(quiet()).media_error_policy(MediaErrorPolicy::ContinueDegraded)).await;
    let ignoring = peer("i", |b| b.config(quiet()).media_error_policy(MediaErrorPolicy::Ignore)).await;
    let (c1, c2) = (degraded.call(&bob.uri()).await.unwrap(), ignoring.call(&bob.uri()).await.unwrap());
    until("the degraded call's warning", || warnings(&degraded) == 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await; // past Ignore's timeout too: nothing may happen
    assert_eq!(warnings(&ignoring), 0);
    assert_eq!((c1.state(), c2.state()), (CallState::Active, CallState::Active));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_error_policies_on_a_far_end_that_vanished() {
    use session_core::peer::{Config, NetworkErrorPolicy, TimerConfig};
    use testkit::ports::free_local_addr;
    use testkit::sipp::Sipp;
    // T1 of 10 ms: a request without an answer times out after 640 ms.
    let fast =
        || Config { sip_timers: TimerConfig { t1: Duration::from_millis(10), ..TimerConfig::default() }, ..Config::default() };
    let bob = peer("bob", |b| b.incoming_call_policy(IncomingCallPolicy::AcceptAll)).await;
    for policy in [NetworkErrorPolicy::ReturnError, NetworkErrorPolicy::TerminateAll] {
        let alice = peer("alice", |b| b.config(fast()).network_error_policy(policy)).await;
        let to_bob = alice.call(&bob.uri()).await.unwrap();
        let addr = free_local_addr();
        let uas =
            tokio::task::spawn_blocking(move || Sipp::builtin("uas").local(addr).timeout(WAIT).spawn().unwrap()).await.unwrap();
        let doomed = alice.call(&format!("sip:service@{addr}")).await.expect("SIPp answers");
        tokio::task::spawn_blocking(move || uas.kill()).await.unwrap();
        assert!(matches!(doomed.hold().await, Err(PeerError::Timeout)), "{policy:?}: the re-INVITE gets no answer");
        until("a network warning", || alice.event_history().iter().any(|(_, e)| e.event_type() == EventType::Warning)).await;
        assert_eq!(doomed.wait_ended(WAIT).await.unwrap(), CallState::Ended);
        match policy {
            NetworkErrorPolicy::TerminateAll => assert_eq!(to_bob.wait_ended(WAIT).await.unwrap(), CallState::Ended),
            _ => assert_eq!(to_bob.state(), CallState::Active, "ReturnError leaves the other calls alone"),
        }
    }
}

/// Bob, on a call with a transferee using `policy`, asks it to call Carol: the outcome.
async fn transfer_with(policy: TransferPolicy, queue: impl FnOnce(&SimplePeer) -> Option<bool>) -> Result<u16, PeerError> {
    let bob = peer("bob", |b| b.incoming_call_policy(IncomingCallPolicy::AcceptAll)).await;
    let carol = peer("carol", |b| b.incoming_call_policy(IncomingCallPolicy::AcceptAll)).await;
    let x = peer("x", |b| b.transfer_policy(policy)).await;
    let call = x.call(&bob.uri()).await.unwrap();
    let at_bob = bob.active_calls().pop().unwrap();
    at_bob.wait_established(WAIT).await.unwrap();
    let refer = tokio::spawn({
        let target = carol.uri();
        async move { at_bob.transfer(&target).await }
    });
    if let Some(accept) = queue(&x) {
        let request = tokio::time::timeout(WAIT, x.next_transfer_request()).await.expect("queued").unwrap();
        assert_eq!(request.target, carol.uri());
        if accept {
            request.accept();
        }
    }
    let outcome = refer.await.unwrap();
    if outcome.is_err() {
        assert_eq!(call.state(), CallState::Active, "a transfer that did not happen leaves the call up");
    }
    outcome
}

#[tokio::test]
async fn every_transfer_policy_variant() {
    let refused = |r: Result<u16, PeerError>| match r {
        Err(PeerError::Refused { status, .. }) => status,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        refused(transfer_with(TransferPolicy::RejectWithCode { status_code: 403, reason: "No".into() }, |_| None).await),
        403
    );
    assert_eq!(transfer_with(TransferPolicy::AcceptAll, |_| None).await.unwrap(), 200);
    let trusted = |d: &str| TransferPolicy::AcceptTrusted { trusted_domains: vec![d.into()] };
    assert_eq!(transfer_with(trusted("127.0.0.1"), |_| None).await.unwrap(), 200, "bob's domain is trusted");
    assert_eq!(refused(transfer_with(trusted("example.com"), |_| None).await), 603);
    assert_eq!(refused(transfer_with(TransferPolicy::LogAndIgnore, |_| None).await), 100, "accepted, then nothing");
    let queued = |secs| TransferPolicy::QueueWithTimeout { timeout_secs: secs, on_timeout: TimeoutAction::Reject };
    assert_eq!(transfer_with(queued(10), |_| Some(true)).await.unwrap(), 200, "the application accepts it");
    assert_eq!(refused(transfer_with(queued(1), |_| Some(false)).await), 480, "nobody decided within 1 s");
}

#[tokio::test]
async fn reject_when_busy_and_manual_or_musical_holds() {
    use session_core::peer::{CallHandler, HoldDecision, HoldMediaSource, HoldRequest};
    let busy = peer("busy", |b| b.incoming_call_policy(IncomingCallPolicy::RejectWhenBusy)).await;
    let (a, b) = (peer("a", |b| b).await, peer("b", |b| b).await);
    let first = a.call(&busy.uri()).await.expect("not busy yet");
    assert_eq!(status_of(b.call(&busy.uri()).await), 486);
    first.hangup().await.unwrap();

    struct Approver;
    #[async_trait::async_trait]
    impl CallHandler for Approver {
        async fn on_hold_request(&self, request: &HoldRequest) -> HoldDecision {
            if request.hold { HoldDecision::Accept } else { HoldDecision::Reject }
        }
    }
    let manual =
        |b: SimplePeerBuilder| b.incoming_call_policy(IncomingCallPolicy::AcceptAll).hold_policy(HoldPolicy::RequireManual);
    let approving = peer("approving", |b| manual(b).handler(std::sync::Arc::new(Approver))).await;
    let call = a.call(&approving.uri()).await.unwrap();
    call.hold().await.expect("the handler accepts the hold");
    call.hangup().await.unwrap();
    let nobody = peer("nobody", manual).await;
    let call = a.call(&nobody.uri()).await.unwrap();
    assert!(matches!(call.hold().await, Err(PeerError::Refused { status: 488, .. })), "no handler: refused");
    call.hangup().await.unwrap();

    // While Alice holds Bob with AcceptWithMedia, Bob hears the beep.
    let beep = HoldPolicy::AcceptWithMedia { media_source: HoldMediaSource::ToneBeep };
    let alice = peer("alice", |b| b.hold_policy(beep)).await;
    let bob = peer("bob", |b| b.incoming_call_policy(IncomingCallPolicy::AcceptAll)).await;
    let call = alice.call(&bob.uri()).await.unwrap();
    let at_bob = bob.active_calls().pop().unwrap();
    at_bob.wait_established(WAIT).await.unwrap();
    call.hold().await.unwrap();
    let frame = tokio::time::timeout(WAIT, at_bob.recv_audio()).await.expect("hold media reaches bob").unwrap();
    assert!(frame.samples.iter().any(|&s| s != 0), "the beep is not silence");
    call.hangup().await.unwrap();
}
