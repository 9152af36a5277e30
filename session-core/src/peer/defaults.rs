//! The default behaviours the policies choose, for events no handler decided: incoming calls,
//! transfer requests, DTMF digits, and what is left over (the unhandled event policy).

use std::sync::Arc;
use std::time::Duration;

use super::call::{Call, CallCommand};
use super::context::PeerContext;
use super::events::{DtmfEvent, PeerEvent, TransferDecision};
use super::handler::{CallDecision, CallHandler};
use super::incoming::IncomingCall;
use super::policies::{DtmfAction, DtmfPolicy, TimeoutAction, TransferPolicy, UnhandledEventPolicy};
use crate::interceptor::{BusyCheck, CallInfo, Decision, PolicyInterceptor, SignalingInterceptor};

/// `RejectWhenBusy`: the peer is busy when another call of it is established.
struct OtherCalls(Arc<PeerContext>, super::call::CallId);

#[async_trait::async_trait]
impl BusyCheck for OtherCalls {
    async fn is_busy(&self, _: &CallInfo) -> bool {
        let calls = self.0.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.values().any(|c| c.id() != &self.1 && c.state().is_established())
    }
}

fn accept_soon(incoming: IncomingCall) {
    // Not awaited here: accepting emits events, and the processor must keep draining them.
    tokio::spawn(async move {
        if let Err(e) = incoming.accept().await {
            tracing::debug!(call = %incoming.id(), error = %e, "accept did not complete");
        }
    });
}

fn defer(incoming: &IncomingCall, timeout: Duration, on_timeout: TimeoutAction) {
    let _ = incoming.call().0.commands.send(CallCommand::Defer { timeout, on_timeout });
}

/// Applies a handler's decision, or the incoming call policy (through the same interceptor
/// the cluster's router uses).
pub(crate) async fn incoming(ctx: &Arc<PeerContext>, incoming: IncomingCall, decision: CallDecision) {
    match decision {
        CallDecision::Accept => accept_soon(incoming),
        CallDecision::Reject(status) => {
            let _ = incoming.reject(status);
        }
        CallDecision::Redirect(uri) => {
            let _ = incoming.reject_with(302, "Moved Temporarily", Some(&uri));
        }
        CallDecision::Defer => {}
        CallDecision::DeferFor(timeout, on_timeout) => defer(&incoming, timeout, on_timeout),
        CallDecision::Policy => {
            let decision = match &ctx.interceptor {
                Some(interceptor) => interceptor.on_incoming_call(incoming.info()).await,
                None => {
                    let busy = Arc::new(OtherCalls(ctx.clone(), incoming.id().clone()));
                    let policy = PolicyInterceptor::new(ctx.policies().incoming_call).with_busy_check(busy);
                    policy.on_incoming_call(incoming.info()).await
                }
            };
            match decision {
                Decision::Accept => accept_soon(incoming),
                Decision::Reject { status, reason } => {
                    let _ = incoming.reject_with(status, &reason, None);
                }
                Decision::Route { targets } => match targets.first() {
                    Some(t) => {
                        let _ = incoming.reject_with(302, "Moved Temporarily", Some(t));
                    }
                    None => {
                        let _ = incoming.reject(404);
                    }
                },
                Decision::Defer { timeout, on_timeout } => {
                    if let Some(t) = timeout {
                        defer(&incoming, t, on_timeout);
                    }
                    let _ = ctx.incoming_tx.send(incoming);
                }
                Decision::Custom { action } => match ctx.actions.get(&action).cloned() {
                    Some(action) => {
                        tokio::spawn(action(incoming));
                    }
                    None => {
                        tracing::warn!(peer = %ctx.name, %action, "no such custom action: call refused");
                        let _ = incoming.reject_with(500, "No Such Call Action", None);
                    }
                },
            }
        }
    }
}

/// The transfer policy, for a REFER no handler decided.
pub(crate) async fn transfer(ctx: &Arc<PeerContext>, event: PeerEvent) {
    let PeerEvent::TransferRequested(request) = &event else { return };
    let policy = request.call.policies().transfer.unwrap_or_else(|| ctx.policies().transfer);
    let decline = || TransferDecision::Reject { status: 603, reason: "Decline".into() };
    let decision = match policy {
        TransferPolicy::RejectAll => decline(),
        TransferPolicy::RejectWithCode { status_code, reason } => TransferDecision::Reject { status: status_code, reason },
        TransferPolicy::AcceptBlind if !request.is_attended() => TransferDecision::Accept,
        TransferPolicy::AcceptAttended if request.is_attended() => TransferDecision::Accept,
        TransferPolicy::AcceptBlind | TransferPolicy::AcceptAttended => decline(),
        TransferPolicy::AcceptAll => TransferDecision::Accept,
        TransferPolicy::AcceptTrusted { trusted_domains } => {
            if trusted_domains.iter().any(|d| d.eq_ignore_ascii_case(&request.transferor_domain)) {
                TransferDecision::Accept
            } else {
                decline()
            }
        }
        TransferPolicy::RequireManual => {
            request.decider.decide(decline());
            unhandled(ctx, event);
            return;
        }
        TransferPolicy::QueueWithTimeout { timeout_secs, on_timeout } => {
            let waiting = request.clone();
            let _ = ctx.transfers_tx.send(request.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(u64::from(timeout_secs))).await;
                match on_timeout {
                    TimeoutAction::Accept => waiting.accept(),
                    _ => waiting.reject(480, "Temporarily Unavailable"),
                };
            });
            return;
        }
        TransferPolicy::LogAndIgnore => {
            tracing::info!(peer = %ctx.name, target = %request.target, "transfer request logged and ignored");
            TransferDecision::Ignore
        }
    };
    request.decider.decide(decision);
}

fn push_trimmed(buffer: &std::sync::Mutex<String>, digit: char, max: usize) -> String {
    let mut b = buffer.lock().unwrap_or_else(|e| e.into_inner());
    b.push(digit);
    while b.chars().count() > max.max(1) {
        b.remove(0);
    }
    b.clone()
}

/// The DTMF policy, for a digit no handler took.
pub(crate) async fn dtmf(ctx: &Arc<PeerContext>, handler: Option<&dyn CallHandler>, event: &DtmfEvent) {
    let Some(call) = ctx.call(&event.call_id) else { return };
    let policy = call.policies().dtmf.unwrap_or_else(|| ctx.policies().dtmf);
    match policy {
        DtmfPolicy::Ignore => {}
        DtmfPolicy::LogOnly => tracing::info!(peer = %ctx.name, call = %call.id(), digit = %event.digit, "DTMF"),
        DtmfPolicy::Buffer { max_buffer_size, .. } => {
            push_trimmed(&call.0.dtmf_buffer, event.digit, max_buffer_size);
        }
        DtmfPolicy::ForwardImmediate => {
            if call.0.dtmf_tx.try_send(event.digit).is_err() {
                tracing::warn!(peer = %ctx.name, call = %call.id(), "DTMF digit dropped: nobody reads recv_dtmf");
            }
        }
        DtmfPolicy::ExecuteCommands { commands } => {
            let typed = push_trimmed(&call.0.command_digits, event.digit, 32);
            if let Some(c) = commands.iter().find(|c| !c.pattern.is_empty() && typed.ends_with(&c.pattern)) {
                call.0.command_digits.lock().unwrap_or_else(|e| e.into_inner()).clear();
                if let (DtmfAction::Custom(name), Some(h)) = (&c.action, handler) {
                    h.on_dtmf_command(&call, name).await;
                } else {
                    run_command(call, c.action.clone());
                }
            }
        }
    }
}

fn run_command(call: Call, action: DtmfAction) {
    tokio::spawn(async move {
        let result = match action {
            DtmfAction::Hold => call.hold().await,
            DtmfAction::Resume => call.resume().await,
            DtmfAction::Transfer(target) => call.transfer(&target).await.map(|_| ()),
            DtmfAction::Mute => call.set_muted(true),
            DtmfAction::Unmute => call.set_muted(false),
            DtmfAction::Hangup => call.hangup().await,
            DtmfAction::Custom(_) => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(call = %call.id(), error = %e, "DTMF command failed");
        }
    });
}

/// The unhandled event policy.
pub(crate) fn unhandled(ctx: &PeerContext, event: PeerEvent) {
    let kind = event.event_type();
    match ctx.policies().unhandled_event {
        UnhandledEventPolicy::DropSilent => {}
        UnhandledEventPolicy::LogDebug => tracing::debug!(peer = %ctx.name, event = %kind, "unhandled event"),
        UnhandledEventPolicy::LogWarn => tracing::warn!(peer = %ctx.name, event = %kind, "unhandled event"),
        UnhandledEventPolicy::LogError => tracing::error!(peer = %ctx.name, event = %kind, "unhandled event"),
        UnhandledEventPolicy::ReturnError | UnhandledEventPolicy::StoreInHistory => {
            ctx.unhandled.lock().unwrap_or_else(|e| e.into_inner()).push_back(event);
        }
        UnhandledEventPolicy::Panic => panic!("unhandled {kind} event (the unhandled event policy is Panic)"),
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::super::events::{RegistrationEvent, WarningCategory, WarningEvent};
    use super::super::{PeerError, SimplePeer};
    use super::*;

    /// Captures what is logged while a closure runs.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn logs(f: impl FnOnce()) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt().with_writer(out.clone()).with_max_level(tracing::Level::TRACE).finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    fn warning() -> PeerEvent {
        PeerEvent::Warning(WarningEvent { call_id: None, category: WarningCategory::Media, message: "m".into() })
    }

    #[tokio::test]
    async fn each_unhandled_event_policy_does_what_it_says() {
        let peer = SimplePeer::builder("u").build().await.unwrap();
        let with = |policy: UnhandledEventPolicy| {
            peer.update_policies(|p| p.unhandled_event = policy);
            logs(|| unhandled(&peer.ctx, warning()))
        };
        assert_eq!(with(UnhandledEventPolicy::DropSilent), "");
        assert!(with(UnhandledEventPolicy::LogDebug).contains("DEBUG"));
        assert!(with(UnhandledEventPolicy::LogWarn).contains("WARN"));
        assert!(with(UnhandledEventPolicy::LogError).contains("ERROR"));
        assert!(peer.unhandled_events().is_empty() && peer.check_unhandled().is_ok(), "logging keeps nothing");
        with(UnhandledEventPolicy::StoreInHistory);
        assert_eq!(peer.unhandled_events().len(), 1);
        assert!(matches!(peer.check_unhandled(), Err(PeerError::UnhandledEvent(kind)) if kind == "Warning"));
        with(UnhandledEventPolicy::ReturnError);
        assert!(matches!(peer.check_unhandled(), Err(PeerError::UnhandledEvent(kind)) if kind == "Warning"));
        assert!(peer.check_unhandled().is_ok(), "each error is returned once");
        peer.update_policies(|p| p.unhandled_event = UnhandledEventPolicy::Panic);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unhandled(&peer.ctx, warning())));
        assert!(panicked.is_err());
    }

    #[tokio::test]
    async fn the_event_log_level_decides_what_is_logged() {
        let peer = SimplePeer::builder("l").build().await.unwrap();
        let failed = || PeerEvent::Registration(RegistrationEvent::Failed { registrar: "r".into(), reason: "403".into() });
        let registered = || PeerEvent::Registration(RegistrationEvent::Registered { registrar: "r".into(), expires: 60 });
        let dtmf = || {
            PeerEvent::Dtmf(super::super::events::DtmfEvent {
                call_id: super::super::CallId("c".into()),
                digit: '5',
                duration_ms: 100,
                timestamp: std::time::Instant::now(),
            })
        };
        let logged = |level: EventLogLevel, event: PeerEvent| {
            peer.update_policies(|p| p.log_level = level);
            !logs(|| super::super::processor::log(&peer.ctx, &event)).is_empty()
        };
        use super::super::policies::EventLogLevel::{self, *};
        let table = [
            (Off, [false, false, false, false]),
            (ErrorOnly, [true, false, false, false]),
            (ErrorAndWarn, [true, true, false, false]),
            (Info, [true, true, true, false]),
            (Debug, [true, true, true, true]),
            (Trace, [true, true, true, true]),
        ];
        for (level, expected) in table {
            let got = [logged(level, failed()), logged(level, warning()), logged(level, registered()), logged(level, dtmf())];
            assert_eq!(got, expected, "{level:?}: failure, warning, registration, digit");
        }
        peer.update_policies(|p| p.log_level = Trace);
        assert!(logs(|| super::super::processor::log(&peer.ctx, &dtmf())).contains("digit: '5'"), "Trace logs the contents");
    }
}
