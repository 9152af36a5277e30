//! A call's media: its RTP and RTCP sockets and the task that sends what the application
//! says (encoded with the negotiated codec, DTMF as RFC 4733 events), plays out what the far
//! end sends (jitter buffer, decoding, concealment) and records both directions. The
//! protocol parts are the `media` crate's; this is their runtime.

mod source;
mod task;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use media::audio::recorder::{RecordingLayout, RecordingSummary};
use media::dtmf::DtmfDigit;
use media::sdp::Negotiated;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

pub(crate) use self::source::hold_beep;
pub use self::source::load_wav;
use super::error::PeerError;

/// Mono 16-bit PCM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    pub samples: Vec<i16>,
    pub sample_rate: u32,
}

impl AudioFrame {
    pub fn new(samples: Vec<i16>, sample_rate: u32) -> Self {
        AudioFrame { samples, sample_rate }
    }

    /// `ms` of silence at `sample_rate`.
    pub fn silence(sample_rate: u32, ms: u32) -> Self {
        AudioFrame { samples: vec![0; (sample_rate * ms / 1000) as usize], sample_rate }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.sample_rate.max(1)))
    }
}

/// Media figures of a call so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaSnapshot {
    pub codec: String,
    pub sample_rate: u32,
    pub packets_sent: u64,
    pub octets_sent: u64,
    pub packets_received: u64,
    pub octets_received: u64,
    pub packets_lost: i64,
    /// Fraction of packets lost in the last report interval, 0-1.
    pub fraction_lost: f32,
    pub jitter_ms: f64,
    pub round_trip_ms: Option<f64>,
    pub ptime_ms: u32,
    /// Frames the application did not read in time (dropped, newest first).
    pub frames_dropped: u64,
    /// Datagrams on the RTP port that were not RTP of this call.
    pub garbage_packets: u64,
    pub last_received: Option<Instant>,
}

/// What the media task tells its call.
#[derive(Debug)]
pub(crate) enum MediaNotice {
    /// We started (or stopped) sending: a stream to a far end that listens, not muted.
    Sending(bool),
    Flow {
        receiving: bool,
    },
    Dtmf(DtmfDigit),
    /// No RTP from the far end for the media timeout.
    Timeout,
    Error(String),
}

pub(crate) enum MediaCommand {
    Configure(Negotiated),
    Audio(AudioFrame),
    Dtmf { digit: char, duration: Duration, done: oneshot::Sender<Result<(), PeerError>> },
    Mute(bool),
    Record { path: PathBuf, layout: RecordingLayout, done: oneshot::Sender<Result<(), PeerError>> },
    StopRecording { done: oneshot::Sender<Result<Option<RecordingSummary>, PeerError>> },
    Play { frame: AudioFrame, looped: bool, done: oneshot::Sender<()> },
    StopPlaying,
    Stop,
}

/// The application's side of a call's media.
pub(crate) struct MediaHandle {
    pub rtp_port: u16,
    pub commands: mpsc::UnboundedSender<MediaCommand>,
    pub snapshot: Arc<Mutex<MediaSnapshot>>,
}

impl MediaHandle {
    pub(crate) fn send(&self, command: MediaCommand) -> Result<(), PeerError> {
        self.commands.send(command).map_err(|_| PeerError::CallEnded)
    }

    /// Applies a negotiation outcome. The codec, rate and packet time are visible at once
    /// (an application reads them as soon as the call is answered); the task follows.
    pub(crate) fn configure(&self, negotiated: Negotiated) -> Result<(), PeerError> {
        {
            let mut snap = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
            snap.codec = negotiated.codec.name.clone();
            snap.sample_rate = pcm_rate(&negotiated.codec);
            snap.ptime_ms = negotiated.ptime.clamp(10, 60);
        }
        self.send(MediaCommand::Configure(negotiated))
    }

    pub(crate) fn snapshot(&self) -> MediaSnapshot {
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The PCM rate frames of `codec` have: Opus runs at 48 kHz, the others at their clock rate.
pub(crate) fn pcm_rate(codec: &media::sdp::Codec) -> u32 {
    if codec.name.eq_ignore_ascii_case("opus") { 48000 } else { codec.clock_rate }
}

/// Binds an even RTP port and the next one for RTCP in `range`, starting at a random place.
async fn bind_pair(ip: IpAddr, range: (u16, u16)) -> Result<(UdpSocket, UdpSocket, u16), PeerError> {
    let first = range.0 + (range.0 & 1);
    let pairs = (range.1.saturating_sub(first) / 2).max(1);
    let start = rand::random::<u16>() % pairs;
    for i in 0..pairs.min(512) {
        let port = first + ((start + i) % pairs) * 2;
        let Ok(rtp) = UdpSocket::bind(SocketAddr::new(ip, port)).await else { continue };
        let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await else { continue };
        return Ok((rtp, rtcp, port));
    }
    Err(PeerError::Bind(format!("no free RTP port pair in {}-{} on {ip}", range.0, range.1)))
}

/// Opens a call's media; the task waits for `Configure` before it sends anything.
pub(crate) async fn open(
    ip: IpAddr,
    range: (u16, u16),
    media_timeout: Duration,
    audio_out: mpsc::Sender<AudioFrame>,
    notices: mpsc::UnboundedSender<MediaNotice>,
) -> Result<MediaHandle, PeerError> {
    let (rtp, rtcp, rtp_port) = bind_pair(ip, range).await?;
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let snapshot = Arc::new(Mutex::new(MediaSnapshot::default()));
    task::spawn(task::Sockets { rtp, rtcp }, commands_rx, audio_out, notices, snapshot.clone(), media_timeout);
    Ok(MediaHandle { rtp_port, commands, snapshot })
}
