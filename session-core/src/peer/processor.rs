//! The background event processor (seed 000): takes each event from the buffer, logs it at
//! the configured level, keeps it in the history, and delivers it — to the application's
//! handler when it has one for the event, else to the default behaviour the policies choose
//! (`defaults.rs`). Calls never wait for the application: they only fill the buffer.

use std::sync::Arc;
use std::time::Instant;

use super::context::PeerContext;
use super::events::{HoldDecision, PeerEvent, RegistrationEvent, TransferDecision};
use super::handler::{CallDecision, CallHandler};
use super::policies::EventLogLevel;

/// Runs until the buffer is closed.
pub(crate) async fn run(ctx: Arc<PeerContext>) {
    while let Some(event) = ctx.events.pop().await {
        log(&ctx, &event);
        if ctx.history_size > 0 {
            let mut h = ctx.history.lock().unwrap_or_else(|e| e.into_inner());
            if h.len() == ctx.history_size {
                h.pop_front();
            }
            h.push_back((Instant::now(), event.clone()));
        }
        super::subscribers::broadcast(&mut super::lock(&ctx.subscribers), &event);
        dispatch(&ctx, event).await;
    }
}

/// The least verbose level at which an event is logged.
fn level_of(event: &PeerEvent) -> EventLogLevel {
    match event {
        PeerEvent::Registration(RegistrationEvent::Failed { .. }) => EventLogLevel::ErrorOnly,
        PeerEvent::Warning(_) => EventLogLevel::ErrorAndWarn,
        PeerEvent::IncomingCall(_)
        | PeerEvent::CallEstablished(_)
        | PeerEvent::CallEnded { .. }
        | PeerEvent::TransferRequested(_)
        | PeerEvent::TransferProgress { .. }
        | PeerEvent::Registration(_) => EventLogLevel::Info,
        _ => EventLogLevel::Debug,
    }
}

pub(crate) fn log(ctx: &PeerContext, event: &PeerEvent) {
    let configured = ctx.policies().log_level;
    let needed = level_of(event);
    if configured == EventLogLevel::Off || configured < needed {
        return;
    }
    let (peer, kind, call) = (&ctx.name, event.event_type(), event.call_id().map(|c| c.to_string()).unwrap_or_default());
    if configured == EventLogLevel::Trace {
        tracing::info!(%peer, event = %kind, %call, details = ?event, "peer event");
    } else if needed == EventLogLevel::ErrorOnly {
        tracing::error!(%peer, event = %kind, %call, "peer event");
    } else if needed == EventLogLevel::ErrorAndWarn {
        tracing::warn!(%peer, event = %kind, %call, "peer event");
    } else if needed == EventLogLevel::Info {
        tracing::info!(%peer, event = %kind, %call, "peer event");
    } else {
        tracing::debug!(%peer, event = %kind, %call, "peer event");
    }
}

async fn dispatch(ctx: &Arc<PeerContext>, event: PeerEvent) {
    let handler = ctx.handler();
    let h: Option<&dyn CallHandler> = handler.as_deref();
    match event {
        PeerEvent::IncomingCall(incoming) => {
            let decision = match h {
                Some(h) => h.on_incoming_call(&incoming).await,
                None => CallDecision::Policy,
            };
            if !incoming.is_decided() {
                super::defaults::incoming(ctx, incoming, decision).await;
            }
        }
        PeerEvent::CallEstablished(call) => {
            if let Some(h) = h {
                let (local, remote) = (call.local_sdp(), call.remote_sdp());
                h.on_call_established(&call, local.as_deref(), remote.as_deref()).await;
            }
        }
        PeerEvent::CallEnded { call, reason } => {
            if let Some(h) = h {
                if let super::call::CallState::Failed(status) = call.state() {
                    h.on_call_failed(&call, status, &reason).await;
                }
                h.on_call_ended(&call, &reason).await;
            }
        }
        PeerEvent::StateChanged(e) => {
            if let Some(h) = h {
                h.on_call_state_changed(&e).await;
            }
        }
        PeerEvent::MediaFlow(e) => {
            if let Some(h) = h {
                h.on_media_flow(&e).await;
            }
        }
        PeerEvent::Dtmf(e) => {
            let handled = match h {
                Some(h) => h.on_dtmf(&e).await,
                None => false,
            };
            if !handled {
                super::defaults::dtmf(ctx, h, &e).await;
            }
        }
        PeerEvent::MediaQuality(ref e) => {
            if !matches!(h, Some(h) if h.on_media_quality(e).await) {
                super::defaults::unhandled(ctx, event);
            }
        }
        PeerEvent::Warning(ref e) => {
            if !matches!(h, Some(h) if h.on_warning(e).await) {
                super::defaults::unhandled(ctx, event);
            }
        }
        PeerEvent::TransferRequested(ref request) => {
            let decision = match h {
                Some(h) => h.on_transfer_request(request).await,
                None => TransferDecision::Policy,
            };
            match decision {
                TransferDecision::Policy => super::defaults::transfer(ctx, event).await,
                d => {
                    request.decider.decide(d);
                }
            }
        }
        PeerEvent::TransferProgress { ref call_id, status, ref reason } => {
            if let (Some(h), Some(call)) = (h, ctx.call(call_id)) {
                h.on_transfer_progress(&call, status, reason).await;
            }
        }
        PeerEvent::HoldRequested(ref request) => {
            let decision = match h {
                Some(h) => h.on_hold_request(request).await,
                None => HoldDecision::Policy,
            };
            match decision {
                HoldDecision::Accept => {
                    request.accept();
                }
                HoldDecision::Reject => {
                    request.reject();
                }
                HoldDecision::Policy => {
                    // Only `HoldPolicy::RequireManual` asks: nobody answered, so refuse.
                    request.reject();
                    super::defaults::unhandled(ctx, event);
                }
            }
        }
        PeerEvent::Registration(e) => {
            if let Some(h) = h {
                h.on_registration(&e).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use tokio::sync::{Notify, Semaphore};

    use super::super::events::{WarningCategory, WarningEvent};
    use super::super::policies::BufferOverflowPolicy;
    use super::super::{PeerError, SimplePeer};
    use super::*;

    /// A slow application: the first event blocks the handler until the test opens the gate.
    struct Gated {
        entered: Notify,
        gate: Semaphore,
        seen: Mutex<Vec<usize>>,
    }

    impl Default for Gated {
        fn default() -> Self {
            Gated { entered: Notify::new(), gate: Semaphore::new(0), seen: Mutex::new(Vec::new()) }
        }
    }

    #[async_trait]
    impl CallHandler for Gated {
        async fn on_warning(&self, event: &WarningEvent) -> bool {
            if self.seen.lock().unwrap().is_empty() {
                self.entered.notify_one();
                let _ = self.gate.acquire().await.map(|p| p.forget());
            }
            self.seen.lock().unwrap().push(event.message.parse().unwrap());
            true
        }
    }

    fn warning(i: usize) -> PeerEvent {
        PeerEvent::Warning(WarningEvent { call_id: None, category: WarningCategory::Resource, message: i.to_string() })
    }

    /// 10,000 events in a burst while the handler is stuck on the first: what reaches the
    /// handler, and how many pushes failed.
    async fn burst(policy: BufferOverflowPolicy) -> (Vec<usize>, usize) {
        const N: usize = 10_000;
        let handler = Arc::new(Gated::default());
        let peer = SimplePeer::builder("burst")
            .event_buffer_size(100)
            .buffer_overflow_policy(policy)
            .handler(handler.clone())
            .build()
            .await
            .unwrap();
        let entered = handler.entered.notified();
        peer.ctx.emit(warning(0)).await;
        tokio::time::timeout(Duration::from_secs(5), entered).await.expect("the handler takes the first event");
        let events = peer.ctx.events.clone();
        let producer = tokio::spawn(async move {
            let mut failed = 0;
            for i in 1..N {
                if let Err(PeerError::EventBufferFull { .. }) = events.push(warning(i)).await {
                    failed += 1;
                }
            }
            failed
        });
        if policy != BufferOverflowPolicy::Block {
            // Every push has returned before the handler moves again.
            let failed = producer.await.unwrap();
            handler.gate.add_permits(1);
            wait_drained(&peer, &handler).await;
            return (handler.seen.lock().unwrap().clone(), failed);
        }
        handler.gate.add_permits(1);
        let failed = producer.await.unwrap();
        wait_drained(&peer, &handler).await;
        (handler.seen.lock().unwrap().clone(), failed)
    }

    async fn wait_drained(peer: &SimplePeer, handler: &Gated) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let s = peer.event_stats();
            let delivered = s.received - s.dropped_oldest - s.dropped_newest - s.refused;
            if handler.seen.lock().unwrap().len() as u64 == delivered {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "events still in flight: {s:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_burst_of_10000_events_loses_exactly_what_the_overflow_policy_says() {
        let (seen, failed) = burst(BufferOverflowPolicy::DropOldest).await;
        assert_eq!((seen[0], seen.len(), failed), (0, 101, 0));
        assert_eq!(seen[1..], (9900..10_000).collect::<Vec<_>>()[..], "the newest 100 survive");

        let (seen, failed) = burst(BufferOverflowPolicy::DropNewest).await;
        assert_eq!((seen.len(), failed), (101, 0));
        assert_eq!(seen, (0..=100).collect::<Vec<_>>(), "the first 100 waiting survive");

        let (seen, failed) = burst(BufferOverflowPolicy::ReturnError).await;
        assert_eq!(seen, (0..=100).collect::<Vec<_>>());
        assert_eq!(failed, 9899, "every refused event was returned to its producer");

        let (seen, failed) = burst(BufferOverflowPolicy::ExpandBuffer { max_size: 1000 }).await;
        assert_eq!((seen.len(), failed), (1001, 0));
        assert_eq!(seen[1..], (9000..10_000).collect::<Vec<_>>()[..], "grown to 1000, then the oldest go");

        let (seen, failed) = burst(BufferOverflowPolicy::Block).await;
        assert_eq!((seen, failed), ((0..10_000).collect::<Vec<_>>(), 0), "Block loses nothing");
    }
}
