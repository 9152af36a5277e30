//! The media task of one call: RTP in and out, the playout clock, recording; RTCP, DTMF
//! sending and flow checks are in `side`.

mod side;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use media::audio::recorder::Recorder;
use media::codec::Resampler;
use media::endpoint::{Endpoint, Received};
use media::rtp as rtp_stream;
use media::rtp::rtcp;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Interval, MissedTickBehavior};

use self::side::rtcp_target;
use super::source::to_rate;
use super::{AudioFrame, MediaCommand, MediaNotice, MediaSnapshot};
use crate::peer::error::PeerError;

const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// Silence after which the far end's media counts as stopped (a flow event, not an error).
const FLOW_GAP: Duration = Duration::from_secs(2);

pub(super) struct Sockets {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

/// The negotiated stream, and where it goes.
struct Stream {
    ep: Endpoint,
    remote: Option<SocketAddr>,
    latched: bool,
    /// Packets, octets and losses of the sources received before the current one (a new
    /// SSRC starts its own RFC 3550 counts; the call's go on).
    earlier: (u64, u64, i64),
}

impl Stream {
    /// Packets, octets and losses received over the call, every source so far.
    fn received(&self) -> (u64, u64, i64) {
        let now = self.ep.receiver.stats().map_or((0, 0, 0), |r| (r.packets, r.octets, r.lost));
        (self.earlier.0 + now.0, self.earlier.1 + now.1, self.earlier.2 + now.2)
    }
}

struct Player {
    samples: Vec<i16>,
    position: usize,
    looped: bool,
    done: Option<oneshot::Sender<()>>,
}

/// Told when a digit has been sent.
type Done = oneshot::Sender<Result<(), PeerError>>;

struct PendingDigit {
    packets: VecDeque<(Instant, media::dtmf::DtmfPacket)>,
    timestamp: u32,
    done: Done,
}

struct Task {
    sockets: Sockets,
    stream: Option<Stream>,
    audio_out: mpsc::Sender<AudioFrame>,
    notices: mpsc::UnboundedSender<MediaNotice>,
    snapshot: Arc<Mutex<MediaSnapshot>>,
    media_timeout: Duration,
    muted: bool,
    outgoing: Vec<i16>,
    resampler: Option<Resampler>,
    recorder: Option<Recorder>,
    sent_for_recording: VecDeque<Vec<i16>>,
    player: Option<Player>,
    digits: VecDeque<(char, Duration, Done)>,
    digit: Option<PendingDigit>,
    sent_since_report: bool,
    /// Audio went out since the last playout tick (else the RTP clock is moved on by a frame).
    sent_this_tick: bool,
    receiving: bool,
    /// What the application was last told about our sending.
    sending: bool,
    timed_out: bool,
    started: Instant,
}

pub(super) fn spawn(
    sockets: Sockets,
    commands: mpsc::UnboundedReceiver<MediaCommand>,
    audio_out: mpsc::Sender<AudioFrame>,
    notices: mpsc::UnboundedSender<MediaNotice>,
    snapshot: Arc<Mutex<MediaSnapshot>>,
    media_timeout: Duration,
) {
    let task = Task {
        sockets,
        stream: None,
        audio_out,
        notices,
        snapshot,
        media_timeout,
        muted: false,
        outgoing: Vec::new(),
        resampler: None,
        recorder: None,
        sent_for_recording: VecDeque::new(),
        player: None,
        digits: VecDeque::new(),
        digit: None,
        sent_since_report: false,
        sent_this_tick: false,
        receiving: false,
        sending: false,
        timed_out: false,
        started: Instant::now(),
    };
    tokio::spawn(task.run(commands));
}

fn interval(period: Duration) -> Interval {
    let mut i = tokio::time::interval(period);
    i.set_missed_tick_behavior(MissedTickBehavior::Skip);
    i
}

impl Task {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<MediaCommand>) {
        let mut rtp_buf = vec![0u8; 2048];
        let mut rtcp_buf = vec![0u8; 2048];
        let mut playout = interval(Duration::from_millis(20));
        let mut reports = interval(RTCP_INTERVAL);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None | Some(MediaCommand::Stop) => break,
                    Some(MediaCommand::Configure(n)) => {
                        let period = Duration::from_millis(u64::from(n.ptime.clamp(10, 60)));
                        if playout.period() != period {
                            playout = interval(period);
                        }
                        self.configure(n);
                        self.check_sending();
                    }
                    Some(c) => self.command(c).await,
                },
                r = self.sockets.rtp.recv_from(&mut rtp_buf) => {
                    if let Ok((n, from)) = r {
                        self.on_rtp(&rtp_buf[..n], from);
                    } else if let Err(e) = r {
                        let _ = self.notices.send(MediaNotice::Error(format!("RTP socket: {e}")));
                    }
                }
                r = self.sockets.rtcp.recv_from(&mut rtcp_buf) => {
                    if let Ok((n, _)) = r {
                        self.on_rtcp(&rtcp_buf[..n]);
                    }
                }
                _ = playout.tick() => self.tick().await,
                _ = reports.tick() => self.report().await,
            }
        }
        if let Some(s) = &self.stream
            && let (Ok(bye), Some(to)) = (rtcp::build_bye(s.ep.sender.ssrc()), rtcp_target(s))
        {
            let _ = self.sockets.rtcp.send_to(&bye, to).await;
        }
        if let Some(r) = self.recorder.take() {
            let _ = r.finish();
        }
    }

    async fn command(&mut self, command: MediaCommand) {
        match command {
            MediaCommand::Audio(frame) => {
                if self.player.is_none() {
                    self.queue_audio(&frame).await;
                }
            }
            MediaCommand::Dtmf { digit, duration, done } => match &self.stream {
                Some(s) if s.ep.negotiated.telephone_event.is_some() => self.digits.push_back((digit, duration, done)),
                _ => {
                    let _ = done.send(Err(PeerError::Media("the far end did not accept telephone-event (RFC 4733)".into())));
                }
            },
            MediaCommand::Mute(m) => {
                self.muted = m;
                self.check_sending();
            }
            MediaCommand::Record { path, layout, done } => {
                let rate = self.stream.as_ref().map_or(8000, |s| s.ep.rate);
                let result = Recorder::create(&path, rate, layout).map_err(|e| PeerError::Media(e.to_string()));
                let _ = done.send(result.map(|r| {
                    self.recorder = Some(r);
                    self.sent_for_recording.clear();
                }));
            }
            MediaCommand::StopRecording { done } => {
                let result = self.recorder.take().map(|r| r.finish().map_err(|e| PeerError::Media(e.to_string()))).transpose();
                let _ = done.send(result);
            }
            MediaCommand::Play { frame, looped, done } => {
                let rate = self.stream.as_ref().map_or(frame.sample_rate, |s| s.ep.rate);
                self.finish_player();
                self.player = Some(Player { samples: to_rate(&frame, rate), position: 0, looped, done: Some(done) });
            }
            MediaCommand::StopPlaying => self.finish_player(),
            MediaCommand::Configure(_) | MediaCommand::Stop => {}
        }
    }

    fn finish_player(&mut self) {
        if let Some(mut p) = self.player.take()
            && let Some(done) = p.done.take()
        {
            let _ = done.send(());
        }
    }

    /// Application audio: brought to the call's rate, cut into frames, sent.
    async fn queue_audio(&mut self, frame: &AudioFrame) {
        let Some(rate) = self.stream.as_ref().map(|s| s.ep.rate) else { return };
        if frame.sample_rate == rate {
            self.outgoing.extend_from_slice(&frame.samples);
        } else {
            if self.resampler.as_ref().is_none_or(|r| r.input_rate() != frame.sample_rate || r.output_rate() != rate) {
                self.resampler = Resampler::new(frame.sample_rate, rate).ok();
            }
            match &mut self.resampler {
                Some(r) => r.process(&frame.samples, &mut self.outgoing),
                None => self.outgoing.extend(to_rate(frame, rate)),
            }
        }
        let n = self.stream.as_ref().map_or(usize::MAX, |s| s.ep.frame_samples);
        while self.outgoing.len() >= n {
            let chunk: Vec<i16> = self.outgoing.drain(..n).collect();
            self.send_frame(chunk).await;
        }
    }

    async fn send_frame(&mut self, pcm: Vec<i16>) {
        let Some(s) = &mut self.stream else { return };
        let samples = pcm.len() as u32;
        self.sent_this_tick = true;
        if self.muted || self.digit.is_some() || !s.ep.negotiated.direction.sends() || s.remote.is_none() {
            s.ep.sender.skip(samples);
            return;
        }
        let Some(packet) = s.ep.encode(&pcm) else { return };
        let octets = packet.payload.len() as u64;
        if let Some(to) = s.remote
            && self.sockets.rtp.send_to(&rtp_stream::write_packet(&packet), to).await.is_ok()
        {
            self.sent_since_report = true;
            let mut snap = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
            snap.packets_sent += 1;
            snap.octets_sent += octets;
        }
        if self.recorder.is_some() && self.sent_for_recording.len() < 50 {
            self.sent_for_recording.push_back(pcm);
        }
    }

    fn on_rtp(&mut self, datagram: &[u8], from: SocketAddr) {
        let now = Instant::now();
        let garbage = |snapshot: &Mutex<MediaSnapshot>| snapshot.lock().unwrap_or_else(|e| e.into_inner()).garbage_packets += 1;
        let (Some(s), Some(packet)) = (&mut self.stream, rtp_stream::parse_packet(datagram)) else {
            garbage(&self.snapshot);
            return;
        };
        if s.ep.receiver.ssrc().is_some_and(|ssrc| ssrc != packet.header.ssrc) {
            s.earlier = s.received();
        }
        match s.ep.receive(&packet, now) {
            Received::Foreign => return garbage(&self.snapshot),
            Received::Rejected => return,
            Received::Audio | Received::Event => {}
        }
        if !s.latched {
            // Symmetric RTP: answer where the far end really sends from (NAT).
            s.remote = Some(from);
            s.latched = true;
        }
        let mut snap = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        snap.last_received = Some(now);
        if let Some(r) = s.ep.receiver.stats() {
            (snap.packets_received, snap.octets_received, snap.packets_lost) = s.received();
            snap.jitter_ms = r.jitter_ms;
        }
        drop(snap);
        if !self.receiving {
            self.receiving = true;
            self.timed_out = false;
            let _ = self.notices.send(MediaNotice::Flow { receiving: true });
        }
    }

    async fn tick(&mut self) {
        let now = Instant::now();
        self.send_digits(now).await;
        if let Some(p) = &mut self.player {
            let n = self.stream.as_ref().map_or(160, |s| s.ep.frame_samples);
            let mut chunk: Vec<i16> = p.samples.iter().skip(p.position).take(n).copied().collect();
            p.position += chunk.len();
            if p.position >= p.samples.len() && p.looped {
                p.position = 0;
            }
            let finished = chunk.is_empty() || (p.position >= p.samples.len() && !p.looped);
            chunk.resize(n, 0);
            self.send_frame(chunk).await;
            if finished {
                self.finish_player();
            }
        }
        let Some(s) = &mut self.stream else { return };
        if !std::mem::take(&mut self.sent_this_tick) {
            // Silence is not sent, but the RTP clock keeps real time (DTMF events and the
            // next talk spurt are stamped with it).
            s.ep.sender.skip(s.ep.frame_samples as u32);
        }
        let played = s.ep.playout(now);
        let rate = s.ep.rate;
        let frame_samples = s.ep.frame_samples;
        while let Some(digit) = s.ep.digit(now) {
            let _ = self.notices.send(MediaNotice::Dtmf(digit));
        }
        if let Some(r) = &mut self.recorder {
            let local = self.sent_for_recording.pop_front().unwrap_or_else(|| vec![0; frame_samples]);
            let remote = played.clone().unwrap_or_else(|| vec![0; frame_samples]);
            if let Err(e) = r.write(&[&local, &remote]) {
                let _ = self.notices.send(MediaNotice::Error(e.to_string()));
                self.recorder = None;
            }
        }
        if let Some(pcm) = played
            && self.audio_out.try_send(AudioFrame::new(pcm, rate)).is_err()
        {
            self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).frames_dropped += 1;
        }
        self.check_flow(now);
    }
}
