//! Configuration, counters and command errors of the transaction layer.

use super::timer::TimerConfig;
use crate::message::validate::ServerProfile;

/// Configuration of a transaction layer.
#[derive(Debug, Clone)]
pub struct Config {
    pub timers: TimerConfig,
    /// Decides 405/420/501 answers to new requests.
    pub profile: ServerProfile,
    /// Answer every new INVITE with `100 Trying` at once (§17.2.1).
    pub send_trying: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { timers: TimerConfig::default(), profile: ServerProfile::default(), send_trying: true }
    }
}

/// Counters, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub requests_received: u64,
    pub responses_received: u64,
    pub retransmissions_sent: u64,
    /// Retransmitted requests and responses absorbed by a transaction.
    pub retransmissions_absorbed: u64,
    /// Requests the layer refused itself (validation), with a status.
    pub requests_rejected: u64,
    /// Messages that could not be parsed or answered, and malformed responses.
    pub messages_dropped: u64,
    pub stray_responses: u64,
    pub client_transactions: usize,
    pub server_transactions: usize,
}

/// Why a transaction-user command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("no such transaction")]
    Unknown,
    #[error("a final response was already sent")]
    FinalAlreadySent,
    #[error("not a response")]
    NotAResponse,
    #[error("not a request")]
    NotARequest,
    #[error("the request has no Via branch with the RFC 3261 cookie")]
    NoBranch,
    #[error("a transaction with this branch and method exists")]
    DuplicateBranch,
    #[error("ACK is not sent in a transaction; use send_ack")]
    AckInTransaction,
    #[error("only an INVITE client transaction without a final response can be cancelled")]
    NotCancellable,
    #[error("could not build the request: {0}")]
    Build(&'static str),
}
