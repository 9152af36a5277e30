//! `SimplePeer`: an SDK to make and take real calls with real audio in a few lines — SIP
//! on our stack, media on the `media` crate, each call driven by the same leg state table
//! as the cluster's session nodes, and every event delivered by a background processor to
//! the application's [`CallHandler`] or to the builder's policies (seeds 000–004).
//! `docs/sdk.md` explains the design and each policy.
//!
//! # A peer-to-peer call
//!
//! ```no_run
//! # async fn demo() -> Result<(), session_core::peer::PeerError> {
//! use session_core::peer::{AudioFrame, SimplePeer};
//!
//! let alice = SimplePeer::new("alice").await?;
//! let call = alice.call("sip:bob@127.0.0.1:5061").await?;
//! call.send_audio(AudioFrame::silence(8000, 20)).await?;
//! let heard = call.recv_audio().await?;
//! call.hangup().await?;
//! # let _ = heard; Ok(()) }
//! ```
//!
//! # Taking a call
//!
//! ```no_run
//! # async fn demo() -> Result<(), session_core::peer::PeerError> {
//! # let bob = session_core::peer::SimplePeer::new("bob").await?;
//! if let Some(incoming) = bob.next_incoming().await {
//!     let call = incoming.accept().await?;
//!     let frame = call.recv_audio().await?;
//!     call.send_audio(frame).await?; // an echo
//! }
//! # Ok(()) }
//! ```
//!
//! # A simple SIP server that answers everything and plays a prompt
//!
//! ```no_run
//! # async fn demo() -> Result<(), session_core::peer::PeerError> {
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use session_core::peer::{AutoAnswerHandler, Call, CallHandler, CompositeHandler, SimplePeer};
//!
//! struct Greeter;
//!
//! #[async_trait]
//! impl CallHandler for Greeter {
//!     async fn on_call_established(&self, call: &Call, _local_sdp: Option<&str>, _remote_sdp: Option<&str>) {
//!         let call = call.clone();
//!         tokio::spawn(async move { call.play_wav("/var/prompts/welcome.wav").await });
//!     }
//! }
//!
//! let handler = CompositeHandler::new().with(Arc::new(AutoAnswerHandler)).with(Arc::new(Greeter));
//! let server = SimplePeer::builder("ivr").sip_port(5060).handler(Arc::new(handler)).build().await?;
//! # let _ = server; Ok(()) }
//! ```
//!
//! # A call-center queue: calls wait until an agent takes them
//!
//! ```no_run
//! # async fn demo() -> Result<(), session_core::peer::PeerError> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use session_core::peer::{QueueHandler, SimplePeer};
//!
//! let queue = Arc::new(QueueHandler::new(50, Duration::from_secs(120)));
//! let center = SimplePeer::builder("support").handler(queue.clone()).build().await?;
//! loop {
//!     let next = queue.next_call().await; // an agent is free
//!     let call = next.accept().await?;
//!     call.start_recording("/var/recordings/call.wav", session_core::peer::RecordingLayout::PerLeg { legs: 2 }).await?;
//! #   break;
//! }
//! # let _ = center; Ok(()) }
//! ```
//!
//! # An API bridge: another task (a WebSocket, HTTP…) drives calls by id
//!
//! ```no_run
//! # async fn demo() -> Result<(), session_core::peer::PeerError> {
//! use std::sync::Arc;
//! use session_core::peer::{CallId, SimplePeer};
//!
//! let peer = Arc::new(SimplePeer::new("bridge").await?);
//! let call = peer.call("sip:1000@127.0.0.1:5060").await?;
//! let id: CallId = call.id().clone(); // hand this to the API client
//! // …later, on a "hangup" command carrying the id:
//! if let Some(c) = peer.active_calls().into_iter().find(|c| c.id() == &id) {
//!     c.hangup().await?;
//! }
//! # Ok(()) }
//! ```
//!
//! # A phone registered to a call center, with policies
//!
//! ```no_run
//! # async fn demo() -> Result<(), session_core::peer::PeerError> {
//! use session_core::peer::*;
//!
//! let agent = SimplePeer::builder("alice")
//!     .credentials("alice", "wonderland")
//!     .incoming_call_policy(IncomingCallPolicy::AcceptAll)
//!     .transfer_policy(TransferPolicy::AcceptAll)
//!     .dtmf_policy(DtmfPolicy::ExecuteCommands {
//!         commands: vec![DtmfCommand::new("*1", DtmfAction::Hold), DtmfCommand::new("*2", DtmfAction::Resume)],
//!     })
//!     .event_history_size(Some(1000))
//!     .build()
//!     .await?;
//! let registration = agent.register("sip:127.0.0.1:5060").await?;
//! // … calls arrive and are answered by the policy …
//! registration.unregister().await?;
//! # Ok(()) }
//! ```

mod agent;
mod builder;
mod call;
mod client;
mod conference;
mod config;
mod context;
mod defaults;
mod error;
mod events;
mod handler;
mod handlers;
mod history;
mod incoming;
mod media;
mod policies;
mod processor;
mod queue;
mod registration;
mod subscribers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sip::endpoint::Endpoint;
use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio::task::JoinHandle;

pub use self::builder::SimplePeerBuilder;
pub use self::call::{Call, CallDirection, CallId, CallOptions, CallState, CallStatistics, NegotiatedConfig, QualityThresholds};
pub use self::conference::Conference;
pub use self::config::Config;
use self::context::PeerContext;
pub use self::error::{PeerError, Result};
pub use self::events::*;
pub use self::handler::{CallDecision, CallHandler};
pub use self::handlers::{AutoAnswerHandler, CompositeHandler, QueueHandler, RouteAction, RoutingHandler};
pub use self::history::{CallRecord, HistoryFilter};
pub use self::incoming::IncomingCall;
pub use self::media::{AudioFrame, MediaSnapshot, load_wav};
pub use self::policies::*;
pub use self::queue::EventStats;
pub use self::registration::{Registration, RegistrationInfo};
pub use self::subscribers::{EventFilter, EventPriority};
pub use ::media::audio::recorder::{RecordingLayout, RecordingSummary};
pub use ::media::quality::QualityAlertLevel;
pub use ::media::sdp::{Codec, NegotiationOptions, NegotiationStrategy};
pub use sip::transaction::TimerConfig;

/// Locks a mutex whose holder may have panicked: the data stays usable (every critical
/// section here leaves it consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A SIP endpoint that makes and takes calls. Dropping it hangs up its calls.
pub struct SimplePeer {
    ctx: Arc<PeerContext>,
    incoming: AsyncMutex<mpsc::UnboundedReceiver<IncomingCall>>,
    transfers: AsyncMutex<mpsc::UnboundedReceiver<TransferRequest>>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimplePeer {
    /// A peer with every default: SIP on a free port of 127.0.0.1.
    pub async fn new(name: &str) -> Result<SimplePeer> {
        SimplePeerBuilder::new(name).build().await
    }

    pub fn builder(name: &str) -> SimplePeerBuilder {
        SimplePeerBuilder::new(name)
    }

    fn start(b: SimplePeerBuilder, endpoint: Endpoint) -> SimplePeer {
        let (agent, mut invites) = agent::start(endpoint);
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let (transfers_tx, transfers) = mpsc::unbounded_channel();
        let ctx = Arc::new(PeerContext {
            name: b.name,
            events: Arc::new(queue::EventQueue::new(b.buffer_size, b.policies.buffer_overflow)),
            policies: std::sync::RwLock::new(b.policies),
            config: b.config,
            agent,
            calls: Mutex::new(Default::default()),
            incoming_tx,
            transfers_tx,
            handler: std::sync::RwLock::new(b.handler),
            registrations: Mutex::new(Default::default()),
            online: tokio::sync::watch::channel(true).0,
            subscribers: Mutex::new(Vec::new()),
            history_calls: Mutex::new(Default::default()),
            call_history_size: b.call_history_size,
            interceptor: b.interceptor,
            actions: b.actions,
            history: Mutex::new(Default::default()),
            history_size: b.history_size.unwrap_or(0),
            unhandled: Mutex::new(Default::default()),
        });
        let processor = tokio::spawn(processor::run(ctx.clone()));
        let accept_ctx = ctx.clone();
        let acceptor = tokio::spawn(async move {
            while let Some(invite) = invites.recv().await {
                accept_ctx.on_new_invite(invite).await;
            }
        });
        SimplePeer {
            ctx,
            incoming: AsyncMutex::new(incoming),
            transfers: AsyncMutex::new(transfers),
            tasks: vec![processor, acceptor],
        }
    }

    pub fn name(&self) -> &str {
        &self.ctx.name
    }

    /// Where the peer receives SIP (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.ctx.agent.local_addr()
    }

    /// `sip:name@ip:port`: what others call to reach this peer directly.
    pub fn uri(&self) -> String {
        self.ctx.local_uri()
    }

    /// Calls `target` (`sip:user@ip[:port]`); returns once answered. A refusal or no answer
    /// is handled by the call failure policy (by default: the error).
    pub async fn call(&self, target: &str) -> Result<Call> {
        self.call_with(target, CallOptions::default()).await
    }

    /// Offline (`NetworkErrorPolicy::EnterOfflineMode` and a registrar that stopped
    /// answering): calls placed now wait until it answers again.
    pub fn is_offline(&self) -> bool {
        !*self.ctx.online.borrow()
    }

    /// Calls `target` negotiating with `options` instead of the peer's configuration (seed
    /// 001's per-call `generate_sdp_offer_with_options`).
    pub async fn call_with(&self, target: &str, options: CallOptions) -> Result<Call> {
        // Offline, the call is queued until the network is back (at most the answer timeout).
        let mut online = self.ctx.online.subscribe();
        if !*online.borrow() {
            let back = tokio::time::timeout(self.ctx.config.answer_timeout, online.wait_for(|up| *up)).await;
            if !matches!(back, Ok(Ok(_))) {
                return Err(PeerError::Timeout);
            }
        }
        self.ctx.place_call(target, Vec::new(), options).await
    }

    /// The next incoming call left for the application to decide (policy `RequireManual`
    /// or `QueueWithTimeout`); `None` once the peer is shut down.
    pub async fn next_incoming(&self) -> Option<IncomingCall> {
        let mut rx = self.incoming.lock().await;
        while let Some(c) = rx.recv().await {
            if !c.is_decided() {
                return Some(c);
            }
        }
        None
    }

    /// [`SimplePeer::next_incoming`], waiting at most `timeout`.
    pub async fn next_incoming_within(&self, timeout: Duration) -> Option<IncomingCall> {
        tokio::time::timeout(timeout, self.next_incoming()).await.ok().flatten()
    }

    /// The next transfer request left for the application (policy `QueueWithTimeout`).
    pub async fn next_transfer_request(&self) -> Option<TransferRequest> {
        let mut rx = self.transfers.lock().await;
        while let Some(r) = rx.recv().await {
            if !r.decider.is_decided() {
                return Some(r);
            }
        }
        None
    }

    /// Calls not over yet.
    pub fn active_calls(&self) -> Vec<Call> {
        let calls = self.ctx.calls.lock().unwrap_or_else(|e| e.into_inner());
        let mut calls: Vec<Call> = calls.values().filter(|c| !c.state().is_final()).cloned().collect();
        calls.sort_by_key(|c| c.0.started);
        calls
    }

    /// Registers `sip:name@host` at `registrar` (`sip:host[:port]`), with the configured
    /// credentials when challenged; refreshed until [`Registration::unregister`].
    pub async fn register(&self, registrar: &str) -> Result<Registration> {
        registration::register(self.ctx.clone(), registrar).await
    }

    /// Replaces the application's handler.
    pub fn set_handler(&self, handler: std::sync::Arc<dyn CallHandler>) {
        *self.ctx.handler.write().unwrap_or_else(|e| e.into_inner()) = Some(handler);
    }

    pub fn policies(&self) -> Policies {
        self.ctx.policies()
    }

    /// Changes policies at run time; events after this follow the new ones.
    pub fn update_policies(&self, change: impl FnOnce(&mut Policies)) {
        let mut p = self.ctx.policies.write().unwrap_or_else(|e| e.into_inner());
        change(&mut p);
        self.ctx.events.set_policy(p.buffer_overflow);
    }

    /// The last events (as many as `event_history_size`), oldest first.
    pub fn event_history(&self) -> Vec<(Instant, PeerEvent)> {
        self.ctx.history.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    /// Events nobody handled, kept by `StoreInHistory` or `ReturnError`.
    pub fn unhandled_events(&self) -> Vec<PeerEvent> {
        self.ctx.unhandled.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    /// `Err` naming the oldest unhandled event not reported yet (policy `ReturnError`).
    pub fn check_unhandled(&self) -> Result<()> {
        match self.ctx.unhandled.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
            Some(e) => Err(PeerError::UnhandledEvent(e.event_type().to_string())),
            None => Ok(()),
        }
    }

    /// What the event buffer did so far.
    pub fn event_stats(&self) -> EventStats {
        self.ctx.events.stats()
    }

    /// Hangs up every call, waits for them to end (at most `timeout`), stops the peer.
    pub async fn shutdown(self, timeout: Duration) {
        let calls = self.active_calls();
        for c in &calls {
            let _ = tokio::time::timeout(timeout, c.hangup()).await;
        }
    }
}

impl Drop for SimplePeer {
    fn drop(&mut self) {
        self.ctx.hangup_all();
        self.ctx.events.close();
        for t in &self.tasks {
            t.abort();
        }
    }
}
