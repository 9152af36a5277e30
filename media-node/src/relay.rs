//! The RTP/RTCP relay of one session: two legs, each an RTP and an RTCP socket. What
//! arrives on one leg goes out of the other to where that leg's far end is: first the
//! address its SDP gave, then the source it latched to (`latch.rs`: only a source its far
//! end signalled, so a far end behind NAT is reached and a stranger spraying RTP is not).
//! Packets that are not RTP/RTCP version 2, or come from a source the leg does not take
//! media from, are counted and dropped; RTP received is accounted per RFC 3550
//! (`counters.rs`). One task per session; the hot path uses one stack buffer and no
//! allocation.
//! The RTP toward each leg is one continuous stream (`stream.rs`), whichever far end is
//! behind the other slot (a transfer changes it). When only one far end negotiated RFC 4733
//! events, the relay reads the events it sends (reported, not passed on) and writes events
//! into the stream toward it (`dtmf.rs`). What one far end sends in a codec the other does
//! not take is transcoded (`transcode.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use media::quality::QualityAlertLevel;

use crate::client::FarMedia;
use crate::counters::{LegCounters, LegSnapshot, Reception};
use crate::dtmf::{self, Injection};
use crate::latch::{Latch, Verdict};
use crate::ports::PortPair;
use crate::recording::RecordingInfo;
use crate::stream::OutStream;
use crate::tap::{LegCodec, Tap};
use crate::transcode::Transcoding;

/// Something the relay reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RelayEvent {
    /// No RTP arrived on `leg` for `seconds`.
    NoRtp { leg: usize, seconds: u32 },
    /// `leg`'s far end sent an RFC 4733 digit the other far end cannot receive as such.
    Dtmf { leg: usize, digit: char, duration_ms: u32 },
    /// A prompt played once (a room's) has been played to its end.
    PromptEnded { id: u32 },
    /// `leg`'s quality moved to another alert level.
    Quality { leg: usize, mos: f64, loss_percent: f64, jitter_ms: f64, level: QualityAlertLevel },
}

/// How often each leg's quality is scored.
pub const QUALITY_INTERVAL: Duration = Duration::from_secs(5);

enum Command {
    Connect { leg: usize, far: FarMedia },
    Dtmf { leg: usize, digit: char, duration_ms: u32 },
    Record(Option<RecordingInfo>),
}

/// Controls a running relay; dropping it stops the relay, which hands its sockets to the
/// `on_exit` it was started with.
pub struct RelayHandle {
    commands: mpsc::UnboundedSender<Command>,
    counters: Arc<[LegCounters; 2]>,
    ports: [u16; 2],
}

impl RelayHandle {
    /// Leg `leg`'s far end (from its SDP and SIP): a new address replaces the one in use (a
    /// transfer gives a leg a new far end) and forgets the source latched; RTCP goes to the
    /// next port until RTCP arrives from a signalled source.
    pub fn connect(&self, leg: usize, far: FarMedia) {
        let _ = self.commands.send(Command::Connect { leg, far });
    }

    /// Writes a DTMF digit as RFC 4733 events into the stream toward leg `leg` (whose far
    /// end negotiated them).
    pub fn dtmf(&self, leg: usize, digit: char, duration_ms: u32) {
        let _ = self.commands.send(Command::Dtmf { leg, digit, duration_ms });
    }

    /// Records the call (`tap.rs`) to `info.path`; `None` stops recording.
    pub fn record(&self, info: Option<RecordingInfo>) {
        let _ = self.commands.send(Command::Record(info));
    }

    pub fn counters(&self) -> [LegSnapshot; 2] {
        [self.counters[0].snapshot(), self.counters[1].snapshot()]
    }

    /// The RTP ports of the two legs.
    pub fn ports(&self) -> [u16; 2] {
        self.ports
    }
}

/// What a stopped relay gives back: its two legs' sockets.
pub type OnExit = Box<dyn FnOnce([PortPair; 2]) + Send>;

/// Where a relay reports its events.
pub type EventSink = Box<dyn Fn(RelayEvent) + Send>;

/// Starts relaying between two legs.
pub fn start(legs: [PortPair; 2], no_rtp_after: Option<Duration>, events: EventSink, on_exit: OnExit) -> RelayHandle {
    let counters: Arc<[LegCounters; 2]> = Arc::new(Default::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let ports = [legs[0].rtp_port, legs[1].rtp_port];
    let [a, b] = legs;
    let state = State {
        counters: counters.clone(),
        latches: Default::default(),
        held: Default::default(),
        tap: None,
        clock_rate: [8000, 8000],
        reception: [Reception::new(8000), Reception::new(8000)],
        last_rtp: [Instant::now(), Instant::now()],
        reported: [false, false],
        events_pt: [None, None],
        streams: [None, None],
        injecting: [None, None],
        last_event: [None, None],
        transcoding: Transcoding::default(),
    };
    tokio::spawn(async move {
        let [[a_rtp, a_rtcp], [b_rtp, b_rtcp]] = run([[a.rtp, a.rtcp], [b.rtp, b.rtcp]], state, rx, no_rtp_after, events).await;
        on_exit([
            PortPair { rtp_port: ports[0], rtp: a_rtp, rtcp: a_rtcp },
            PortPair { rtp_port: ports[1], rtp: b_rtp, rtcp: b_rtcp },
        ]);
    });
    RelayHandle { commands: tx, counters, ports }
}

struct State {
    counters: Arc<[LegCounters; 2]>,
    /// Per leg, the RTP and RTCP sources taken (and so where each goes toward the leg).
    latches: [[Latch; 2]; 2],
    /// RTP that arrived on a leg before its far end was signalled, and where from.
    held: [Vec<(Vec<u8>, SocketAddr)>; 2],
    /// The recording of the call, if any.
    tap: Option<Tap>,
    /// The clock rate of each far end's audio.
    clock_rate: [u32; 2],
    reception: [Reception; 2],
    last_rtp: [Instant; 2],
    reported: [bool; 2],
    /// The RFC 4733 payload type each far end negotiated.
    events_pt: [Option<u8>; 2],
    /// The RTP stream sent toward each leg.
    streams: [Option<OutStream>; 2],
    injecting: [Option<Injection>; 2],
    /// The timestamp of the last event reported from each leg (its end is sent 3 times).
    last_event: [Option<u32>; 2],
    /// Codecs each far end takes, and the transcoding between them (`transcode.rs`).
    transcoding: Transcoding,
}

const RTP: usize = 0;
const RTCP: usize = 1;
/// Datagrams read per socket wake-up before looking at the other sockets.
const BATCH: usize = 64;
/// RTP packets a leg holds until its far end is signalled (a second of 20 ms packets).
const HELD_MAX: usize = 50;

async fn run(
    sockets: [[UdpSocket; 2]; 2],
    mut state: State,
    mut commands: mpsc::UnboundedReceiver<Command>,
    no_rtp_after: Option<Duration>,
    events: EventSink,
) -> [[UdpSocket; 2]; 2] {
    let mut buf = [0u8; 2048];
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut dtmf_tick = tokio::time::interval(Duration::from_millis(20));
    let mut quality_tick = tokio::time::interval_at(Instant::now() + QUALITY_INTERVAL, QUALITY_INTERVAL);
    loop {
        let (leg, kind) = tokio::select! {
            Ok(()) = sockets[0][RTP].readable() => (0, RTP),
            Ok(()) = sockets[1][RTP].readable() => (1, RTP),
            Ok(()) = sockets[0][RTCP].readable() => (0, RTCP),
            Ok(()) = sockets[1][RTCP].readable() => (1, RTCP),
            cmd = commands.recv() => {
                match cmd {
                    // A new far end for the leg (its answer, a re-INVITE, a transfer): send
                    // there from now on, until packets show where it really is (latching).
                    Some(Command::Connect { leg, far }) if leg < 2 => state.connect(&sockets, leg, far, &events),
                    Some(Command::Dtmf { leg, digit, duration_ms }) if leg < 2 => state.start_dtmf(leg, digit, duration_ms),
                    Some(Command::Record(info)) => state.record(info),
                    Some(_) => {}
                    None => return sockets,
                }
                continue;
            }
            _ = dtmf_tick.tick(), if state.injecting.iter().any(Option::is_some) => {
                state.write_dtmf(&sockets);
                continue;
            }
            _ = ticker.tick(), if no_rtp_after.is_some() => {
                state.check_silence(no_rtp_after.unwrap_or_default(), &events);
                continue;
            }
            _ = quality_tick.tick() => {
                state.score(&events);
                continue;
            }
        };
        for _ in 0..BATCH {
            match sockets[leg][kind].try_recv_from(&mut buf) {
                Ok((n, src)) => state.relay(&sockets, leg, kind, &mut buf[..n], src, &events),
                Err(_) => break,
            }
        }
    }
}

impl State {
    fn relay(
        &mut self,
        sockets: &[[UdpSocket; 2]; 2],
        leg: usize,
        kind: usize,
        packet: &mut [u8],
        src: SocketAddr,
        events: &EventSink,
    ) {
        let counters = &self.counters[leg];
        let min_len = if kind == RTP { 12 } else { 8 };
        if packet.len() < min_len || packet[0] >> 6 != 2 {
            LegCounters::count(&counters.invalid_packets, 1);
            return;
        }
        let now = Instant::now();
        match self.latches[leg][kind].check(src, now) {
            Verdict::Accept | Verdict::Latched => {}
            Verdict::Refuse => return LegCounters::count(&counters.refused_packets, 1),
            // The far end's answer (and address) is on its way to us: its first packets
            // wait for it, a few at most, and are judged then.
            Verdict::Unsignalled if kind == RTP && self.held[leg].len() < HELD_MAX => {
                return self.held[leg].push((packet.to_vec(), src));
            }
            Verdict::Unsignalled => return LegCounters::count(&counters.refused_packets, 1),
        }
        if kind == RTP {
            if let Some(tap) = &mut self.tap {
                tap.packet(leg, packet);
            }
            LegCounters::count(&counters.packets_received, 1);
            LegCounters::count(&counters.bytes_received, packet.len() as u64);
            self.reception[leg].on_packet(packet, now.into_std(), counters);
            self.last_rtp[leg] = now;
            self.reported[leg] = false;
        } else {
            LegCounters::count(&counters.rtcp_packets, 1);
        }
        let out = 1 - leg;
        if kind == RTP && self.events_pt[out].is_none() {
            // Events the other far end could not play: reported (once per event), not sent.
            if let Some(event) = self.events_pt[leg].and_then(|pt| dtmf::read(packet, pt)) {
                if event.end && self.last_event[leg] != Some(event.timestamp) {
                    self.last_event[leg] = Some(event.timestamp);
                    let duration_ms = u32::from(event.duration) / 8;
                    events(RelayEvent::Dtmf { leg, digit: event.digit, duration_ms });
                }
                return;
            }
        }
        let Some(dest) = self.latches[out][kind].destination() else { return };
        if kind == RTCP {
            let _ = sockets[out][RTCP].try_send_to(packet, dest);
            return;
        }
        let (stream, counters) = (&mut self.streams[out], &self.counters[out]);
        let mut send = |packet: &mut [u8]| {
            stream.get_or_insert_with(|| OutStream::new(packet)).stamp(packet);
            if sockets[out][RTP].try_send_to(packet, dest).is_ok() {
                LegCounters::count(&counters.packets_sent, 1);
                LegCounters::count(&counters.bytes_sent, packet.len() as u64);
            }
        };
        self.transcoding.relay(leg, packet, &mut send);
    }

    fn record(&mut self, info: Option<RecordingInfo>) {
        if let Some(old) = self.tap.take().filter(|t| t.dropped() > 0) {
            tracing::warn!(dropped = old.dropped(), "the recording fell behind the relay");
        }
        let legs = [0, 1].map(|leg| LegCodec { clock_rate: self.clock_rate[leg], events: self.events_pt[leg] });
        self.tap =
            info.and_then(|info| Tap::start(info, legs).map_err(|e| tracing::warn!(error = %e, "recording not started")).ok());
    }

    fn connect(&mut self, sockets: &[[UdpSocket; 2]; 2], leg: usize, far: FarMedia, events: &EventSink) {
        self.events_pt[leg] = far.events;
        self.clock_rate[leg] = far.clock_rate;
        self.transcoding.set_codecs(leg, far.codecs);
        let [rtp, rtcp] = &mut self.latches[leg];
        if rtp.destination() != Some(far.rtp) && !far.rtp.ip().is_unspecified() {
            self.reception[leg].restart(far.clock_rate);
        }
        rtp.expect(far.rtp, far.signal);
        rtcp.expect(SocketAddr::new(far.rtp.ip(), far.rtp.port().wrapping_add(1)), far.signal);
        self.last_rtp[leg] = Instant::now();
        for (mut packet, src) in std::mem::take(&mut self.held[leg]) {
            self.relay(sockets, leg, RTP, &mut packet, src, events);
        }
    }

    /// A digit to write toward `leg`, which negotiated events (else there is nothing to do).
    fn start_dtmf(&mut self, leg: usize, digit: char, duration_ms: u32) {
        let Some(pt) = self.events_pt[leg] else { return };
        let (ssrc, timestamp) = self.streams[leg].get_or_insert_with(|| OutStream::own(0x4354_4d46 ^ leg as u32)).position();
        self.injecting[leg] = Injection::new(digit, duration_ms, pt, ssrc, timestamp);
    }

    /// The next 20 ms of each digit being written.
    fn write_dtmf(&mut self, sockets: &[[UdpSocket; 2]; 2]) {
        for (leg, socket) in sockets.iter().enumerate() {
            let (Some(injection), Some(stream)) = (self.injecting[leg].as_mut(), self.streams[leg].as_mut()) else { continue };
            let mut packet = [0u8; 16];
            let mut next = *stream;
            let Some(n) = injection.next(next.next_own_seq(), &mut packet) else {
                self.injecting[leg] = None;
                continue;
            };
            *stream = next;
            if let Some(dest) = self.latches[leg][RTP].destination()
                && socket[RTP].try_send_to(&packet[..n], dest).is_ok()
            {
                let c = &self.counters[leg];
                LegCounters::count(&c.packets_sent, 1);
                LegCounters::count(&c.bytes_sent, n as u64);
            }
        }
    }

    /// Each leg's quality over the last interval; a change of alert level is reported.
    fn score(&mut self, events: &EventSink) {
        let now = Instant::now().into_std();
        for leg in 0..2 {
            let Some(q) = self.reception[leg].interval(now, &self.counters[leg]) else { continue };
            if q.changed {
                events(RelayEvent::Quality {
                    leg,
                    mos: q.estimate.mos,
                    loss_percent: q.inputs.loss_percent,
                    jitter_ms: q.inputs.jitter_ms,
                    level: q.estimate.level,
                });
            }
        }
    }

    fn check_silence(&mut self, limit: Duration, events: &EventSink) {
        for leg in 0..2 {
            let connected = self.latches[leg][RTP].destination().is_some();
            if connected && !self.reported[leg] && self.last_rtp[leg].elapsed() >= limit {
                self.reported[leg] = true;
                events(RelayEvent::NoRtp { leg, seconds: limit.as_secs() as u32 });
            }
        }
    }
}
