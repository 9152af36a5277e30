//! The builder's policies (seed 000): what the peer does by itself with each kind of event
//! when no handler of the application took it. Variants and defaults are the seed's; each
//! variant's doc says exactly what it does here.

use std::time::Duration;

pub use crate::policy::{IncomingCallPolicy, TimeoutAction};

/// What happens to a transfer request (REFER) from the far end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TransferPolicy {
    /// `603 Decline` to every REFER.
    #[default]
    RejectAll,
    /// This status and reason to every REFER.
    RejectWithCode { status_code: u16, reason: String },
    /// Blind transfers (no `Replaces`) are accepted: `202`, the target is called, NOTIFYs
    /// report its progress, and the current call ends when the target answers. Attended
    /// ones are declined.
    AcceptBlind,
    /// Attended transfers (`Refer-To` with `Replaces`) are accepted as above; blind ones
    /// are declined.
    AcceptAttended,
    /// Blind and attended transfers are accepted.
    AcceptAll,
    /// Accepted (blind or attended) when the transferor's domain — the host of the
    /// REFER's `From` — is listed; declined otherwise.
    AcceptTrusted { trusted_domains: Vec<String> },
    /// A handler decides; without one the REFER is declined and counted as unhandled.
    RequireManual,
    /// `202` at once; the request waits in [`SimplePeer::next_transfer_request`](super::SimplePeer::next_transfer_request)
    /// up to `timeout_secs`, then `on_timeout` applies (`SendToVoicemail` declines).
    QueueWithTimeout { timeout_secs: u32, on_timeout: TimeoutAction },
    /// `202`, one NOTIFY ending the subscription, and nothing else: the call stays as it is.
    LogAndIgnore,
}

/// What happens to DTMF digits received in a call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DtmfPolicy {
    /// Dropped.
    Ignore,
    /// Logged at info, then dropped.
    LogOnly,
    /// Kept in the call's buffer (oldest dropped beyond `max_buffer_size`), read with
    /// [`Call::dtmf_buffer`](super::Call::dtmf_buffer); `clear_on_read` empties it on each read.
    Buffer { max_buffer_size: usize, clear_on_read: bool },
    /// Handed to the application at once: a handler's `on_dtmf`, else the call's
    /// [`Call::recv_dtmf`](super::Call::recv_dtmf) stream.
    #[default]
    ForwardImmediate,
    /// Digits accumulate per call; when they end with a command's pattern, its action runs
    /// and the accumulated digits are cleared.
    ExecuteCommands { commands: Vec<DtmfCommand> },
}

/// A digit pattern and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtmfCommand {
    /// Digits, e.g. `*1`, `#`, `123#`.
    pub pattern: String,
    pub action: DtmfAction,
}

impl DtmfCommand {
    pub fn new(pattern: &str, action: DtmfAction) -> Self {
        DtmfCommand { pattern: pattern.to_owned(), action }
    }
}

/// What a DTMF command does to its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtmfAction {
    Hold,
    Resume,
    /// Blind transfer of the call to this URI (the seed's `Transfer` had no target).
    Transfer(String),
    Mute,
    Unmute,
    Hangup,
    /// Delivered to the handler's `on_dtmf_command` with this name.
    Custom(String),
}

/// What happens when the far end puts us on hold, and what we send when we hold it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HoldPolicy {
    /// The far end's hold re-INVITE is refused with `488`.
    Reject,
    /// The far end's hold is accepted (our answer stops sending toward a party that
    /// stopped listening).
    #[default]
    Accept,
    /// As `Accept`; and while we hold the far end, this is played to it.
    AcceptWithMedia { media_source: HoldMediaSource },
    /// A handler decides; without one the hold is refused (`488`) and counted as unhandled.
    RequireManual,
}

/// What a held party hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldMediaSource {
    Silence,
    /// A short 440 Hz beep every 4 seconds.
    ToneBeep,
    /// A WAV file (any rate, mono or stereo), looped.
    MusicFile(String),
    /// A spoken message needs a prompt file: this is played like `MusicFile` (a path to a
    /// recorded message).
    Message(String),
}

/// What `SimplePeer::call` does when the far end refuses or does not answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CallFailurePolicy {
    /// `call` returns `PeerError::CallFailed` (logged at warn).
    #[default]
    ReturnError,
    /// The same target again after `initial_delay_ms`, doubling up to `max_delay_ms`, at most
    /// `max_retries` more times; then the error.
    RetryWithBackoff { max_retries: u32, initial_delay_ms: u64, max_delay_ms: u64 },
    /// These targets in turn; the last failure is the error.
    TryAlternates { alternates: Vec<String> },
    /// `call` returns the failed call as `Ok` (its state says `Failed`), nothing logged.
    Ignore,
    /// As `Ignore`, with a warning logged.
    LogAndContinue,
}

/// What happens when a call's media fails: no RTP from the far end for
/// `Config::media_timeout`, or the RTP socket fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaErrorPolicy {
    /// The call is hung up (BYE).
    TerminateCall,
    /// A re-INVITE offering the same media is sent, up to `max_attempts` times; then the
    /// call is hung up.
    AttemptRecovery { max_attempts: u32 },
    /// A warning event; the call goes on.
    ContinueDegraded,
    /// A warning event, and `Call::recv_audio` returns the error.
    #[default]
    ReturnError,
    /// Nothing.
    Ignore,
}

/// What happens when SIP requests of a call or a registration get no answer or cannot be
/// sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkErrorPolicy {
    /// Every active call is ended.
    TerminateAll,
    /// The request is sent again up to `max_retries` times: a call's re-INVITE at once, a
    /// registration every 5 seconds, each registration attempt waiting at most
    /// `timeout_secs` for its answer.
    RetryConnection { max_retries: u32, timeout_secs: u32 },
    /// Registration refreshes keep being retried (every 5 seconds, or ¾ of a shorter
    /// lifetime) until the registrar answers again; calls are left as they are.
    EnterOfflineMode,
    /// The operation returns `PeerError::Timeout` and a warning event says so.
    #[default]
    ReturnError,
}

impl NetworkErrorPolicy {
    pub(crate) fn retries(&self) -> (u32, Option<Duration>) {
        match *self {
            NetworkErrorPolicy::RetryConnection { max_retries, timeout_secs } => {
                (max_retries, Some(Duration::from_secs(u64::from(timeout_secs.max(1)))))
            }
            _ => (0, None),
        }
    }
}

/// What happens to an event no handler and no default behaviour took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnhandledEventPolicy {
    DropSilent,
    LogDebug,
    #[default]
    LogWarn,
    LogError,
    /// Kept; [`SimplePeer::check_unhandled`](super::SimplePeer::check_unhandled) returns it
    /// as an error.
    ReturnError,
    /// The event processor panics (it stops; meant for tests where an unhandled event is a bug).
    Panic,
    /// Kept for [`SimplePeer::unhandled_events`](super::SimplePeer::unhandled_events).
    StoreInHistory,
}

/// What happens when events arrive faster than the handlers take them and the buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BufferOverflowPolicy {
    /// The oldest waiting event is dropped for the new one.
    #[default]
    DropOldest,
    /// The new event is dropped.
    DropNewest,
    /// The producer (the call's task) waits for room — it can stall a call.
    Block,
    /// The new event is refused: counted, logged at error, and returned to the producer.
    ReturnError,
    /// The producer panics.
    Panic,
    /// The buffer grows up to `max_size` events; beyond, the oldest is dropped.
    ExpandBuffer { max_size: usize },
}

/// How much the event processor logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum EventLogLevel {
    Off,
    /// Failed registrations.
    ErrorOnly,
    /// Also warnings.
    ErrorAndWarn,
    /// Calls arriving, answered, ended, failed; transfers; registrations.
    #[default]
    Info,
    /// Also state changes, media flow, DTMF, quality reports.
    Debug,
    /// Also each event's full contents.
    Trace,
}

/// Every policy of a peer, changeable at run time with `SimplePeer::update_policies`.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    pub incoming_call: IncomingCallPolicy,
    pub transfer: TransferPolicy,
    pub dtmf: DtmfPolicy,
    pub hold: HoldPolicy,
    pub call_failure: CallFailurePolicy,
    pub media_error: MediaErrorPolicy,
    pub network_error: NetworkErrorPolicy,
    pub unhandled_event: UnhandledEventPolicy,
    pub buffer_overflow: BufferOverflowPolicy,
    pub log_level: EventLogLevel,
}

/// Policies one call uses instead of the peer's (`Call::set_policies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallPolicies {
    pub transfer: Option<TransferPolicy>,
    pub dtmf: Option<DtmfPolicy>,
    pub hold: Option<HoldPolicy>,
}
