//! The media node's conference rooms on the bus: seats taken (`MediaAllocate` with a room,
//! or `RoomJoin`), given their stream, muted, played to, recorded, released. Prompts are WAV
//! files of the node's prompt directory (read once, then kept); recordings go to its
//! recording directory, named by the session that asked.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use cluster::contracts::{MediaCommand, MediaReply, Record, media_command};

use crate::node::MediaNode;
use crate::recording::{Layout, RecordingInfo};
use crate::room::{MIX_RATE, ReleasePort, RoomCommand, SeatEvents};
use crate::rooms::valid_room;

/// A prompt read from disk: mono PCM (shared by every room that plays it) and its rate.
pub(crate) type Prompt = (Arc<Vec<i16>>, u32);

/// `name` inside `dir`, refusing anything that would leave it.
pub(crate) fn inside(dir: Option<&Path>, name: &str, what: &str) -> Result<PathBuf, String> {
    let dir = dir.ok_or_else(|| format!("no {what} directory configured"))?;
    let relative = Path::new(name);
    if name.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(format!("bad {what} name {name:?}"));
    }
    Ok(dir.join(relative))
}

impl MediaNode {
    /// A seat for `session` in `room` (started here if new): its RTP port.
    pub(crate) fn seat(&self, room: &str, session: &str) -> Result<u16, String> {
        if !valid_room(room) {
            return Err(format!("bad room name {room:?}"));
        }
        let pair = self.shared.pool.lock().unwrap_or_else(|e| e.into_inner()).bind_pair(self.shared.config.bind_ip);
        let pair = pair.map_err(|e| e.to_string())?;
        let port = pair.rtp_port;
        let start = || -> (SeatEvents, ReleasePort) {
            let events = self.shared.events.clone();
            let report: SeatEvents = Box::new(move |session, e| {
                let _ = events.send((session.to_owned(), e));
            });
            let shared = Arc::downgrade(&self.shared);
            let release: ReleasePort = Box::new(move |port| {
                if let Some(shared) = shared.upgrade() {
                    shared.pool.lock().unwrap_or_else(|e| e.into_inner()).release_port(port);
                }
            });
            (report, release)
        };
        self.shared.rooms.lock().unwrap_or_else(|e| e.into_inner()).join(room, session, pair, start);
        Ok(port)
    }

    /// Conference rooms open here, and the seats in them.
    pub fn room_counts(&self) -> (usize, usize) {
        self.shared.rooms.lock().unwrap_or_else(|e| e.into_inner()).counts()
    }

    pub(crate) fn is_seated(&self, session: &str) -> bool {
        self.shared.rooms.lock().unwrap_or_else(|e| e.into_inner()).is_seated(session)
    }

    /// A prompt file, read the first time it is asked for.
    fn prompt(&self, file: &str) -> Result<Prompt, String> {
        let path = inside(self.shared.config.prompts_dir.as_deref(), file, "prompt")?;
        if let Some(p) = self.shared.prompts.lock().unwrap_or_else(|e| e.into_inner()).get(&path) {
            return Ok(p.clone());
        }
        let (samples, rate) = media::audio::wav::read_mono(&path)?;
        // A rate the rooms cannot convert (44.1 kHz) is refused now, not at every play.
        media::codec::Resampler::new(rate, MIX_RATE).map_err(|e| format!("prompt {file:?} at {rate} Hz: {e}"))?;
        let prompt: Prompt = (Arc::new(samples), rate);
        self.shared.prompts.lock().unwrap_or_else(|e| e.into_inner()).insert(path, prompt.clone());
        Ok(prompt)
    }

    /// `first` then `then`, as one prompt: the files' samples one after the other, at the
    /// rooms' rate when their rates differ.
    fn playlist(&self, first: &str, then: &[String]) -> Result<Prompt, String> {
        let first = self.prompt(first)?;
        if then.is_empty() {
            return Ok(first);
        }
        let mut prompts = vec![first];
        for file in then {
            prompts.push(self.prompt(file)?);
        }
        let rate = if prompts.iter().all(|p| p.1 == prompts[0].1) { prompts[0].1 } else { MIX_RATE };
        let mut samples = Vec::with_capacity(prompts.iter().map(|p| p.0.len()).sum());
        for (part, from) in &prompts {
            if *from == rate {
                samples.extend_from_slice(part);
            } else {
                let mut resampler = media::codec::Resampler::new(*from, rate).map_err(|e| e.to_string())?;
                resampler.process(part, &mut samples);
            }
        }
        Ok((Arc::new(samples), rate))
    }

    /// Sends `command` to `session`'s room, or says it has none.
    fn to_room(&self, session: &str, command: RoomCommand) -> Result<(), String> {
        let rooms = self.shared.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if rooms.send(session, command) { Ok(()) } else { Err(format!("no seat for session {session}")) }
    }

    pub(crate) fn execute_room(&self, command: MediaCommand, reply: &mut MediaReply) {
        let session = command.session_id;
        let result = match command.command {
            Some(media_command::Command::RoomJoin(j)) => self.seat(&j.room, &session).map(|port| {
                reply.rtp_addr = SocketAddr::new(self.shared.config.advertise_ip, port).to_string();
            }),
            Some(media_command::Command::RoomStream(stream)) => {
                crate::wire::from_wire(&stream).map_err(|e| format!("bad stream: {e}")).and_then(|(negotiated, signal)| {
                    self.to_room(&session, RoomCommand::Stream { session: session.clone(), negotiated, signal })
                })
            }
            Some(media_command::Command::RoomControl(c)) => {
                self.to_room(&session, RoomCommand::Control { session: session.clone(), muted: c.muted, deaf: c.deaf })
            }
            Some(media_command::Command::RoomPlay(p)) => self.playlist(&p.file, &p.then).and_then(|prompt| {
                let seat = p.own_seat_only.then(|| session.clone());
                let samples = prompt.0.clone();
                let play =
                    RoomCommand::Play { id: p.id, requester: session.clone(), seat, samples, rate: prompt.1, looped: p.looped };
                self.to_room(&session, play)
            }),
            Some(media_command::Command::RoomStopPlaying(p)) => self.to_room(&session, RoomCommand::StopPlaying { id: p.id }),
            Some(media_command::Command::RoomHoldMusic(m)) if m.file.is_empty() => {
                self.to_room(&session, RoomCommand::HoldMusic { samples: None })
            }
            Some(media_command::Command::RoomHoldMusic(m)) => self.prompt(&m.file).and_then(|prompt| {
                let samples = Some(prompt);
                self.to_room(&session, RoomCommand::HoldMusic { samples })
            }),
            Some(media_command::Command::Record(r)) if !r.start => {
                self.shared.rooms.lock().unwrap_or_else(|e| e.into_inner()).stop_recording(&session);
                self.to_room(&session, RoomCommand::StopRecording)
            }
            Some(media_command::Command::Record(r)) => self.record(&session, &r).map(|owner| reply.recording = owner),
            Some(media_command::Command::Release(_)) => {
                let empty = self.shared.rooms.lock().unwrap_or_else(|e| e.into_inner()).leave(&session);
                reply.room_empty = empty.unwrap_or(false);
                Ok(())
            }
            _ => Err("not a room command".into()),
        };
        if let Err(e) = result {
            reply.error = e;
        }
    }

    /// What `session`'s recording is (`room`: what is recorded): its file — `<session>.wav`,
    /// or `<session>-<n>.wav` for a segment n > 1 — its layout and segment.
    pub(crate) fn recording_of(&self, session: &str, room: String, r: &Record) -> Result<RecordingInfo, String> {
        let layout = match r.layout.as_str() {
            "" | "stereo" => Layout::Stereo,
            "mixed" => Layout::Mixed,
            other => return Err(format!("unknown recording layout {other:?} (stereo or mixed)")),
        };
        let segment = r.segment.max(1);
        let name = if segment == 1 { format!("{session}.wav") } else { format!("{session}-{segment}.wav") };
        let path = inside(self.shared.config.recordings_dir.as_deref(), &name, "recording")?;
        Ok(RecordingInfo { room, path, layout, rate: MIX_RATE, segment })
    }

    /// Starts recording `session`'s room, unless another seat records it: whether it does.
    fn record(&self, session: &str, r: &Record) -> Result<bool, String> {
        let room = {
            let mut rooms = self.shared.rooms.lock().unwrap_or_else(|e| e.into_inner());
            match rooms.recorder(session) {
                Some((room, true)) => room,
                Some((_, false)) => return Ok(false),
                None => return Err(format!("no seat for session {session}")),
            }
        };
        let info = self.recording_of(session, room, r)?;
        self.to_room(session, RoomCommand::Record { info, first: Some(session.to_owned()) })?;
        Ok(true)
    }
}
