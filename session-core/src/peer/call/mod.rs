//! A call as the application holds it: [`Call`] is a cheap handle to the task that runs the
//! call (the call engine in its local mode, and the call's media). Everything the seeds
//! ask of a call is here: audio in and out, hold, mute, DTMF, transfers, recording, playing
//! files, statistics and quality monitoring.

mod actor;
mod control;
mod refer;
mod stats;
mod wire;

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use media::audio::recorder::{RecordingLayout, RecordingSummary};
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot, watch};

pub(crate) use self::actor::{Actor, Role};
pub use self::stats::{CallStatistics, QualityThresholds};
use super::error::{PeerError, Result};
use super::events::PeerEvent;
pub(crate) use super::lock;
use super::media::{AudioFrame, MediaCommand, MediaHandle, load_wav};
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

/// The call's audio as offer/answer agreed it.
#[derive(Debug, Clone, PartialEq)]
pub struct NegotiatedConfig {
    /// With the payload type the far end receives it on.
    pub codec: media::sdp::Codec,
    pub sample_rate: u32,
    pub ptime_ms: u32,
    pub local_rtp: std::net::SocketAddr,
    /// `None` while the far end wants nothing (port 0, `c=0.0.0.0`).
    pub remote_rtp: Option<std::net::SocketAddr>,
    /// Ours: whether we send and whether we receive.
    pub direction: media::sdp::Direction,
    /// The payload type we send RFC 4733 events with, if they were agreed.
    pub telephone_event: Option<u8>,
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

    /// The last session description we sent in this call (offer or answer).
    pub fn local_sdp(&self) -> Option<String> {
        lock(&self.0.sdp).0.clone()
    }

    /// The last session description the far end sent.
    pub fn remote_sdp(&self) -> Option<String> {
        lock(&self.0.sdp).1.clone()
    }

    /// What offer/answer agreed for the call's audio (seed 001's `get_negotiated_config`),
    /// once there is an answer: the codec, its rate and packet time, both RTP addresses,
    /// our direction and the RFC 4733 payload type.
    pub fn negotiated_config(&self) -> Option<NegotiatedConfig> {
        let n = lock(&self.0.negotiated).clone()?;
        Some(NegotiatedConfig {
            sample_rate: n.codec.clock_rate,
            codec: n.codec,
            ptime_ms: n.ptime,
            local_rtp: self.0.local_rtp,
            remote_rtp: n.remote_rtp,
            direction: n.direction,
            telephone_event: n.telephone_event.map(|t| t.send_payload_type),
        })
    }

    /// PCM sample rate of the call's frames (8000 for G.711, 48000 for Opus).
    pub fn sample_rate(&self) -> u32 {
        self.0.media.snapshot().sample_rate
    }

    /// Samples in one packet's worth of audio at [`Call::sample_rate`].
    pub fn frame_samples(&self) -> usize {
        let s = self.0.media.snapshot();
        (s.sample_rate * s.ptime_ms.max(10) / 1000) as usize
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> CallCommand) -> Result<T> {
        let (done, rx) = oneshot::channel();
        self.0.commands.send(make(done)).map_err(|_| PeerError::CallEnded)?;
        rx.await.map_err(|_| PeerError::CallEnded)?
    }

    /// Sends PCM (any rate: it is converted; any length: it is cut into packets). The
    /// caller paces it (real time), or uses [`Call::play_wav`].
    pub async fn send_audio(&self, frame: AudioFrame) -> Result<()> {
        if self.state().is_final() {
            return Err(PeerError::CallEnded);
        }
        self.0.media.send(MediaCommand::Audio(frame))
    }

    /// The next frame from the far end, played out through the jitter buffer (a lost packet
    /// comes as a concealment frame). `Err(CallEnded)` once the call is over.
    pub async fn recv_audio(&self) -> Result<AudioFrame> {
        if let Some(why) = lock(&self.0.media_failed).clone() {
            return Err(PeerError::Media(why));
        }
        next_or_ended(&mut *self.0.audio_in.lock().await, self.0.state.subscribe()).await
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

    /// Stops (or restarts) sending our audio; the far end hears silence.
    pub fn set_muted(&self, muted: bool) -> Result<()> {
        self.0.media.send(MediaCommand::Mute(muted))
    }

    /// Sends one DTMF digit (RFC 4733) lasting `duration`; returns once it is sent.
    pub async fn send_dtmf(&self, digit: char, duration: Duration) -> Result<()> {
        let (done, rx) = oneshot::channel();
        self.0.media.send(MediaCommand::Dtmf { digit, duration, done })?;
        rx.await.map_err(|_| PeerError::CallEnded)?
    }

    /// Sends digits one after the other, 100 ms each.
    pub async fn send_dtmf_string(&self, digits: &str) -> Result<()> {
        for d in digits.chars() {
            self.send_dtmf(d, Duration::from_millis(100)).await?;
        }
        Ok(())
    }

    /// The next digit received (policy `ForwardImmediate` without a handler taking it).
    /// `Err(CallEnded)` once the call is over and no digit is left.
    pub async fn recv_dtmf(&self) -> Result<char> {
        next_or_ended(&mut *self.0.dtmf_rx.lock().await, self.0.state.subscribe()).await
    }

    /// Digits kept by the policy `DtmfPolicy::Buffer`; emptied when it says `clear_on_read`.
    pub fn dtmf_buffer(&self) -> String {
        let clear = matches!(self.policies().dtmf, Some(super::policies::DtmfPolicy::Buffer { clear_on_read: true, .. }));
        let mut buffer = lock(&self.0.dtmf_buffer);
        if clear { std::mem::take(&mut *buffer) } else { buffer.clone() }
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

    /// Records both directions to a WAV file (per-leg: channel 0 ours, 1 theirs; or mixed).
    pub async fn start_recording(&self, path: impl AsRef<Path>, layout: RecordingLayout) -> Result<()> {
        let (done, rx) = oneshot::channel();
        self.0.media.send(MediaCommand::Record { path: path.as_ref().to_path_buf(), layout, done })?;
        rx.await.map_err(|_| PeerError::CallEnded)?
    }

    /// Finishes the recording; what was written.
    pub async fn stop_recording(&self) -> Result<Option<RecordingSummary>> {
        let (done, rx) = oneshot::channel();
        self.0.media.send(MediaCommand::StopRecording { done })?;
        rx.await.map_err(|_| PeerError::CallEnded)?
    }

    /// Plays a WAV file into the call, in real time; returns when it has been played (or
    /// replaced, or the call ended). Application audio is ignored meanwhile.
    pub async fn play_wav(&self, path: impl AsRef<Path>) -> Result<()> {
        self.play(load_wav(path)?, false).await
    }

    /// Plays PCM into the call (looped until [`Call::stop_playing`] when `looped`).
    pub async fn play(&self, frame: AudioFrame, looped: bool) -> Result<()> {
        let (done, rx) = oneshot::channel();
        self.0.media.send(MediaCommand::Play { frame, looped, done })?;
        if looped {
            return Ok(());
        }
        rx.await.map_err(|_| PeerError::CallEnded)
    }

    pub fn stop_playing(&self) -> Result<()> {
        self.0.media.send(MediaCommand::StopPlaying)
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

/// The next item of `rx`, or `Err(CallEnded)` once the call is over and none is left.
async fn next_or_ended<T>(rx: &mut mpsc::Receiver<T>, mut state: watch::Receiver<CallState>) -> Result<T> {
    if state.borrow().is_final() {
        return rx.try_recv().map_err(|_| PeerError::CallEnded);
    }
    loop {
        tokio::select! {
            item = rx.recv() => return item.ok_or(PeerError::CallEnded),
            changed = state.changed() => {
                if changed.is_err() || state.borrow().is_final() {
                    return rx.try_recv().map_err(|_| PeerError::CallEnded);
                }
            }
        }
    }
}
