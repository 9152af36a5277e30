//! Recording a relayed call: the relay hands a copy of each RTP packet it relays to a task
//! of its own (a bounded queue: when it falls behind, copies are dropped and counted — the
//! relay never waits), which plays each leg out through a jitter buffer and its decoder
//! (`media::endpoint`, the codec told by the payload type: PCMU 0, PCMA 8, Opus on a
//! dynamic type of a 48 kHz leg) and every 20 ms writes the caller's frame on the left and
//! the callee's on the right (`recording.rs`: at 8 kHz when both far ends are narrowband
//! as the call starts, else 16 kHz). The sidecar names the parties
//! `caller` and `callee`, with the codec each was first heard in.

use std::time::Duration;

use bytes::Bytes;
use media::codec::Resampler;
use media::endpoint::Endpoint;
use media::sdp::{Codec, Direction, Negotiated};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::MissedTickBehavior;

use crate::recording::{Recording, RecordingInfo};
use crate::room::MIX_RATE;

/// Packets queued for the tap at most (a second of both legs).
const QUEUE: usize = 100;

/// The relay's end of a recording.
pub struct Tap {
    packets: mpsc::Sender<(usize, Bytes)>,
    dropped: u64,
}

/// What a leg's far end sends, as far as the tap needs to know.
#[derive(Debug, Clone, Copy, Default)]
pub struct LegCodec {
    pub clock_rate: u32,
    pub events: Option<u8>,
}

impl Tap {
    /// Starts recording `info.path` from what the two legs send.
    pub fn start(mut info: RecordingInfo, legs: [LegCodec; 2]) -> Result<Tap, String> {
        // Two narrowband far ends (G.711) are recorded at their own rate: no resampling.
        info.rate = if legs.iter().all(|l| l.clock_rate == 8000) { 8000 } else { MIX_RATE };
        let rate = info.rate;
        let recording = Recording::start(info)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(play_out(recording, rate, legs, rx));
        Ok(Tap { packets: tx, dropped: 0 })
    }

    /// A copy of an RTP packet `leg`'s far end sent.
    pub fn packet(&mut self, leg: usize, packet: &[u8]) {
        if let Err(TrySendError::Full(_)) = self.packets.try_send((leg, Bytes::copy_from_slice(packet))) {
            self.dropped += 1;
        }
    }

    /// Copies the tap could not keep up with.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The codec payload type `pt` stands for on a leg of `codec`'s clock.
fn codec_of(pt: u8, leg: LegCodec) -> Option<Codec> {
    match pt {
        0 => Some(Codec::pcmu()),
        8 => Some(Codec::pcma()),
        96..=127 if leg.clock_rate == 48_000 && Some(pt) != leg.events => Some(Codec::opus(pt)),
        _ => None,
    }
}

/// A leg played out: its decoder, and the resampler to the recording's rate (its state
/// kept from frame to frame).
struct Decoder {
    ep: Endpoint,
    to_recording: Option<Resampler>,
}

fn decoder(codec: Codec, rate: u32) -> Option<Decoder> {
    let n = Negotiated { direction: Direction::RecvOnly, ..Negotiated::plain(codec, None) };
    let ep = Endpoint::new(n, rate).ok()?;
    let to_recording = (ep.rate != rate).then(|| Resampler::new(ep.rate, rate).ok()).flatten();
    Some(Decoder { ep, to_recording })
}

async fn play_out(recording: Recording, rate: u32, legs: [LegCodec; 2], mut packets: mpsc::Receiver<(usize, Bytes)>) {
    let mut decoders: [Option<Decoder>; 2] = [None, None];
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let frame = rate as usize / 50;
    loop {
        tokio::select! {
            packet = packets.recv() => {
                let Some((leg, packet)) = packet else { break };
                let Some(parsed) = media::rtp::parse_packet(&packet) else { continue };
                let pt = parsed.header.payload_type;
                let Some(codec) = codec_of(pt, legs[leg]) else { continue };
                let slot = &mut decoders[leg];
                if slot.as_ref().is_none_or(|d| d.ep.negotiated.recv_payload_type != pt) {
                    if slot.is_none() {
                        recording.joined(["caller", "callee"][leg], &codec.name);
                    }
                    *slot = decoder(codec, rate);
                }
                if let Some(d) = slot {
                    d.ep.receive(&parsed, std::time::Instant::now());
                }
            }
            _ = ticker.tick() => {
                let now = std::time::Instant::now();
                let [left, right] = [0, 1].map(|leg| {
                    let mut out = Vec::with_capacity(frame);
                    if let Some(d) = decoders[leg].as_mut()
                        && let Some(pcm) = d.ep.playout(now)
                    {
                        match &mut d.to_recording {
                            Some(r) => r.process(&pcm, &mut out),
                            None => out = pcm,
                        }
                    }
                    out.resize(frame, 0);
                    out
                });
                recording.frame(left, right);
            }
        }
    }
}
