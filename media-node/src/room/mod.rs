//! A conference room: N seats, each a call's media terminated here (`media::endpoint`: its
//! codec, jitter buffer, RTP both ways; DTMF from RFC 4733 events, or from tones in the audio
//! of a G.711 seat without events — `media::inband`), mixed every 20 ms with mix-minus
//! (`media::audio::mixer`: each seat hears everyone but itself, G.711 and Opus seats in one
//! room at 16 kHz). A seat takes RTP only from the source its far end signalled (`latch`).
//! Muted seats are not heard; deaf seats hear silence. Prompts play to the room or to one
//! seat, whose prompt takes the place of the room while it plays (`player.rs`; their end is
//! reported), music on hold to a seat alone in its room, and
//! the room can be recorded (`recording.rs`, off this task). One task per room; each seat's
//! socket has a reader task that hands datagrams to it.

mod output;
mod player;

pub use player::at_rate;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use media::audio::mixer::Mixer;
use media::endpoint::{Endpoint, Received};
use media::inband::ToneDetector;
use media::quality::QualityAlertLevel;
use media::sdp::Negotiated;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use self::player::Player;
use crate::latch::{Latch, Verdict};
use crate::ports::PortPair;
use crate::recording::{Recording, RecordingInfo};
use crate::relay::{QUALITY_INTERVAL, RelayEvent};

/// The mixing rate: wideband, so Opus seats keep their bandwidth beside G.711 ones.
pub const MIX_RATE: u32 = 16_000;
/// The mixer's participant for music on hold (seats count up from 1; room prompts from 2^32).
const HOLD_MUSIC: u64 = u64::MAX;
const FRAME: Duration = Duration::from_millis(20);
/// Datagrams waiting for the room task, from all its seats (a second of 50 seats' RTP).
const DATAGRAMS_QUEUED: usize = 2500;

/// What a room is asked to do.
pub enum RoomCommand {
    /// Seat `session` on `pair`'s ports.
    Join {
        session: String,
        pair: PortPair,
    },
    /// The stream offer/answer agreed for `session`'s seat.
    Stream {
        session: String,
        negotiated: Negotiated,
        signal: Option<IpAddr>,
    },
    Control {
        session: String,
        muted: bool,
        deaf: bool,
    },
    /// `session` leaves; its port goes back to the pool.
    Leave {
        session: String,
    },
    /// Play `samples` (mono PCM at `rate` Hz) to `seat`'s session only, or to the whole room;
    /// once (its end is reported to `requester` with `id`) or looped until stopped.
    Play {
        id: u32,
        requester: String,
        seat: Option<String>,
        samples: Arc<Vec<i16>>,
        rate: u32,
        looped: bool,
    },
    StopPlaying {
        id: u32,
    },
    /// Music for a seat alone in the room (none: silence).
    HoldMusic {
        samples: Option<(Arc<Vec<i16>>, u32)>,
    },
    /// Record the room (`first`: the party on the first channel of a stereo recording).
    Record {
        info: RecordingInfo,
        first: Option<String>,
    },
    StopRecording,
}

/// Gives a seat's port back to the pool (its sockets are closed).
pub type ReleasePort = Box<dyn Fn(u16) + Send>;

/// Where a room reports what happens on a seat, by the seat's session.
pub type SeatEvents = Box<dyn Fn(&str, RelayEvent) + Send>;

/// A running room; dropping every handle ends it (after the commands already sent).
#[derive(Clone)]
pub struct RoomHandle {
    commands: mpsc::UnboundedSender<RoomCommand>,
}

impl RoomHandle {
    /// Sends `command`; false when the room has ended.
    pub fn send(&self, command: RoomCommand) -> bool {
        self.commands.send(command).is_ok()
    }
}

struct Seat {
    id: u64,
    port: u16,
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
    latch: Latch,
    endpoint: Option<Endpoint>,
    /// Listens for DTMF tones in the audio of a G.711 seat that sends no RFC 4733 events.
    tones: Option<ToneDetector>,
    /// The quality alert level last reported.
    level: Option<QualityAlertLevel>,
    muted: bool,
    deaf: bool,
}

struct Room {
    name: String,
    seats: HashMap<String, Seat>,
    mixer: Mixer,
    next_id: u64,
    players: Vec<Player>,
    hold_music: Option<Player>,
    recording: Option<(Recording, Option<String>)>,
    datagrams: mpsc::Sender<(String, Vec<u8>, SocketAddr)>,
    events: SeatEvents,
    release: ReleasePort,
}

/// Starts room `name`; `events` reports digits its seats send (by session), `release`
/// returns ports.
pub fn start(name: String, events: SeatEvents, release: ReleasePort) -> RoomHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let (datagrams, incoming) = mpsc::channel(DATAGRAMS_QUEUED);
    let room = Room {
        name,
        seats: HashMap::new(),
        mixer: Mixer::new(MIX_RATE, FRAME),
        next_id: 1,
        players: Vec::new(),
        hold_music: None,
        recording: None,
        datagrams,
        events,
        release,
    };
    tokio::spawn(room.run(rx, incoming));
    RoomHandle { commands: tx }
}

impl Room {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<RoomCommand>,
        mut incoming: mpsc::Receiver<(String, Vec<u8>, SocketAddr)>,
    ) {
        let mut ticker = tokio::time::interval(FRAME);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut scoring = tokio::time::interval_at(Instant::now() + QUALITY_INTERVAL, QUALITY_INTERVAL);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                Some((session, datagram, from)) = incoming.recv() => self.receive(&session, &datagram, from),
                _ = ticker.tick() => self.tick(),
                _ = scoring.tick() => self.score(),
            }
        }
        for (_, seat) in self.seats.drain() {
            seat.reader.abort();
            (self.release)(seat.port);
        }
        tracing::debug!(room = %self.name, "room closed");
    }

    fn command(&mut self, command: RoomCommand) {
        match command {
            RoomCommand::Join { session, pair } => self.seat(session, pair),
            RoomCommand::Stream { session, negotiated, signal } => self.stream(&session, negotiated, signal),
            RoomCommand::Control { session, muted, deaf } => {
                if let Some(seat) = self.seats.get_mut(&session) {
                    (seat.muted, seat.deaf) = (muted, deaf);
                }
            }
            RoomCommand::Leave { session } => {
                if let Some(seat) = self.seats.remove(&session) {
                    seat.reader.abort();
                    let _ = self.mixer.remove(seat.id);
                    (self.release)(seat.port);
                }
                if let Some((r, _)) = &self.recording {
                    r.left(&session);
                }
                self.players.retain(|p| p.seat.as_deref() != Some(session.as_str()));
            }
            RoomCommand::Play { id, requester, seat, samples, rate, looped } => {
                self.play(id, requester, seat, &samples, rate, looped)
            }
            RoomCommand::StopPlaying { id } => {
                for p in self.players.iter().filter(|p| p.id == id && p.seat.is_none()) {
                    let _ = self.mixer.remove(room_player(p.id));
                }
                self.players.retain(|p| p.id != id);
            }
            RoomCommand::HoldMusic { samples } => {
                let _ = self.mixer.remove(HOLD_MUSIC);
                self.hold_music = samples.and_then(|(samples, rate)| {
                    let samples = at_rate(&samples, rate, MIX_RATE).ok()?;
                    self.mixer.add(HOLD_MUSIC, MIX_RATE).ok()?;
                    Some(Player::new(0, String::new(), None, samples, true))
                });
            }
            RoomCommand::Record { info, first } => {
                if self.recording.is_none() {
                    match Recording::start(info) {
                        Ok(r) => {
                            // Seats with a stream now; the others when theirs comes.
                            for (session, ep) in self.seats.iter().filter_map(|(s, seat)| Some((s, seat.endpoint.as_ref()?))) {
                                r.joined(session, &ep.negotiated.codec.name);
                            }
                            self.recording = Some((r, first));
                        }
                        Err(e) => tracing::warn!(room = %self.name, error = %e, "recording not started"),
                    }
                }
            }
            RoomCommand::StopRecording => self.recording = None,
        }
    }

    fn seat(&mut self, session: String, pair: PortPair) {
        let socket = Arc::new(pair.rtp);
        let (reader_socket, datagrams, key) = (socket.clone(), self.datagrams.clone(), session.clone());
        let reader = tokio::spawn(async move {
            let _rtcp = pair.rtcp;
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = reader_socket.recv_from(&mut buf).await {
                // A flood at a seat's port is dropped here, not queued without end.
                match datagrams.try_send((key.clone(), buf[..n].to_vec(), from)) {
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                }
            }
        });
        let id = self.next_id;
        self.next_id += 1;
        let seat = Seat {
            id,
            port: pair.rtp_port,
            socket,
            reader,
            latch: Latch::default(),
            endpoint: None,
            tones: None,
            level: None,
            muted: false,
            deaf: false,
        };
        if let Some(old) = self.seats.insert(session, seat) {
            old.reader.abort();
            let _ = self.mixer.remove(old.id);
            (self.release)(old.port);
        }
    }

    fn stream(&mut self, session: &str, negotiated: Negotiated, signal: Option<IpAddr>) {
        let Some(seat) = self.seats.get_mut(session) else { return };
        if let Some(remote) = negotiated.remote_rtp {
            seat.latch.expect(remote, signal);
        }
        // The room mixes 20 ms frames: that is what a seat sends, whatever the far end's ptime.
        let negotiated = Negotiated { ptime: 20, ..negotiated };
        match &mut seat.endpoint {
            Some(ep) if ep.negotiated.codec.same_format(&negotiated.codec) => ep.renegotiate(negotiated),
            // Opus seats run at the mix's rate: no conversion, and a cheaper encoder.
            slot => match Endpoint::new(negotiated, MIX_RATE) {
                Ok(ep) => {
                    let _ = self.mixer.remove(seat.id);
                    if let Err(e) = self.mixer.add(seat.id, ep.rate) {
                        tracing::warn!(room = %self.name, %session, error = %e, "seat not mixed");
                        return;
                    }
                    if let (None, Some((r, _))) = (&slot, &self.recording) {
                        r.joined(session, &ep.negotiated.codec.name);
                    }
                    seat.tones = (ep.rate == 8000 && ep.dtmf_in.is_none()).then(ToneDetector::new);
                    *slot = Some(ep);
                }
                Err(e) => tracing::warn!(room = %self.name, %session, error = %e, "seat's codec not supported"),
            },
        }
    }

    fn receive(&mut self, session: &str, datagram: &[u8], from: SocketAddr) {
        let Some(seat) = self.seats.get_mut(session) else { return };
        let (Some(ep), Some(packet)) = (seat.endpoint.as_mut(), media::rtp::parse_packet(datagram)) else { return };
        let now = Instant::now();
        if matches!(seat.latch.check(from, now), Verdict::Refuse | Verdict::Unsignalled) {
            return;
        }
        if ep.receive(&packet, now.into_std()) == Received::Event {
            while let Some(d) = ep.digit(now.into_std()) {
                let duration_ms = d.duration.as_millis() as u32;
                (self.events)(session, RelayEvent::Dtmf { leg: 0, digit: d.digit, duration_ms });
            }
        }
    }

    /// One frame: every seat's audio and the room's prompts in, the mix out.
    fn tick(&mut self) {
        let now = Instant::now().into_std();
        let mut digits = Vec::new();
        for (session, seat) in &mut self.seats {
            let Some(ep) = seat.endpoint.as_mut() else { continue };
            let Some(pcm) = ep.playout(now).filter(|_| ep.negotiated.direction.receives()) else { continue };
            if let Some(tones) = &mut seat.tones {
                digits.extend(tones.push(&pcm).into_iter().map(|t| (session.clone(), t)));
            }
            if !seat.muted {
                let _ = self.mixer.push(seat.id, &pcm);
            }
        }
        for (session, t) in digits {
            (self.events)(&session, RelayEvent::Dtmf { leg: 0, digit: t.digit, duration_ms: t.duration.as_millis() as u32 });
        }
        let n = self.mixer.frame_samples();
        for p in self.players.iter_mut().filter(|p| p.seat.is_none()) {
            if let Some(pcm) = p.next(n) {
                let _ = self.mixer.push(room_player(p.id), &pcm);
            }
        }
        // Alone: the only seat that hears or is heard (a queue's agent, ringing, sits muted
        // and deaf beside its caller until they are put through).
        let present = self.seats.values().filter(|s| !(s.muted && s.deaf)).count();
        if present == 1
            && let Some(pcm) = self.hold_music.as_mut().and_then(|m| m.next(n))
        {
            let _ = self.mixer.push(HOLD_MUSIC, &pcm);
        }
        self.mixer.mix();
        self.record();
        for (session, seat) in &mut self.seats {
            let (Some(ep), Some(to)) = (seat.endpoint.as_mut(), seat.latch.destination()) else { continue };
            if !ep.negotiated.direction.sends() {
                ep.sender.skip(ep.frame_samples as u32);
                continue;
            }
            let mut pcm = match self.mixer.output(seat.id) {
                Ok(heard) if !seat.deaf && heard.len() == ep.frame_samples => heard.to_vec(),
                _ => vec![0i16; ep.frame_samples],
            };
            // A prompt to this seat alone takes the place of the room while it plays.
            if let Some(prompt) = self.players.iter_mut().find(|p| p.seat.as_ref() == Some(session))
                && let Some(samples) = prompt.next(ep.frame_samples)
            {
                pcm = samples;
            }
            if let Some(packet) = ep.encode(&pcm) {
                let _ = seat.socket.try_send_to(&media::rtp::write_packet(&packet), to);
            }
        }
        self.end_prompts();
    }
}

/// The mixer's participant for room prompt `id`.
fn room_player(id: u32) -> u64 {
    (1 << 32) | u64::from(id)
}
