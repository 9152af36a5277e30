//! What a peer tells the application (seed 001's event structs), delivered by the event
//! processor to a [`CallHandler`](super::CallHandler) or, failing that, to the policies.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use media::quality::QualityAlertLevel;
use tokio::sync::oneshot;

use super::call::{Call, CallId, CallState};
use super::incoming::IncomingCall;

/// One event.
#[derive(Debug, Clone)]
pub enum PeerEvent {
    /// A call arrived and waits for a decision.
    IncomingCall(IncomingCall),
    /// A call was answered (either way).
    CallEstablished(Call),
    /// A call ended; `reason` says how (`"BYE from far end"`, `"486 Busy Here"`…).
    CallEnded {
        call: Call,
        reason: String,
    },
    StateChanged(StateChangeEvent),
    MediaQuality(MediaQualityEvent),
    Dtmf(DtmfEvent),
    MediaFlow(MediaFlowEvent),
    Warning(WarningEvent),
    /// The far end asks us to transfer a call (REFER).
    TransferRequested(TransferRequest),
    /// A transfer we asked for progresses (NOTIFY with a status line).
    TransferProgress {
        call_id: CallId,
        status: u16,
        reason: String,
    },
    /// The far end puts us on hold (or takes us off it) and a decision is needed.
    HoldRequested(HoldRequest),
    Registration(RegistrationEvent),
}

/// The kind of an event, to register handlers and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    IncomingCall,
    CallEstablished,
    CallEnded,
    StateChanged,
    MediaQuality,
    Dtmf,
    MediaFlow,
    Warning,
    TransferRequested,
    TransferProgress,
    HoldRequested,
    Registration,
}

impl PeerEvent {
    pub fn event_type(&self) -> EventType {
        match self {
            PeerEvent::IncomingCall(_) => EventType::IncomingCall,
            PeerEvent::CallEstablished(_) => EventType::CallEstablished,
            PeerEvent::CallEnded { .. } => EventType::CallEnded,
            PeerEvent::StateChanged(_) => EventType::StateChanged,
            PeerEvent::MediaQuality(_) => EventType::MediaQuality,
            PeerEvent::Dtmf(_) => EventType::Dtmf,
            PeerEvent::MediaFlow(_) => EventType::MediaFlow,
            PeerEvent::Warning(_) => EventType::Warning,
            PeerEvent::TransferRequested(_) => EventType::TransferRequested,
            PeerEvent::TransferProgress { .. } => EventType::TransferProgress,
            PeerEvent::HoldRequested(_) => EventType::HoldRequested,
            PeerEvent::Registration(_) => EventType::Registration,
        }
    }

    /// The call the event is about, if any.
    pub fn call_id(&self) -> Option<&CallId> {
        match self {
            PeerEvent::IncomingCall(c) => Some(c.id()),
            PeerEvent::CallEstablished(c) | PeerEvent::CallEnded { call: c, .. } => Some(c.id()),
            PeerEvent::StateChanged(e) => Some(&e.call_id),
            PeerEvent::MediaQuality(e) => Some(&e.call_id),
            PeerEvent::Dtmf(e) => Some(&e.call_id),
            PeerEvent::MediaFlow(e) => Some(&e.call_id),
            PeerEvent::Warning(e) => e.call_id.as_ref(),
            PeerEvent::TransferRequested(r) => Some(r.call.id()),
            PeerEvent::TransferProgress { call_id, .. } => Some(call_id),
            PeerEvent::HoldRequested(r) => Some(r.call.id()),
            PeerEvent::Registration(_) => None,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A call changed state.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChangeEvent {
    pub call_id: CallId,
    pub old_state: CallState,
    pub new_state: CallState,
    pub timestamp: Instant,
    pub reason: Option<String>,
}

/// A quality report on a call (each `QualityThresholds::check_interval` while monitored).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaQualityEvent {
    pub call_id: CallId,
    pub mos_score: f32,
    /// Percent of packets lost.
    pub packet_loss: f32,
    pub jitter_ms: f32,
    pub round_trip_ms: f32,
    pub alert_level: QualityAlertLevel,
    /// Which thresholds the figures crossed (empty: all within bounds).
    pub breached: Vec<&'static str>,
}

/// A DTMF digit received (RFC 4733).
#[derive(Debug, Clone, PartialEq)]
pub struct DtmfEvent {
    pub call_id: CallId,
    pub digit: char,
    pub duration_ms: u32,
    pub timestamp: Instant,
}

/// Which way media flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaDirection {
    Send,
    Receive,
    Both,
}

/// Media started or stopped flowing.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaFlowEvent {
    pub call_id: CallId,
    pub direction: MediaDirection,
    pub active: bool,
    pub codec: String,
}

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningCategory {
    Network,
    Media,
    Protocol,
    Resource,
}

/// A non-fatal problem.
#[derive(Debug, Clone, PartialEq)]
pub struct WarningEvent {
    pub call_id: Option<CallId>,
    pub category: WarningCategory,
    pub message: String,
}

/// Registration progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationEvent {
    Registered { registrar: String, expires: u32 },
    Refreshed { registrar: String, expires: u32 },
    Failed { registrar: String, reason: String },
    Unregistered { registrar: String },
}

/// A decision owed to the peer, taken once (by a handler, a policy or a timeout).
#[derive(Debug)]
pub(crate) struct Decider<T>(Mutex<Option<oneshot::Sender<T>>>);

impl<T> Decider<T> {
    pub(crate) fn new() -> (Arc<Self>, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        (Arc::new(Decider(Mutex::new(Some(tx)))), rx)
    }

    /// Takes the decision; `false` when it was taken already.
    pub(crate) fn decide(&self, value: T) -> bool {
        let sender = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        sender.is_some_and(|s| s.send(value).is_ok())
    }

    pub(crate) fn is_decided(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_none_or(|s| s.is_closed())
    }
}

/// How a transfer request is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferDecision {
    Accept,
    Reject {
        status: u16,
        reason: String,
    },
    /// `202` and a NOTIFY ending the subscription, without calling the target
    /// (`TransferPolicy::LogAndIgnore`).
    Ignore,
    /// Leave it to the transfer policy.
    Policy,
}

/// The far end asks us to call `target` (REFER).
#[derive(Debug, Clone)]
pub struct TransferRequest {
    /// The call the REFER arrived in.
    pub call: Call,
    /// The `Refer-To` URI, without its `Replaces` part.
    pub target: String,
    /// `Replaces` from the `Refer-To` (an attended transfer).
    pub replaces: Option<String>,
    /// Host of the REFER's `From`: who asks.
    pub transferor_domain: String,
    pub(crate) decider: Arc<Decider<TransferDecision>>,
}

impl TransferRequest {
    pub fn is_attended(&self) -> bool {
        self.replaces.is_some()
    }

    /// Carry the transfer out; `false` if it was decided already.
    pub fn accept(&self) -> bool {
        self.decider.decide(TransferDecision::Accept)
    }

    /// Decline it with `status`; `false` if it was decided already.
    pub fn reject(&self, status: u16, reason: &str) -> bool {
        self.decider.decide(TransferDecision::Reject { status, reason: reason.to_owned() })
    }
}

/// How a hold request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldDecision {
    Accept,
    Reject,
    Policy,
}

/// The far end's re-INVITE puts us on hold (`hold`) or takes us off it.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub call: Call,
    pub hold: bool,
    pub(crate) decider: Arc<Decider<bool>>,
}

impl HoldRequest {
    pub fn accept(&self) -> bool {
        self.decider.decide(true)
    }

    pub fn reject(&self) -> bool {
        self.decider.decide(false)
    }
}
