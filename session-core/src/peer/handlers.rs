//! Built-in handlers (seed 004): answer everything, queue calls for someone to take them,
//! route by rules, and compose several handlers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::call::Call;
use super::events::{
    DtmfEvent, HoldDecision, HoldRequest, MediaFlowEvent, MediaQualityEvent, RegistrationEvent, StateChangeEvent,
    TransferDecision, TransferRequest, WarningEvent,
};
use super::handler::{CallDecision, CallHandler};
use super::incoming::IncomingCall;
use super::policies::TimeoutAction;

/// Accepts every incoming call.
#[derive(Debug, Default, Clone, Copy)]
pub struct AutoAnswerHandler;

#[async_trait]
impl CallHandler for AutoAnswerHandler {
    async fn on_incoming_call(&self, _call: &IncomingCall) -> CallDecision {
        CallDecision::Accept
    }
}

/// Keeps incoming calls ringing in a queue until taken with [`QueueHandler::next_call`];
/// a call not taken within `timeout` is refused with `480`, and a full queue answers `486`.
pub struct QueueHandler {
    max_queue_size: usize,
    timeout: Duration,
    calls: Mutex<VecDeque<IncomingCall>>,
    arrived: Notify,
}

impl QueueHandler {
    pub fn new(max_queue_size: usize, timeout: Duration) -> Self {
        QueueHandler { max_queue_size, timeout, calls: Mutex::new(VecDeque::new()), arrived: Notify::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<IncomingCall>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls waiting (decided ones are dropped first).
    pub fn len(&self) -> usize {
        let mut q = self.lock();
        q.retain(|c| !c.is_decided());
        q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The longest-waiting call still undecided.
    pub async fn next_call(&self) -> IncomingCall {
        loop {
            let notified = self.arrived.notified();
            {
                let mut q = self.lock();
                while let Some(c) = q.pop_front() {
                    if !c.is_decided() {
                        return c;
                    }
                }
            }
            notified.await;
        }
    }
}

#[async_trait]
impl CallHandler for QueueHandler {
    async fn on_incoming_call(&self, call: &IncomingCall) -> CallDecision {
        let mut q = self.lock();
        q.retain(|c| !c.is_decided());
        if q.len() >= self.max_queue_size {
            return CallDecision::Reject(486);
        }
        q.push_back(call.clone());
        drop(q);
        self.arrived.notify_one();
        CallDecision::DeferFor(self.timeout, TimeoutAction::Reject)
    }
}

/// What a routing rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    Accept,
    Reject(u16),
    /// `302` to this URI.
    Redirect(String),
    /// Leave it to the incoming call policy.
    Policy,
}

/// Routes incoming calls by the called user: the first rule whose pattern matches decides.
/// A pattern is a user name, a prefix ending in `*` (`"sales*"`), or `*` for anything.
#[derive(Debug, Clone, Default)]
pub struct RoutingHandler {
    rules: Vec<(String, RouteAction)>,
}

impl RoutingHandler {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn route(mut self, pattern: &str, action: RouteAction) -> Self {
        self.rules.push((pattern.to_owned(), action));
        self
    }

    fn matches(pattern: &str, user: &str) -> bool {
        match pattern.strip_suffix('*') {
            Some(prefix) => user.starts_with(prefix),
            None => pattern == user,
        }
    }
}

#[async_trait]
impl CallHandler for RoutingHandler {
    async fn on_incoming_call(&self, call: &IncomingCall) -> CallDecision {
        let user = &call.info().target_user;
        match self.rules.iter().find(|(p, _)| Self::matches(p, user)).map(|(_, a)| a) {
            Some(RouteAction::Accept) => CallDecision::Accept,
            Some(RouteAction::Reject(s)) => CallDecision::Reject(*s),
            Some(RouteAction::Redirect(uri)) => CallDecision::Redirect(uri.clone()),
            Some(RouteAction::Policy) | None => CallDecision::Policy,
        }
    }
}

/// Several handlers: for a decision, the first that decides wins; notifications go to all.
#[derive(Clone, Default)]
pub struct CompositeHandler {
    handlers: Vec<Arc<dyn CallHandler>>,
}

impl CompositeHandler {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, handler: Arc<dyn CallHandler>) -> Self {
        self.handlers.push(handler);
        self
    }
}

#[async_trait]
impl CallHandler for CompositeHandler {
    async fn on_incoming_call(&self, call: &IncomingCall) -> CallDecision {
        for h in &self.handlers {
            let d = h.on_incoming_call(call).await;
            if d != CallDecision::Policy {
                return d;
            }
        }
        CallDecision::Policy
    }

    async fn on_call_established(&self, call: &Call, local_sdp: Option<&str>, remote_sdp: Option<&str>) {
        for h in &self.handlers {
            h.on_call_established(call, local_sdp, remote_sdp).await;
        }
    }

    async fn on_call_failed(&self, call: &Call, status: u16, reason: &str) {
        for h in &self.handlers {
            h.on_call_failed(call, status, reason).await;
        }
    }

    async fn on_call_ended(&self, call: &Call, reason: &str) {
        for h in &self.handlers {
            h.on_call_ended(call, reason).await;
        }
    }

    async fn on_call_state_changed(&self, event: &StateChangeEvent) {
        for h in &self.handlers {
            h.on_call_state_changed(event).await;
        }
    }

    async fn on_media_quality(&self, event: &MediaQualityEvent) -> bool {
        let mut handled = false;
        for h in &self.handlers {
            handled |= h.on_media_quality(event).await;
        }
        handled
    }

    async fn on_dtmf(&self, event: &DtmfEvent) -> bool {
        for h in &self.handlers {
            if h.on_dtmf(event).await {
                return true;
            }
        }
        false
    }

    async fn on_dtmf_command(&self, call: &Call, name: &str) {
        for h in &self.handlers {
            h.on_dtmf_command(call, name).await;
        }
    }

    async fn on_media_flow(&self, event: &MediaFlowEvent) {
        for h in &self.handlers {
            h.on_media_flow(event).await;
        }
    }

    async fn on_warning(&self, event: &WarningEvent) -> bool {
        let mut handled = false;
        for h in &self.handlers {
            handled |= h.on_warning(event).await;
        }
        handled
    }

    async fn on_transfer_request(&self, request: &TransferRequest) -> TransferDecision {
        for h in &self.handlers {
            let d = h.on_transfer_request(request).await;
            if d != TransferDecision::Policy {
                return d;
            }
        }
        TransferDecision::Policy
    }

    async fn on_transfer_progress(&self, call: &Call, status: u16, reason: &str) {
        for h in &self.handlers {
            h.on_transfer_progress(call, status, reason).await;
        }
    }

    async fn on_hold_request(&self, request: &HoldRequest) -> HoldDecision {
        for h in &self.handlers {
            let d = h.on_hold_request(request).await;
            if d != HoldDecision::Policy {
                return d;
            }
        }
        HoldDecision::Policy
    }

    async fn on_registration(&self, event: &RegistrationEvent) {
        for h in &self.handlers {
            h.on_registration(event).await;
        }
    }
}
