//! A call's media as the application uses it: audio in and out, DTMF, recording, playing
//! files, and what offer/answer agreed (codec, addresses, the SDPs exchanged).

use std::path::Path;
use std::time::Duration;

use media::audio::recorder::{RecordingLayout, RecordingSummary};
use tokio::sync::{mpsc, oneshot, watch};

use super::{Call, CallState, lock};
use crate::peer::error::{PeerError, Result};
use crate::peer::media::{AudioFrame, MediaCommand, load_wav};

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

impl Call {
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
        let clear = matches!(self.policies().dtmf, Some(crate::peer::policies::DtmfPolicy::Buffer { clear_on_read: true, .. }));
        let mut buffer = lock(&self.0.dtmf_buffer);
        if clear { std::mem::take(&mut *buffer) } else { buffer.clone() }
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
