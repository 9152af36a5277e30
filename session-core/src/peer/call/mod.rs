//! A call as the application holds it: [`Call`] is a cheap handle to the task that runs the
//! call (the call engine in its local mode, and the call's media). Everything the seeds
//! ask of a call is here: audio in and out, hold, mute, DTMF, transfers, recording, playing
//! files, statistics and quality monitoring (the media side in `audio.rs`).

mod actor;
mod audio;
mod control;
mod refer;
mod stats;
mod wire;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot, watch};

pub(crate) use self::actor::{Actor, Role};
pub use self::audio::NegotiatedConfig;
pub use self::stats::{CallStatistics, QualityThresholds};
use super::error::{PeerError, Result};
use super::events::PeerEvent;
pub(crate) use super::lock;
use super::media::{AudioFrame, MediaHandle};
use super::policies::{CallPolicies, TimeoutAction};
use super::queue::EventQueue;

/// A call's identity: its SIP Call-ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub Arc<str>);

impl CallId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a call is, as an application sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallState {
    /// Our INVITE is out.
    Calling,
    /// The far end rings (or plays early media).
    Ringing,
    /// A call arrived and waits for accept or reject.
    Incoming,
    Active,
    /// We put the far end on hold.
    OnHold,
    /// The far end put us on hold.
    RemoteHold,
    Terminating,
    Ended,
    /// Ended before it was answered, with this status.
    Failed(u16),
}

impl CallState {
    pub fn is_final(self) -> bool {
        matches!(self, CallState::Ended | CallState::Failed(_))
    }

    /// Answered and not over.
    pub fn is_established(self) -> bool {
        matches!(self, CallState::Active | CallState::OnHold | CallState::RemoteHold)
    }
}

/// How one call negotiates its media, instead of the peer's configuration (seed 001's
/// per-call SDP options and `media_config_override`). Unset fields follow the peer's.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Required codecs, custom SDP attributes, the codec choice strategy.
    pub negotiation: Option<media::sdp::NegotiationOptions>,
    /// The codecs offered or accepted, in order of preference.
    pub codecs: Option<Vec<media::sdp::Codec>>,
}

/// Which side placed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    Outgoing,
    Incoming,
}

/// The dialog's identity, for attended transfers (`Replaces`).
#[derive(Debug, Clone, Default)]
pub(crate) struct DialogInfo {
    pub local_tag: String,
    pub remote_tag: String,
    pub remote_target: String,
}

/// What a call's handle asks of its task.
#[allow(clippy::large_enum_variant)] // moved once through a channel
pub(crate) enum CallCommand {
    Answer {
        done: oneshot::Sender<Result<()>>,
    },
    /// Answer with other negotiation options than the peer's.
    AnswerWith {
        options: CallOptions,
        done: oneshot::Sender<Result<()>>,
    },
    Reject {
        status: u16,
        reason: String,
        contact: Option<String>,
    },
    /// Wait for someone to decide, then do `on_timeout`.
    Defer {
        timeout: Duration,
        on_timeout: TimeoutAction,
    },
    Hangup {
        done: oneshot::Sender<Result<()>>,
    },
    Hold {
        hold: bool,
        done: oneshot::Sender<Result<()>>,
    },
    EarlyMedia {
        done: oneshot::Sender<Result<()>>,
    },
    Transfer {
        refer_to: String,
        done: oneshot::Sender<Result<u16>>,
    },
    /// Internal: what became of a decision or a transfer started by the task.
    Internal(actor::Internal),
}

pub(crate) struct CallShared {
    pub id: CallId,
    /// Where we receive RTP.
    pub local_rtp: std::net::SocketAddr,
    /// The last session descriptions sent and received: (ours, theirs).
    pub sdp: Mutex<(Option<String>, Option<String>)>,
    /// What offer/answer agreed last (the media is set up from it).
    pub negotiated: Mutex<Option<media::sdp::Negotiated>>,
    pub direction: CallDirection,
    pub local_uri: String,
    pub remote_uri: String,
    pub state: watch::Sender<CallState>,
    pub commands: mpsc::UnboundedSender<CallCommand>,
    pub media: MediaHandle,
    pub audio_in: AsyncMutex<mpsc::Receiver<AudioFrame>>,
    pub dtmf_tx: mpsc::Sender<char>,
    pub dtmf_rx: AsyncMutex<mpsc::Receiver<char>>,
    pub dtmf_buffer: Mutex<String>,
    pub command_digits: Mutex<String>,
    pub policies: Mutex<CallPolicies>,
    pub decided: AtomicBool,
    pub media_failed: Mutex<Option<String>>,
    pub started: Instant,
    pub answered: Mutex<Option<Instant>>,
    pub ended: Mutex<Option<(Instant, String)>>,
    /// What the application attached to the call.
    pub metadata: Mutex<std::collections::BTreeMap<String, String>>,
    pub dialog: Mutex<Option<DialogInfo>>,
    pub monitor: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub events: Arc<EventQueue<PeerEvent>>,
}

/// A call. Clones refer to the same call.
#[derive(Clone)]
pub struct Call(pub(crate) Arc<CallShared>);

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call").field("id", &self.0.id).field("state", &self.state()).finish()
    }
}
impl Call {
    pub fn id(&self) -> &CallId {
        &self.0.id
    }

    pub fn direction(&self) -> CallDirection {
        self.0.direction
    }

    /// The far end's address (`From` of an incoming call, the target of an outgoing one).
    pub fn remote_uri(&self) -> &str {
        &self.0.remote_uri
    }

    pub fn local_uri(&self) -> &str {
        &self.0.local_uri
    }

    pub fn state(&self) -> CallState {
        *self.0.state.borrow()
    }

    /// Attaches `value` under `key` to the call: kept in its history record.
    pub fn set_metadata(&self, key: &str, value: &str) {
        lock(&self.0.metadata).insert(key.to_owned(), value.to_owned());
    }

    pub fn metadata(&self, key: &str) -> Option<String> {
        lock(&self.0.metadata).get(key).cloned()
    }

    /// How the call ended, once it has.
    pub fn end_reason(&self) -> Option<String> {
        lock(&self.0.ended).as_ref().map(|(_, r)| r.clone())
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> CallCommand) -> Result<T> {
        let (done, rx) = oneshot::channel();
        self.0.commands.send(make(done)).map_err(|_| PeerError::CallEnded)?;
        rx.await.map_err(|_| PeerError::CallEnded)?
    }

    /// Waits until the call is established (`Ok`) or over (`Err`), at most `timeout`.
    pub async fn wait_established(&self, timeout: Duration) -> Result<()> {
        let mut state = self.0.state.subscribe();
        let wait = state.wait_for(|s| s.is_established() || s.is_final());
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(s)) if s.is_established() => Ok(()),
            Ok(_) => Err(PeerError::CallEnded),
            Err(_) => Err(PeerError::Timeout),
        }
    }

    /// Waits until the call is over, at most `timeout`; the final state.
    pub async fn wait_ended(&self, timeout: Duration) -> Result<CallState> {
        let mut state = self.0.state.subscribe();
        match tokio::time::timeout(timeout, state.wait_for(|s| s.is_final())).await {
            Ok(Ok(s)) => Ok(*s),
            Ok(Err(_)) => Ok(self.state()),
            Err(_) => Err(PeerError::Timeout),
        }
    }

    /// Ends the call: BYE when answered, CANCEL while ringing, a refusal while incoming.
    pub async fn hangup(&self) -> Result<()> {
        if self.state().is_final() {
            return Ok(());
        }
        self.ask(|done| CallCommand::Hangup { done }).await
    }

    /// Before deciding on an incoming call: lets the caller hear us (183 Session Progress
    /// with our SDP answer); `send_audio` and `play_wav` reach the caller from then on, and
    /// `accept` later answers with the same description. Seed 001's `send_early_media`,
    /// with the SDP ours: the answer to the caller's offer, which the media must match.
    pub async fn send_early_media(&self) -> Result<()> {
        self.ask(|done| CallCommand::EarlyMedia { done }).await
    }

    /// Puts the far end on hold (re-INVITE with `sendonly`).
    pub async fn hold(&self) -> Result<()> {
        self.ask(|done| CallCommand::Hold { hold: true, done }).await
    }

    /// Takes the far end off hold (re-INVITE with `sendrecv`).
    pub async fn resume(&self) -> Result<()> {
        self.ask(|done| CallCommand::Hold { hold: false, done }).await
    }

    /// Blind transfer: asks the far end to call `target` (REFER). Returns the final status
    /// the far end reported (NOTIFY); on success our leg is hung up.
    pub async fn transfer(&self, target: &str) -> Result<u16> {
        let refer_to = format!("<{target}>");
        self.ask(|done| CallCommand::Transfer { refer_to, done }).await
    }

    /// Attended transfer: asks the far end of this call to replace `consultation` (our call
    /// with the transfer target) with a call of its own (REFER with `Replaces`).
    pub async fn transfer_attended(&self, consultation: &Call) -> Result<u16> {
        let info =
            lock(&consultation.0.dialog).clone().ok_or(PeerError::InvalidState("the consultation call is not established"))?;
        let escape = |s: &str| s.replace('%', "%25").replace(';', "%3B").replace('=', "%3D").replace('@', "%40");
        let replaces = format!("{};to-tag={};from-tag={}", consultation.id(), info.remote_tag, info.local_tag);
        let refer_to = format!("<{}?Replaces={}>", info.remote_target, escape(&replaces));
        self.ask(|done| CallCommand::Transfer { refer_to, done }).await
    }

    /// This call's policy overrides (unset ones follow the peer's).
    pub fn policies(&self) -> CallPolicies {
        lock(&self.0.policies).clone()
    }

    /// Overrides the peer's transfer, DTMF or hold policy for this call only.
    pub fn set_policies(&self, policies: CallPolicies) {
        *lock(&self.0.policies) = policies;
    }

    pub(crate) fn is_decided(&self) -> bool {
        self.0.decided.load(Ordering::Acquire)
    }
}
