//! A conference room: N seats, each a call's media terminated here (`media::endpoint`: its
//! codec, jitter buffer, RTP both ways), mixed every 20 ms with mix-minus
//! (`media::audio::mixer`: each seat hears everyone but itself, G.711 and Opus seats in one
//! room at 16 kHz). A seat takes RTP only from the source its far end signalled (`latch`).
//! Muted seats are not heard; deaf seats hear silence. One task per room; each seat's socket
//! has a reader task that hands datagrams to it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use media::audio::mixer::Mixer;
use media::endpoint::{Endpoint, Received};
use media::sdp::Negotiated;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::latch::{Latch, Verdict};
use crate::ports::PortPair;
use crate::relay::RelayEvent;

/// The mixing rate: wideband, so Opus seats keep their bandwidth beside G.711 ones.
const MIX_RATE: u32 = 16_000;
const FRAME: Duration = Duration::from_millis(20);

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
    muted: bool,
    deaf: bool,
}

struct Room {
    name: String,
    seats: HashMap<String, Seat>,
    mixer: Mixer,
    next_id: u64,
    datagrams: mpsc::UnboundedSender<(String, Vec<u8>, SocketAddr)>,
    events: SeatEvents,
    release: ReleasePort,
}

/// Starts room `name`; `events` reports digits its seats send (by session), `release`
/// returns ports.
pub fn start(name: String, events: SeatEvents, release: ReleasePort) -> RoomHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let (datagrams, incoming) = mpsc::unbounded_channel();
    let room = Room { name, seats: HashMap::new(), mixer: Mixer::new(MIX_RATE, FRAME), next_id: 1, datagrams, events, release };
    tokio::spawn(room.run(rx, incoming));
    RoomHandle { commands: tx }
}

impl Room {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<RoomCommand>,
        mut incoming: mpsc::UnboundedReceiver<(String, Vec<u8>, SocketAddr)>,
    ) {
        let mut ticker = tokio::time::interval(FRAME);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                Some((session, datagram, from)) = incoming.recv() => self.receive(&session, &datagram, from),
                _ = ticker.tick() => self.tick(),
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
            }
        }
    }

    fn seat(&mut self, session: String, pair: PortPair) {
        let socket = Arc::new(pair.rtp);
        let (reader_socket, datagrams, key) = (socket.clone(), self.datagrams.clone(), session.clone());
        let reader = tokio::spawn(async move {
            let _rtcp = pair.rtcp;
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = reader_socket.recv_from(&mut buf).await {
                if datagrams.send((key.clone(), buf[..n].to_vec(), from)).is_err() {
                    break;
                }
            }
        });
        let id = self.next_id;
        self.next_id += 1;
        let seat =
            Seat { id, port: pair.rtp_port, socket, reader, latch: Latch::default(), endpoint: None, muted: false, deaf: false };
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
            slot => match Endpoint::new(negotiated, 48_000) {
                Ok(ep) => {
                    let _ = self.mixer.remove(seat.id);
                    if let Err(e) = self.mixer.add(seat.id, ep.rate) {
                        tracing::warn!(room = %self.name, %session, error = %e, "seat not mixed");
                        return;
                    }
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

    /// One frame: every seat's audio in, the mix out.
    fn tick(&mut self) {
        let now = Instant::now().into_std();
        for seat in self.seats.values_mut() {
            let Some(ep) = seat.endpoint.as_mut() else { continue };
            if let Some(pcm) = ep.playout(now).filter(|_| !seat.muted && ep.negotiated.direction.receives()) {
                let _ = self.mixer.push(seat.id, &pcm);
            }
        }
        self.mixer.mix();
        for seat in self.seats.values_mut() {
            let (Some(ep), Some(to)) = (seat.endpoint.as_mut(), seat.latch.destination()) else { continue };
            if !ep.negotiated.direction.sends() {
                ep.sender.skip(ep.frame_samples as u32);
                continue;
            }
            let silence;
            let pcm = match self.mixer.output(seat.id) {
                Ok(heard) if !seat.deaf && heard.len() == ep.frame_samples => heard,
                _ => {
                    silence = vec![0i16; ep.frame_samples];
                    &silence
                }
            };
            if let Some(packet) = ep.encode(pcm) {
                let _ = seat.socket.try_send_to(&media::rtp::write_packet(&packet), to);
            }
        }
    }
}
