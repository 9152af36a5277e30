//! What can go wrong for a user of the SDK, each error saying what to do about it.

use std::io;

/// An SDK error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    #[error("binding the peer's SIP or RTP sockets: {0}")]
    Bind(String),
    #[error("bad peer configuration: {0}")]
    Config(String),
    #[error("`{0}` is not a SIP URI we can call (sip:user@ip[:port])")]
    BadTarget(String),
    #[error("the call failed: {status} {reason}")]
    CallFailed { status: u16, reason: String },
    #[error("no answer from the far end (transaction timed out)")]
    Timeout,
    #[error("the call has ended")]
    CallEnded,
    #[error("the call is not in a state that allows this: {0}")]
    InvalidState(&'static str),
    #[error("this incoming call was already accepted, rejected or timed out")]
    AlreadyDecided,
    #[error("the far end refused: {status} {reason}")]
    Refused { status: u16, reason: String },
    #[error("media: {0}")]
    Media(String),
    #[error("registration failed: {0}")]
    Registration(String),
    #[error("the event buffer is full ({capacity} events) and the overflow policy is ReturnError")]
    EventBufferFull { capacity: usize },
    #[error("unhandled event {0} (the unhandled-event policy is ReturnError)")]
    UnhandledEvent(String),
    #[error("the peer has shut down")]
    Shutdown,
}

impl From<io::Error> for PeerError {
    fn from(e: io::Error) -> Self {
        PeerError::Bind(e.to_string())
    }
}

impl From<sip::endpoint::EndpointError> for PeerError {
    fn from(_: sip::endpoint::EndpointError) -> Self {
        PeerError::Shutdown
    }
}

pub type Result<T, E = PeerError> = std::result::Result<T, E>;
