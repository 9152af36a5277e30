//! Recording a room to WAV without costing its mixing its real-time budget: the room hands
//! each 20 ms frame over, gathered 200 ms at a time (a thread wakes five times a second
//! per recording, not fifty) into a bounded queue, and a writer thread owns the file (`media`'s
//! `Recorder`: its header brought up to date every second, so after a crash the file is
//! valid up to the last second written). A full queue (a stalled disk) drops frames and
//! counts them rather than making the room wait. When the recording stops — by command,
//! when the room closes, when the node shuts down — the file is finalised and a JSON
//! sidecar written beside it: the room, the parties with their codecs and times, the start
//! and end.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use media::audio::{Recorder, RecordingLayout};

/// Batches queued for the writer at most (10 s).
const QUEUE: usize = 50;
/// Audio gathered before it goes to the writer, in ms.
const BATCH_MS: u32 = 200;

/// How a room is laid out in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Everyone in one channel.
    Mixed,
    /// Two channels: the first party (the one who asked for the recording, e.g. the caller)
    /// and everyone else.
    Stereo,
}

/// What a recording is of.
#[derive(Debug, Clone)]
pub struct RecordingInfo {
    pub room: String,
    pub path: PathBuf,
    pub layout: Layout,
    pub rate: u32,
    /// Its part of the call (1 the first; the next on a node the call moved to).
    pub segment: u32,
}

enum Message {
    Frame(Vec<i16>, Vec<i16>),
    Joined { session: String, codec: String },
    Left { session: String },
}

/// A recording in progress; dropping it stops it.
pub struct Recording {
    queue: Option<SyncSender<Message>>,
    /// Audio not yet handed to the writer: each channel, and the frames in it.
    pending: Mutex<(Vec<i16>, Vec<i16>, u64)>,
    batch_samples: usize,
    dropped: Arc<AtomicU64>,
    writer: Option<std::thread::JoinHandle<()>>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Recording {
    /// Starts writing `info.path` (its sidecar goes beside it, `.json`).
    pub fn start(info: RecordingInfo) -> Result<Recording, String> {
        let layout = match info.layout {
            Layout::Mixed => RecordingLayout::Mixed,
            Layout::Stereo => RecordingLayout::PerLeg { legs: 2 },
        };
        if let Some(dir) = info.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("recording directory {}: {e}", dir.display()))?;
        }
        let recorder = Recorder::create(&info.path, info.rate, layout).map_err(|e| e.to_string())?;
        let batch_samples = (info.rate * BATCH_MS / 1000) as usize;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        let writer = std::thread::Builder::new()
            .name(format!("record-{}", info.room))
            .spawn(move || write(info, recorder, rx, counted))
            .map_err(|e| e.to_string())?;
        let pending = Mutex::new((Vec::with_capacity(batch_samples), Vec::with_capacity(batch_samples), 0));
        Ok(Recording { queue: Some(tx), pending, batch_samples, dropped, writer: Some(writer) })
    }

    /// One frame: the first party's audio and everyone else's (equal lengths).
    pub fn frame(&self, first: Vec<i16>, others: Vec<i16>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.0.extend_from_slice(&first);
        pending.1.extend_from_slice(&others);
        pending.2 += 1;
        if pending.0.len() >= self.batch_samples {
            self.flush(&mut pending);
        }
    }

    pub fn joined(&self, session: &str, codec: &str) {
        self.send(Message::Joined { session: session.to_owned(), codec: codec.to_owned() }, 0);
    }

    pub fn left(&self, session: &str) {
        self.send(Message::Left { session: session.to_owned() }, 0);
    }

    /// Hands the audio gathered so far to the writer.
    fn flush(&self, pending: &mut (Vec<i16>, Vec<i16>, u64)) {
        if pending.2 > 0 {
            let (first, others) = (std::mem::take(&mut pending.0), std::mem::take(&mut pending.1));
            self.send(Message::Frame(first, others), std::mem::take(&mut pending.2));
        }
    }

    /// Sends `message` (holding `frames` frames, counted as dropped if the queue is full).
    fn send(&self, message: Message, frames: u64) {
        if let Some(queue) = &self.queue
            && let Err(TrySendError::Full(_)) = queue.try_send(message)
        {
            self.dropped.fetch_add(frames, Ordering::Relaxed);
        }
    }

    /// Frames the writer could not keep up with.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let mut pending = std::mem::take(self.pending.get_mut().unwrap_or_else(|e| e.into_inner()));
        self.flush(&mut pending);
        // Closing the queue tells the writer to finish; it does so on its own thread.
        self.queue.take();
        self.writer.take();
    }
}

struct Party {
    session: String,
    codec: String,
    joined_unix_ms: u64,
    left_unix_ms: Option<u64>,
}

fn write(info: RecordingInfo, mut recorder: Recorder, frames: mpsc::Receiver<Message>, dropped: Arc<AtomicU64>) {
    let started = now_ms();
    let mut parties: Vec<Party> = Vec::new();
    let mut failed = None;
    for message in frames {
        match message {
            Message::Frame(first, others) if failed.is_none() => {
                let result = match info.layout {
                    Layout::Mixed => {
                        let mixed: Vec<i16> = first.iter().zip(&others).map(|(a, b)| a.saturating_add(*b)).collect();
                        recorder.write(&[&mixed])
                    }
                    Layout::Stereo => recorder.write(&[&first, &others]),
                };
                failed = result.err().map(|e| e.to_string());
            }
            Message::Frame(..) => {}
            Message::Joined { session, codec } => {
                parties.push(Party { session, codec, joined_unix_ms: now_ms(), left_unix_ms: None })
            }
            Message::Left { session } => {
                if let Some(p) = parties.iter_mut().rev().find(|p| p.session == session && p.left_unix_ms.is_none()) {
                    p.left_unix_ms = Some(now_ms());
                }
            }
        }
    }
    let ended = now_ms();
    let summary = recorder.finish();
    if let Some(e) = failed.or_else(|| summary.as_ref().err().map(ToString::to_string)) {
        tracing::warn!(room = %info.room, path = %info.path.display(), error = %e, "recording failed");
    }
    let sidecar = serde_json::json!({
        "room": info.room,
        "file": info.path.file_name().map(|f| f.to_string_lossy().into_owned()),
        "layout": match info.layout { Layout::Mixed => "mixed", Layout::Stereo => "stereo" },
        "sample_rate": info.rate,
        "segment": info.segment,
        "started_unix_ms": started,
        "ended_unix_ms": ended,
        "duration_ms": summary.as_ref().map_or(0, |s| s.duration.as_millis() as u64),
        "frames_dropped": dropped.load(Ordering::Relaxed),
        "parties": parties.iter().map(|p| serde_json::json!({
            "session": p.session,
            "codec": p.codec,
            "joined_unix_ms": p.joined_unix_ms,
            "left_unix_ms": p.left_unix_ms.unwrap_or(ended),
        })).collect::<Vec<_>>(),
    });
    let path = info.path.with_extension("json");
    let text = serde_json::to_string_pretty(&sidecar).unwrap_or_default();
    if let Err(e) = std::fs::write(&path, text) {
        tracing::warn!(path = %path.display(), error = %e, "recording sidecar not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::audio::tone;

    fn read(path: &std::path::Path) -> (u16, Vec<i16>) {
        let mut reader = hound::WavReader::open(path).unwrap();
        (reader.spec().channels, reader.samples::<i16>().map(Result::unwrap).collect())
    }

    #[test]
    fn a_stereo_recording_keeps_each_side_on_its_channel_and_says_who_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls/room-1.wav");
        let info = RecordingInfo { room: "room-1".into(), path: path.clone(), layout: Layout::Stereo, rate: 16_000, segment: 1 };
        let recording = Recording::start(info).unwrap();
        recording.joined("alice", "PCMU");
        recording.joined("bob", "opus");
        let (a, b) = (tone::sine(440.0, 16_000, 16_000, 8000.0), tone::sine(1000.0, 16_000, 16_000, 8000.0));
        for (x, y) in a.chunks(320).zip(b.chunks(320)) {
            recording.frame(x.to_vec(), y.to_vec());
        }
        recording.left("bob");
        let writer = {
            let mut r = recording;
            let mut pending = std::mem::take(r.pending.get_mut().unwrap());
            r.flush(&mut pending);
            r.queue.take();
            r.writer.take().unwrap()
        };
        writer.join().unwrap();
        let (channels, samples) = read(&path);
        assert_eq!((channels, samples.len()), (2, 32_000));
        let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
        let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
        assert_eq!(tone::dominant_tone(&left, 16_000, &[440.0, 1000.0]).map(|(f, _)| f), Some(440.0));
        assert_eq!(tone::dominant_tone(&right, 16_000, &[440.0, 1000.0]).map(|(f, _)| f), Some(1000.0));
        let sidecar: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path.with_extension("json")).unwrap()).unwrap();
        assert_eq!((sidecar["room"].as_str(), sidecar["duration_ms"].as_u64()), (Some("room-1"), Some(1000)));
        let parties: Vec<_> = sidecar["parties"].as_array().unwrap().iter().map(|p| p["codec"].as_str().unwrap()).collect();
        assert_eq!(parties, ["PCMU", "opus"]);
    }
}
