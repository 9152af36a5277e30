//! Errors of the message layer: what can be wrong with the bytes of a SIP message.

use super::{HeaderName, Message};

/// Why a message (or one of its header values) could not be parsed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("bad start line: {0}")]
    BadStartLine(&'static str),
    #[error("bad header line: {0}")]
    BadHeaderLine(&'static str),
    #[error("message head is not valid UTF-8")]
    NotUtf8,
    #[error("malformed {0} header")]
    BadHeaderValue(HeaderName),
    #[error("malformed URI")]
    BadUri,
    #[error("malformed host")]
    BadHost,
    #[error("malformed parameter")]
    BadParam,
    #[error("missing Content-Length on a stream transport")]
    MissingContentLength,
    #[error("message too large")]
    TooLarge,
    /// A header line is malformed. `partial` holds the message without that line so a server
    /// can still answer a request with `400`.
    #[error("bad header line: {reason}")]
    MalformedHeaderLine { reason: &'static str, partial: Box<Message> },
    /// The head parsed but the message ended early. `partial` holds the head (with an empty
    /// body) so a server can still answer a request with `400`.
    #[error("truncated message: {reason}")]
    Truncated { reason: &'static str, partial: Box<Message> },
}

impl ParseError {
    /// A short reason phrase for a `400 Bad Request` answering this error.
    pub fn reason_phrase(&self) -> String {
        match self {
            ParseError::BadHeaderValue(h) => format!("Malformed {h} header"),
            ParseError::Truncated { reason, .. } => format!("Truncated message: {reason}"),
            other => {
                let s = other.to_string();
                let mut c = s.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().chain(c).collect(),
                    None => s,
                }
            }
        }
    }
}
