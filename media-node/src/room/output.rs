//! What a room plays and records beyond its seats: prompts started and ended, each frame
//! into the recording, and each seat's quality scored.

use media::quality::{self, CodecImpairment};

use super::player::Player;
use super::{MIX_RATE, Room, at_rate, room_player};
use crate::relay::RelayEvent;

impl Room {
    pub(super) fn play(&mut self, id: u32, requester: String, seat: Option<String>, samples: &[i16], rate: u32, looped: bool) {
        let to_rate = match &seat {
            Some(s) => self.seats.get(s).and_then(|s| s.endpoint.as_ref()).map(|e| e.rate),
            None => Some(MIX_RATE),
        };
        let Some(to_rate) = to_rate else {
            return tracing::warn!(room = %self.name, ?seat, "prompt for a seat without a stream: not played");
        };
        match at_rate(samples, rate, to_rate) {
            Ok(samples) => {
                if seat.is_none() && self.mixer.add(room_player(id), MIX_RATE).is_err() {
                    return tracing::warn!(room = %self.name, id, "a room prompt with that id plays already");
                }
                self.players.push(Player::new(id, requester, seat, samples, looped));
            }
            Err(e) => tracing::warn!(room = %self.name, error = %e, "prompt not played"),
        }
    }

    /// Prompts played once that are over: reported to whoever asked, and forgotten.
    pub(super) fn end_prompts(&mut self) {
        let (ended, playing): (Vec<Player>, Vec<Player>) =
            std::mem::take(&mut self.players).into_iter().partition(Player::is_over);
        self.players = playing;
        for p in ended {
            if p.seat.is_none() {
                let _ = self.mixer.remove(room_player(p.id));
            }
            (self.events)(&p.requester, RelayEvent::PromptEnded { id: p.id });
        }
    }

    /// This frame into the recording: the first party's channel and everyone else's.
    pub(super) fn record(&self) {
        let Some((recording, first)) = &self.recording else { return };
        let clip = |x: i32| x.clamp(-32768, 32767) as i16;
        let n = self.mixer.frame_samples();
        let first_id = first.as_ref().and_then(|s| self.seats.get(s)).map(|s| s.id);
        let mine: Vec<i32> = match first_id.map(|id| self.mixer.contribution(id)) {
            Some(Ok(c)) if c.len() == n => c.to_vec(),
            _ => vec![0; n],
        };
        let others = self.mixer.total().iter().zip(&mine).map(|(t, m)| clip(t - m)).collect();
        recording.frame(mine.into_iter().map(clip).collect(), others);
    }

    /// Each seat's quality over the last interval (as a relayed leg's); a change of alert
    /// level goes to its session.
    pub(super) fn score(&mut self) {
        let now = std::time::Instant::now();
        let mut changed = Vec::new();
        for (session, seat) in &mut self.seats {
            let Some(ep) = seat.endpoint.as_mut() else { continue };
            let Some(block) = ep.receiver.report_block(now) else { continue };
            let codec = CodecImpairment::for_codec(&ep.negotiated.codec.name);
            let inputs = quality::interval_inputs(block.fraction_lost, block.jitter, ep.negotiated.codec.clock_rate, codec);
            let estimate = quality::estimate(&inputs);
            if seat.level.replace(estimate.level) != Some(estimate.level) {
                changed.push((session.clone(), inputs, estimate));
            }
        }
        for (session, inputs, estimate) in changed {
            let (loss_percent, jitter_ms) = (inputs.loss_percent, inputs.jitter_ms);
            let event = RelayEvent::Quality { leg: 0, mos: estimate.mos, loss_percent, jitter_ms, level: estimate.level };
            (self.events)(&session, event);
        }
    }
}
