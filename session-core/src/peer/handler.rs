//! The application's handler (seed 001's extended `CallHandler`): async methods with default
//! bodies. A method that decides returns `…::Policy` (or `false`) by default, which hands the
//! event to the peer's policy; notifications have nothing to decide.

use std::time::Duration;

use async_trait::async_trait;

use super::call::Call;
use super::events::{
    DtmfEvent, HoldDecision, HoldRequest, MediaFlowEvent, MediaQualityEvent, RegistrationEvent, StateChangeEvent,
    TransferDecision, TransferRequest, WarningEvent,
};
use super::incoming::IncomingCall;
use super::policies::TimeoutAction;

/// What to do with an incoming call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallDecision {
    Accept,
    /// Refuse with this status.
    Reject(u16),
    /// `302` to this URI.
    Redirect(String),
    /// The handler keeps the call and decides later (`IncomingCall::accept`/`reject`); the
    /// peer's `incoming_timeout` still applies (then `480`).
    Defer,
    /// As `Defer`, with this time limit and what to do when it passes.
    DeferFor(Duration, TimeoutAction),
    /// Leave it to the incoming call policy.
    Policy,
}

/// Callbacks of a peer's events. Implement the ones you need.
#[async_trait]
pub trait CallHandler: Send + Sync {
    async fn on_incoming_call(&self, _call: &IncomingCall) -> CallDecision {
        CallDecision::Policy
    }

    /// The call was answered, with the session descriptions of the exchange: ours and the
    /// far end's (seed 001).
    async fn on_call_established(&self, _call: &Call, _local_sdp: Option<&str>, _remote_sdp: Option<&str>) {}

    async fn on_call_ended(&self, _call: &Call, _reason: &str) {}

    /// A call ended before it was answered (either way), with the status that ended it;
    /// called before `on_call_ended` (seed 002).
    async fn on_call_failed(&self, _call: &Call, _status: u16, _reason: &str) {}

    async fn on_call_state_changed(&self, _event: &StateChangeEvent) {}

    /// `true` when handled; otherwise the unhandled event policy applies.
    async fn on_media_quality(&self, _event: &MediaQualityEvent) -> bool {
        false
    }

    /// `true` when handled; otherwise the DTMF policy applies.
    async fn on_dtmf(&self, _event: &DtmfEvent) -> bool {
        false
    }

    /// A `DtmfAction::Custom` command matched.
    async fn on_dtmf_command(&self, _call: &Call, _name: &str) {}

    async fn on_media_flow(&self, _event: &MediaFlowEvent) {}

    /// `true` when handled; otherwise the unhandled event policy applies.
    async fn on_warning(&self, _event: &WarningEvent) -> bool {
        false
    }

    async fn on_transfer_request(&self, _request: &TransferRequest) -> TransferDecision {
        TransferDecision::Policy
    }

    async fn on_transfer_progress(&self, _call: &Call, _status: u16, _reason: &str) {}

    async fn on_hold_request(&self, _request: &HoldRequest) -> HoldDecision {
        HoldDecision::Policy
    }

    async fn on_registration(&self, _event: &RegistrationEvent) {}
}
