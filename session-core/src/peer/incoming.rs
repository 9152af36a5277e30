//! A call that arrived and waits for a decision: accept it, reject it, or leave it.
//! Whoever decides first wins (a handler, a policy, the application, a timeout); the
//! others get `AlreadyDecided`.

use std::sync::atomic::Ordering;

use sip::message::Message;
use tokio::sync::oneshot;

use super::call::{Call, CallCommand, CallId, CallOptions};
use super::error::{PeerError, Result};
use crate::interceptor::CallInfo;

/// An incoming call. Clones refer to the same call.
#[derive(Debug, Clone)]
pub struct IncomingCall {
    call: Call,
    info: CallInfo,
}

impl IncomingCall {
    pub(crate) fn new(call: Call, invite: Option<Message>) -> Self {
        let from = invite.as_ref().and_then(|i| i.from().ok());
        let from_sip = from.as_ref().and_then(|f| f.uri.as_sip());
        let target = invite.as_ref().and_then(|i| i.request_uri().ok());
        let info = CallInfo {
            call_id: call.id().to_string(),
            target: target.as_ref().map(ToString::to_string).unwrap_or_default(),
            target_user: target.as_ref().and_then(|t| t.user().map(str::to_owned)).unwrap_or_default(),
            from_user: from_sip.and_then(|s| s.user.clone()).unwrap_or_default(),
            from_domain: from_sip.map(|s| s.host_port.host.to_string()).unwrap_or_default(),
        };
        IncomingCall { call, info }
    }

    pub fn id(&self) -> &CallId {
        self.call.id()
    }

    /// The caller's address (`From`).
    pub fn from(&self) -> &str {
        self.call.remote_uri()
    }

    /// Caller and callee as the interceptor and the policies see them.
    pub fn info(&self) -> &CallInfo {
        &self.info
    }

    /// The call, to watch it before deciding (its state is `Incoming`).
    pub fn call(&self) -> &Call {
        &self.call
    }

    fn claim(&self) -> Result<()> {
        if self.call.0.decided.swap(true, Ordering::AcqRel) {
            return Err(PeerError::AlreadyDecided);
        }
        Ok(())
    }

    /// Answers (200 with our SDP answer); the call is ready for audio when this returns.
    pub async fn accept(&self) -> Result<Call> {
        self.claim()?;
        let (done, rx) = oneshot::channel();
        self.call.0.commands.send(CallCommand::Answer { done }).map_err(|_| PeerError::CallEnded)?;
        rx.await.map_err(|_| PeerError::CallEnded)??;
        Ok(self.call.clone())
    }

    /// Answers with other negotiation options (required codecs, a strategy, another codec
    /// list) than the peer's (seed 001's `generate_sdp_answer_with_options`). Fails, leaving
    /// the call undecided, when they leave nothing in common with the caller's offer.
    pub async fn accept_with(&self, options: CallOptions) -> Result<Call> {
        self.claim()?;
        let (done, rx) = oneshot::channel();
        self.call.0.commands.send(CallCommand::AnswerWith { options, done }).map_err(|_| PeerError::CallEnded)?;
        match rx.await.map_err(|_| PeerError::CallEnded)? {
            Ok(()) => Ok(self.call.clone()),
            Err(e) => {
                // Still undecided: the application may accept otherwise or refuse.
                self.call.0.decided.store(false, Ordering::Release);
                Err(e)
            }
        }
    }

    /// Refuses with `status` (486 Busy Here, 603 Decline…).
    pub fn reject(&self, status: u16) -> Result<()> {
        self.reject_with(status, "", None)
    }

    /// Refuses with a status, a reason phrase and, for a 3xx, where to go instead.
    pub fn reject_with(&self, status: u16, reason: &str, contact: Option<&str>) -> Result<()> {
        if !(300..700).contains(&status) {
            return Err(PeerError::InvalidState("a rejection needs a status from 300 to 699"));
        }
        self.claim()?;
        let command = CallCommand::Reject { status, reason: reason.to_owned(), contact: contact.map(str::to_owned) };
        self.call.0.commands.send(command).map_err(|_| PeerError::CallEnded)
    }

    /// Whether someone has decided already.
    pub fn is_decided(&self) -> bool {
        self.call.is_decided()
    }
}
