//! The media node role: answers allocation requests (`allocation.rs`: two port pairs per
//! session or a room seat, an error when the pool is empty or the node at a limit), connect
//! and release commands addressed to this node, and reports dead media to the session's
//! owner.
//! Draining, it leaves the `media` queue group and keeps relaying its sessions until they
//! are released.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::bus::typed::{self, Received};
use cluster::bus::{Bus, BusError};
use cluster::contracts::{
    self, DtmfReceived, MediaAllocate, MediaCommand, MediaEvent, MediaReply, NoRtp, PromptEnded, QualityChanged, media_command,
    media_event,
};
use cluster::drain::{Drain, InFlight};
use cluster::subjects::{self, NodeId, SessionId, groups};
use media::quality::QualityAlertLevel;
use tokio::sync::mpsc;

use crate::counters::LegSnapshot;
use crate::dtmf;
use crate::limits::{CpuMeter, Limits};
use crate::node_rooms::Prompt;
use crate::ports::PortPool;
use crate::relay::{RelayEvent, RelayHandle};
use crate::rooms::Rooms;
use crate::wire::{far_end, leg_stats};

/// Settings of a media node.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    pub node_id: NodeId,
    /// Address the RTP sockets bind to.
    pub bind_ip: IpAddr,
    /// Address put in SDP for far ends to send to (differs from `bind_ip` behind NAT).
    pub advertise_ip: IpAddr,
    /// The zone this node is in (a label routes may pin calls to; in its heartbeat).
    pub zone: String,
    pub port_min: u16,
    pub port_max: u16,
    /// Report a leg that received no RTP for this long (off when `None`).
    pub no_rtp_timeout: Option<Duration>,
    /// Where prompts and music on hold are read from (WAV files).
    pub prompts_dir: Option<PathBuf>,
    /// Where recordings are written.
    pub recordings_dir: Option<PathBuf>,
    /// When it declines new calls (`limits.rs`).
    pub limits: Limits,
    pub drain: Drain,
}

impl MediaConfig {
    /// A node `node_id` on `ip` (also put in SDP) with RTP ports `ports`, and nothing else
    /// set: no zone, no RTP timeout, no prompts or recordings.
    pub fn new(node_id: NodeId, ip: IpAddr, ports: (u16, u16)) -> Self {
        MediaConfig {
            node_id,
            bind_ip: ip,
            advertise_ip: ip,
            zone: String::new(),
            port_min: ports.0,
            port_max: ports.1,
            no_rtp_timeout: None,
            prompts_dir: None,
            recordings_dir: None,
            limits: Limits::default(),
            drain: Drain::default(),
        }
    }
}

/// Counters of a media node.
#[derive(Debug, Default)]
pub struct MediaStats {
    pub allocations: AtomicU64,
    pub allocation_failures: AtomicU64,
    /// Allocations refused because the node was at a limit (`limits.rs`).
    pub allocations_declined: AtomicU64,
    pub releases: AtomicU64,
    /// RTP packets relayed by sessions already released.
    pub packets_relayed_released: AtomicU64,
    /// Packets refused (from sources their leg takes no media from) by released sessions.
    pub packets_refused_released: AtomicU64,
    /// Sessions being relayed.
    pub sessions: Arc<InFlight>,
    /// DTMF digits read from RTP (RFC 4733 events, or tones in the audio) and reported.
    pub dtmf_digits: AtomicU64,
    /// Legs whose quality fell to poor or critical (MOS under 3.0).
    pub quality_alerts: AtomicU64,
    /// Relays released because their call had no record any more (`reaper.rs`).
    pub relays_reaped: AtomicU64,
    /// Allocations not made because they came after their asker's deadline.
    pub allocations_too_late: AtomicU64,
}

pub(crate) struct Shared {
    pub(crate) config: MediaConfig,
    pub(crate) pool: Mutex<PortPool>,
    pub(crate) sessions: Mutex<HashMap<String, RelayHandle>>,
    pub(crate) rooms: Mutex<Rooms>,
    pub(crate) prompts: Mutex<HashMap<PathBuf, Prompt>>,
    pub(crate) events: mpsc::UnboundedSender<(String, RelayEvent)>,
    pub(crate) stats: MediaStats,
    pub(crate) cpu: CpuMeter,
}

/// A running media node.
#[derive(Clone)]
pub struct MediaNode {
    pub(crate) shared: Arc<Shared>,
}

impl MediaNode {
    /// Starts serving on `bus`.
    pub async fn start(config: MediaConfig, bus: Arc<dyn Bus>) -> Result<MediaNode, BusError> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            pool: Mutex::new(PortPool::new(config.port_min, config.port_max)),
            sessions: Mutex::new(HashMap::new()),
            rooms: Mutex::new(Rooms::default()),
            prompts: Mutex::new(HashMap::new()),
            events: events_tx,
            stats: MediaStats::default(),
            cpu: CpuMeter::start(),
            config,
        });
        let node = MediaNode { shared };
        let allocations =
            typed::queue_subscribe::<MediaAllocate>(bus.as_ref(), &subjects::media_allocate(), groups::MEDIA).await?;
        let id = &node.shared.config.node_id;
        // Session nodes that chose this node by its headroom ask it directly.
        let chosen = typed::subscribe::<MediaAllocate>(bus.as_ref(), &subjects::media_node_allocate(id)).await?;
        let commands = typed::subscribe::<MediaCommand>(bus.as_ref(), &subjects::media_commands(id)).await?;
        tokio::spawn(node.clone().serve_allocations(allocations, bus.clone(), "left the media queue group"));
        tokio::spawn(node.clone().serve_allocations(chosen, bus.clone(), "takes no allocation addressed to it"));
        tokio::spawn(node.clone().serve_commands(commands, bus.clone()));
        tokio::spawn(node.clone().forward_events(events_rx, bus));
        Ok(node)
    }

    pub fn node_id(&self) -> &NodeId {
        &self.shared.config.node_id
    }

    pub fn free_port_pairs(&self) -> usize {
        self.shared.pool.lock().unwrap_or_else(|e| e.into_inner()).free_pairs()
    }

    pub fn active_sessions(&self) -> usize {
        self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Why the node declines new calls now (`None`: it takes them).
    pub fn declines(&self) -> Option<String> {
        let seats = self.shared.rooms.lock().unwrap_or_else(|e| e.into_inner()).counts().1;
        self.shared.config.limits.declines(self.active_sessions() + seats, self.cpu_percent())
    }

    /// The process' CPU use over the last second, in percent of all cores.
    pub fn cpu_percent(&self) -> f32 {
        self.shared.cpu.percent()
    }

    pub fn stats(&self) -> &MediaStats {
        &self.shared.stats
    }

    /// RTP packets relayed so far, by every session (live and released).
    pub fn packets_relayed(&self) -> u64 {
        self.total(|c| c.packets_sent, &self.shared.stats.packets_relayed_released)
    }

    /// Packets refused so far because they came from a source their leg takes no media
    /// from (safe latching), by every session.
    pub fn packets_refused(&self) -> u64 {
        self.total(|c| c.refused_packets, &self.shared.stats.packets_refused_released)
    }

    fn total(&self, count: impl Fn(&LegSnapshot) -> u64, released: &AtomicU64) -> u64 {
        let sessions = self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let live: u64 = sessions.values().map(|r| r.counters().iter().map(&count).sum::<u64>()).sum();
        live + released.load(Ordering::Relaxed)
    }

    /// The counters of a live session's legs.
    pub fn session_counters(&self, session: &str) -> Option<[LegSnapshot; 2]> {
        self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(session).map(|r| r.counters())
    }

    async fn serve_commands(self, mut commands: typed::TypedSubscription<MediaCommand>, bus: Arc<dyn Bus>) {
        while let Some(Received { message, raw }) = commands.next().await {
            let session = message.session_id.clone();
            let reply = self.execute(message);
            if raw.reply.is_some() {
                let _ = typed::reply(bus.as_ref(), &raw, &reply).await;
            } else if !reply.error.is_empty() {
                tracing::warn!(%session, error = %reply.error, "media command failed");
            } else if !reply.stats.is_empty() {
                tracing::debug!(%session, stats = ?reply.stats, "session released");
            }
        }
    }

    fn execute(&self, command: MediaCommand) -> MediaReply {
        let node = self.shared.config.node_id.to_string();
        let mut reply = MediaReply { meta: contracts::meta(&node), ..Default::default() };
        match command.command {
            Some(media_command::Command::Connect(c)) => {
                let sessions = self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
                match (sessions.get(&command.session_id), far_end(&c)) {
                    (Some(relay), Ok(far)) if c.leg < 2 => relay.connect(c.leg as usize, far),
                    (None, _) => reply.error = format!("unknown session {}", command.session_id),
                    (_, Err(e)) => reply.error = format!("bad connect: leg {}: {e}", c.leg),
                    _ => reply.error = format!("bad connect: no leg {}", c.leg),
                }
            }
            Some(media_command::Command::Dtmf(d)) => {
                let sessions = self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
                match (sessions.get(&command.session_id), d.digit.chars().next()) {
                    (Some(relay), Some(digit)) if d.leg < 2 && dtmf::code(digit).is_some() => {
                        relay.dtmf(d.leg as usize, digit, d.duration_ms)
                    }
                    (None, _) => reply.error = format!("unknown session {}", command.session_id),
                    _ => reply.error = format!("bad DTMF: leg {} digit {:?}", d.leg, d.digit),
                }
            }
            Some(
                media_command::Command::RoomJoin(_)
                | media_command::Command::RoomStream(_)
                | media_command::Command::RoomControl(_)
                | media_command::Command::RoomPlay(_)
                | media_command::Command::RoomStopPlaying(_)
                | media_command::Command::RoomHoldMusic(_),
            ) => self.execute_room(command, &mut reply),
            Some(media_command::Command::Record(_)) if self.is_seated(&command.session_id) => {
                self.execute_room(command, &mut reply)
            }
            Some(media_command::Command::Record(r)) => {
                let sessions = self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
                match (sessions.get(&command.session_id), r.start) {
                    (None, _) => reply.error = format!("unknown session {}", command.session_id),
                    (Some(relay), false) => relay.record(None),
                    (Some(relay), true) => match self.recording_of(&command.session_id, command.session_id.clone(), &r) {
                        Ok(info) => {
                            relay.record(Some(info));
                            reply.recording = true;
                        }
                        Err(e) => reply.error = e,
                    },
                }
            }
            Some(media_command::Command::Release(_)) if self.is_seated(&command.session_id) => {
                self.execute_room(command, &mut reply)
            }
            Some(media_command::Command::Release(_)) => {
                let relay = {
                    let mut sessions = self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
                    let relay = sessions.remove(&command.session_id);
                    self.shared.stats.sessions.set(sessions.len());
                    relay
                };
                match relay {
                    Some(relay) => {
                        self.shared.stats.releases.fetch_add(1, Ordering::Relaxed);
                        reply.stats = relay.counters().iter().enumerate().map(|(leg, c)| leg_stats(leg, c)).collect();
                        self.recycle(relay);
                    }
                    None => reply.error = format!("unknown session {}", command.session_id),
                }
            }
            None => reply.error = "empty media command".into(),
        }
        reply
    }

    async fn forward_events(self, mut events: mpsc::UnboundedReceiver<(String, RelayEvent)>, bus: Arc<dyn Bus>) {
        while let Some((session, event)) = events.recv().await {
            let Ok(id) = SessionId::new(session.clone()) else { continue };
            let event = match event {
                RelayEvent::NoRtp { leg, seconds } => media_event::Event::NoRtp(NoRtp { leg: leg as u32, seconds }),
                RelayEvent::Dtmf { leg, digit, duration_ms } => {
                    self.shared.stats.dtmf_digits.fetch_add(1, Ordering::Relaxed);
                    media_event::Event::Dtmf(DtmfReceived { leg: leg as u32, digit: digit.to_string(), duration_ms })
                }
                RelayEvent::PromptEnded { id } => media_event::Event::PromptEnded(PromptEnded { id }),
                RelayEvent::Quality { leg, mos, loss_percent, jitter_ms, level } => {
                    if level >= QualityAlertLevel::Poor {
                        self.shared.stats.quality_alerts.fetch_add(1, Ordering::Relaxed);
                    }
                    let level = level.to_string();
                    media_event::Event::Quality(QualityChanged { leg: leg as u32, mos, loss_percent, jitter_ms, level })
                }
            };
            let message = MediaEvent {
                meta: contracts::meta(self.shared.config.node_id.as_str()),
                session_id: session,
                event: Some(event),
            };
            if let Err(e) = typed::publish(bus.as_ref(), &subjects::session_media_events(&id), &message).await {
                tracing::warn!(error = %e, "media event not published");
            }
        }
    }
}
