//! How a session node uses media nodes over the bus: allocate a session's RTP endpoints
//! (any media node), connect a leg to its far end, release (on the node that allocated);
//! or take a seat in a conference room, give it its stream, mute it, leave.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use cluster::bus::typed;
use cluster::bus::{Bus, BusError};
use cluster::contracts::{
    self, LegStats, MediaAllocate, MediaAllocation, MediaCommand, MediaConnect, MediaDtmf, MediaRelease, MediaReply, Record,
    RoomControl, RoomHoldMusic, RoomJoin, RoomPlay, media_command,
};
use cluster::metrics::Histogram;
use cluster::subjects::{self, NodeId, SessionId};
pub use media::sdp::FarMedia;
use media::sdp::Negotiated;
use tokio::time::Instant;

use crate::placement::Placement;

/// Why media could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// No media node answered, or none had a free port (the caller gets 503).
    #[error("no media available: {0}")]
    Unavailable(String),
    #[error("media node: {0}")]
    Refused(String),
}

/// The RTP endpoints of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub node: NodeId,
    /// Where each leg's far end must send RTP: [caller side, callee side].
    pub legs: [SocketAddr; 2],
}

/// A session's seat in a conference room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub node: NodeId,
    /// Where the far end must send RTP.
    pub rtp: SocketAddr,
}

/// Talks to media nodes for one session node.
#[derive(Clone)]
pub struct MediaClient {
    bus: Arc<dyn Bus>,
    sender: String,
    timeout: Duration,
    /// How long each allocation took, bus round trip included.
    allocation_time: Arc<Histogram>,
    /// The media nodes' headroom; without it (or when it knows none) any node answers.
    placement: Option<Placement>,
}

/// Nodes asked in turn for one allocation, at most.
const TRIES: usize = 3;
/// How long an allocation is asked again while no media node can be reached, and how often.
const UNREACHABLE_FOR: Duration = Duration::from_secs(3);
const UNREACHABLE_PAUSE: Duration = Duration::from_millis(200);

fn bus_error(e: BusError) -> MediaError {
    match e {
        BusError::NoResponders(_) | BusError::Timeout(..) => MediaError::Unavailable(e.to_string()),
        other => MediaError::Refused(other.to_string()),
    }
}

impl MediaClient {
    pub fn new(bus: Arc<dyn Bus>, sender: &NodeId, timeout: Duration) -> Self {
        MediaClient { bus, sender: sender.to_string(), timeout, allocation_time: Arc::default(), placement: None }
    }

    /// Allocations go to the node with the most headroom in `placement`'s view.
    pub fn with_placement(mut self, placement: Placement) -> Self {
        self.placement = Some(placement);
        self
    }

    /// Asks for `request` (of `pairs` port pairs): the nodes the placement chooses in turn,
    /// else (no view) whichever node of the queue group answers. `zone`: only its nodes.
    /// When no node had a responder at all — as while a NATS server dies and its clients
    /// move to another — asked again for a while.
    async fn place(&self, request: &MediaAllocate, pairs: u32, zone: Option<&str>) -> Result<MediaAllocation, MediaError> {
        let deadline = Instant::now() + UNREACHABLE_FOR;
        loop {
            match self.place_once(request, pairs, zone).await {
                Err((e, true)) if Instant::now() + UNREACHABLE_PAUSE < deadline => {
                    tracing::info!(session = %request.session_id, error = %e, "no media node reached: asking again");
                    tokio::time::sleep(UNREACHABLE_PAUSE).await;
                }
                result => return result.map_err(|(e, _)| e),
            }
        }
    }

    /// `request` as sent now: the node that gets it after this client's timeout allocates
    /// nothing (nobody waits for it any more).
    fn with_deadline(&self, request: &MediaAllocate) -> MediaAllocate {
        let deadline_unix_ms = contracts::unix_ms() + self.timeout.as_millis() as u64;
        MediaAllocate { deadline_unix_ms, ..request.clone() }
    }

    /// One round of [`Self::place`]; an error says whether no node had a responder.
    async fn place_once(
        &self,
        request: &MediaAllocate,
        pairs: u32,
        zone: Option<&str>,
    ) -> Result<MediaAllocation, (MediaError, bool)> {
        let chosen = match &self.placement {
            Some(p) => p.choose(pairs, zone, |n| rand::random_range(0..n)),
            None => Vec::new(),
        };
        if chosen.is_empty() {
            if let Some(zone) = zone {
                return Err((MediaError::Unavailable(format!("no media node with room in zone {zone:?}")), false));
            }
            let request = self.with_deadline(request);
            let reply = typed::request(self.bus.as_ref(), &subjects::media_allocate(), &request, self.timeout).await;
            return reply.map_err(|e| (bus_error(e.clone()), matches!(e, BusError::NoResponders(_))));
        }
        let (mut last, mut unreached) = (MediaError::Unavailable("no media node answered".into()), true);
        for node in chosen.into_iter().take(TRIES) {
            let reply: Result<MediaAllocation, _> = typed::request(
                self.bus.as_ref(),
                &subjects::media_node_allocate(&node),
                &self.with_deadline(request),
                self.timeout,
            )
            .await;
            match reply {
                Ok(a) if a.error.is_empty() => {
                    if let Some(p) = &self.placement {
                        p.allocated(&node, pairs);
                    }
                    return Ok(a);
                }
                Ok(a) => (last, unreached) = (MediaError::Unavailable(a.error), false),
                Err(e) => {
                    unreached &= matches!(e, BusError::NoResponders(_));
                    last = bus_error(e);
                }
            }
            if let Some(p) = &self.placement {
                p.refused(&node);
            }
        }
        Err((last, unreached))
    }

    /// The time allocations took, for `/metrics`.
    pub fn allocation_time(&self) -> Arc<Histogram> {
        self.allocation_time.clone()
    }

    /// Allocates a session's two legs (on a node of `zone`, when given); with `caller`, leg 0
    /// is connected to it at once.
    pub async fn allocate(
        &self,
        session: &SessionId,
        caller: Option<FarMedia>,
        zone: Option<&str>,
    ) -> Result<Allocation, MediaError> {
        let request = MediaAllocate {
            meta: contracts::meta(&self.sender),
            session_id: session.to_string(),
            legs: 2,
            caller: caller.map(|far| connect(0, far)),
            room: String::new(),
            deadline_unix_ms: 0,
        };
        let asked = Instant::now();
        let reply = self.place(&request, 2, zone).await;
        self.allocation_time.observe(asked.elapsed());
        let reply = reply?;
        if !reply.error.is_empty() {
            return Err(MediaError::Unavailable(reply.error));
        }
        let node = NodeId::new(reply.media_node_id).map_err(|e| MediaError::Refused(e.to_string()))?;
        let addr = |leg: u32| {
            reply
                .legs
                .iter()
                .find(|l| l.leg == leg)
                .and_then(|l| l.rtp_addr.parse().ok())
                .ok_or_else(|| MediaError::Refused(format!("allocation without leg {leg}")))
        };
        Ok(Allocation { node, legs: [addr(0)?, addr(1)?] })
    }

    /// A seat for the session in conference room `room`: on `node` when the room is known
    /// to be there, else on whichever media node answers (which opens the room).
    pub async fn seat(
        &self,
        session: &SessionId,
        room: &str,
        node: Option<&NodeId>,
        zone: Option<&str>,
    ) -> Result<Seat, MediaError> {
        if let Some(node) = node {
            let join = media_command::Command::RoomJoin(RoomJoin { room: room.to_owned() });
            let reply = self.command(node, session, join).await?;
            let rtp =
                reply.rtp_addr.parse().map_err(|_| MediaError::Refused(format!("bad seat address {:?}", reply.rtp_addr)))?;
            return Ok(Seat { node: node.clone(), rtp });
        }
        let request = MediaAllocate {
            meta: contracts::meta(&self.sender),
            session_id: session.to_string(),
            legs: 1,
            caller: None,
            room: room.to_owned(),
            deadline_unix_ms: 0,
        };
        let reply = self.place(&request, 1, zone).await?;
        if !reply.error.is_empty() {
            return Err(MediaError::Unavailable(reply.error));
        }
        let node = NodeId::new(reply.media_node_id).map_err(|e| MediaError::Refused(e.to_string()))?;
        let rtp = reply.legs.first().and_then(|l| l.rtp_addr.parse().ok());
        Ok(Seat { node, rtp: rtp.ok_or_else(|| MediaError::Refused("allocation without a seat".into()))? })
    }

    /// What offer/answer agreed for the session's seat (its far end signals from `signal`).
    pub async fn seat_stream(
        &self,
        seat: &Seat,
        session: &SessionId,
        n: &Negotiated,
        signal: Option<IpAddr>,
    ) -> Result<(), MediaError> {
        let stream = media_command::Command::RoomStream(crate::wire::to_wire(n, signal));
        self.command(&seat.node, session, stream).await.map(|_| ())
    }

    /// Mutes or deafens the session's seat.
    pub async fn seat_control(&self, seat: &Seat, session: &SessionId, muted: bool, deaf: bool) -> Result<(), MediaError> {
        let control = media_command::Command::RoomControl(RoomControl { muted, deaf });
        self.command(&seat.node, session, control).await.map(|_| ())
    }

    /// Plays prompt `file` into the session's room (to its own seat only, or to everyone),
    /// once (reported as `PromptEnded` with `id`) or looped.
    pub async fn seat_play(&self, seat: &Seat, session: &SessionId, play: RoomPlay) -> Result<(), MediaError> {
        self.command(&seat.node, session, media_command::Command::RoomPlay(play)).await.map(|_| ())
    }

    /// Music for the session while it is alone in its room (`""`: none).
    pub async fn seat_hold_music(&self, seat: &Seat, session: &SessionId, file: &str) -> Result<(), MediaError> {
        let music = media_command::Command::RoomHoldMusic(RoomHoldMusic { file: file.to_owned() });
        self.command(&seat.node, session, music).await.map(|_| ())
    }

    /// Starts (`layout`: `stereo` or `mixed`; `segment`: the recording's part, 1 the first)
    /// or stops recording the session's call on `node`: its relay, or its room. True when
    /// this session records now (a room's recording is its first asker's).
    pub async fn record(
        &self,
        node: &NodeId,
        session: &SessionId,
        start: bool,
        layout: &str,
        segment: u32,
    ) -> Result<bool, MediaError> {
        let record = media_command::Command::Record(Record { start, layout: layout.to_owned(), segment });
        self.command(node, session, record).await.map(|reply| reply.recording)
    }

    /// The session leaves its seat: true when the room is empty (and closed) now.
    pub async fn leave_seat(&self, seat: &Seat, session: &SessionId) -> Result<bool, MediaError> {
        self.given_back(&seat.node, 1);
        let reply = self.command(&seat.node, session, media_command::Command::Release(MediaRelease {})).await?;
        Ok(reply.room_empty)
    }

    async fn command(
        &self,
        node: &NodeId,
        session: &SessionId,
        command: media_command::Command,
    ) -> Result<MediaReply, MediaError> {
        let request =
            MediaCommand { meta: contracts::meta(&self.sender), session_id: session.to_string(), command: Some(command) };
        let reply: MediaReply = typed::request(self.bus.as_ref(), &subjects::media_commands(node), &request, self.timeout)
            .await
            .map_err(bus_error)?;
        if reply.error.is_empty() { Ok(reply) } else { Err(MediaError::Refused(reply.error)) }
    }

    /// Tells the node where leg `leg`'s far end expects RTP (0: caller side, 1: callee) and
    /// the RFC 4733 payload type it negotiated. One-way: the call goes on meanwhile.
    pub async fn connect(&self, node: &NodeId, session: &SessionId, leg: u32, far: FarMedia) -> Result<(), MediaError> {
        self.notify(node, session, media_command::Command::Connect(connect(leg, far))).await
    }

    /// Writes a DTMF digit as RFC 4733 events toward leg `leg`. One-way.
    pub async fn dtmf(
        &self,
        node: &NodeId,
        session: &SessionId,
        leg: u32,
        digit: char,
        duration_ms: u32,
    ) -> Result<(), MediaError> {
        let dtmf = MediaDtmf { leg, digit: digit.to_string(), duration_ms };
        self.notify(node, session, media_command::Command::Dtmf(dtmf)).await
    }

    /// Like [`MediaClient::connect`], but waits until the node has connected the leg.
    pub async fn connect_confirmed(&self, node: &NodeId, session: &SessionId, leg: u32, far: FarMedia) -> Result<(), MediaError> {
        self.command(node, session, media_command::Command::Connect(connect(leg, far))).await.map(|_| ())
    }

    /// Frees the session's ports, one-way (the node logs the legs' final counters).
    pub async fn release(&self, node: &NodeId, session: &SessionId) -> Result<(), MediaError> {
        self.given_back(node, 2);
        self.notify(node, session, media_command::Command::Release(MediaRelease {})).await
    }

    fn given_back(&self, node: &NodeId, pairs: u32) {
        if let Some(p) = &self.placement {
            p.released(node, pairs);
        }
    }

    /// Frees the session's ports and returns the final counters of both legs.
    pub async fn release_with_stats(&self, node: &NodeId, session: &SessionId) -> Result<Vec<LegStats>, MediaError> {
        self.given_back(node, 2);
        self.command(node, session, media_command::Command::Release(MediaRelease {})).await.map(|r| r.stats)
    }

    async fn notify(&self, node: &NodeId, session: &SessionId, command: media_command::Command) -> Result<(), MediaError> {
        let message =
            MediaCommand { meta: contracts::meta(&self.sender), session_id: session.to_string(), command: Some(command) };
        typed::publish(self.bus.as_ref(), &subjects::media_commands(node), &message).await.map_err(bus_error)
    }
}

fn connect(leg: u32, far: FarMedia) -> MediaConnect {
    MediaConnect {
        leg,
        remote_rtp_addr: far.rtp.to_string(),
        telephone_event_pt: far.events.map_or(0, u32::from),
        signal_ip: far.signal.map(|ip| ip.to_string()).unwrap_or_default(),
        clock_rate: far.clock_rate,
        codecs: far.codecs.iter().map(crate::wire::codec_to_wire).collect(),
    }
}
