//! A conference mixer: N participants, each hears everyone but themselves. Inputs are PCM
//! frames at each participant's own rate (G.711 at 8 kHz beside Opus at 48 kHz), converted to
//! the mixer's rate, weighted by a per-participant gain, summed once in 32 bits; each output
//! is that sum minus the participant's own contribution, clipped to 16 bits and converted
//! back to the participant's rate. Cost per frame is linear in the participants.

use std::time::Duration;

use crate::codec::{CodecError, Resampler};

/// Gains are applied in Q8 fixed point.
const UNITY: i32 = 256;

/// A participant's handle in a mixer.
pub type ParticipantId = u64;

/// Why a mixer refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixerError {
    #[error("participant {0} is not in the mix")]
    Unknown(ParticipantId),
    #[error("participant {0} is already in the mix")]
    Duplicate(ParticipantId),
    #[error(transparent)]
    Rate(#[from] CodecError),
}

struct Participant {
    id: ParticipantId,
    /// Q8 gain.
    gain: i32,
    /// This frame's input at the mixer's rate, gain applied; empty = silent this frame.
    input: Vec<i32>,
    /// Pushed since the last mix (else silent in the next one).
    fresh: bool,
    /// The frame this participant hears, at its own rate.
    output: Vec<i16>,
    to_mix: Option<Resampler>,
    from_mix: Option<Resampler>,
    scratch: Vec<i16>,
}

/// Mixes one conference.
pub struct Mixer {
    rate: u32,
    frame_samples: usize,
    participants: Vec<Participant>,
    total: Vec<i32>,
}

impl Mixer {
    /// A mixer running at `rate` Hz in frames of `frame`.
    pub fn new(rate: u32, frame: Duration) -> Self {
        let frame_samples = (u128::from(rate) * frame.as_micros() / 1_000_000) as usize;
        Self { rate, frame_samples, participants: Vec::new(), total: vec![0; frame_samples] }
    }

    pub fn len(&self) -> usize {
        self.participants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// Adds a participant whose PCM runs at `rate` Hz.
    pub fn add(&mut self, id: ParticipantId, rate: u32) -> Result<(), MixerError> {
        if self.participants.iter().any(|p| p.id == id) {
            return Err(MixerError::Duplicate(id));
        }
        let (to_mix, from_mix) = if rate == self.rate {
            (None, None)
        } else {
            (Some(Resampler::new(rate, self.rate)?), Some(Resampler::new(self.rate, rate)?))
        };
        self.participants.push(Participant {
            id,
            gain: UNITY,
            input: Vec::with_capacity(self.frame_samples),
            fresh: false,
            output: Vec::new(),
            to_mix,
            from_mix,
            scratch: Vec::new(),
        });
        Ok(())
    }

    pub fn remove(&mut self, id: ParticipantId) -> Result<(), MixerError> {
        let i = self.index(id)?;
        self.participants.swap_remove(i);
        Ok(())
    }

    /// Sets how loud `id` is in everyone else's mix, in dB (0 = as is; muted below -60).
    pub fn set_gain_db(&mut self, id: ParticipantId, db: f32) -> Result<(), MixerError> {
        let i = self.index(id)?;
        self.participants[i].gain = if db <= -60.0 { 0 } else { (UNITY as f32 * 10f32.powf(db / 20.0)).round() as i32 };
        Ok(())
    }

    /// `id`'s frame for this period, at its own rate. A participant that pushes nothing is
    /// silent this period.
    pub fn push(&mut self, id: ParticipantId, pcm: &[i16]) -> Result<(), MixerError> {
        let i = self.index(id)?;
        let frame = self.frame_samples;
        let p = &mut self.participants[i];
        let samples: &[i16] = match &mut p.to_mix {
            Some(r) => {
                p.scratch.clear();
                r.process(pcm, &mut p.scratch);
                &p.scratch
            }
            None => pcm,
        };
        p.input.clear();
        let gain = p.gain;
        p.input.extend(samples.iter().take(frame).map(|&s| (i32::from(s) * gain) >> 8));
        p.input.resize(frame, 0);
        p.fresh = true;
        Ok(())
    }

    /// Mixes this period: afterwards [`Mixer::output`] gives what each participant hears,
    /// [`Mixer::total`] the whole mix and [`Mixer::contribution`] each input; a participant
    /// that pushes nothing before the next mix is silent in it.
    pub fn mix(&mut self) {
        self.total.iter_mut().for_each(|t| *t = 0);
        for p in self.participants.iter_mut().filter(|p| !p.fresh) {
            p.input.clear();
        }
        for p in &self.participants {
            for (t, x) in self.total.iter_mut().zip(&p.input) {
                *t += x;
            }
        }
        for p in &mut self.participants {
            p.scratch.clear();
            if p.input.is_empty() {
                p.scratch.extend(self.total.iter().map(|&t| t.clamp(-32768, 32767) as i16));
            } else {
                p.scratch.extend(self.total.iter().zip(&p.input).map(|(&t, &own)| (t - own).clamp(-32768, 32767) as i16));
            }
            p.output.clear();
            match &mut p.from_mix {
                Some(r) => r.process(&p.scratch, &mut p.output),
                None => p.output.extend_from_slice(&p.scratch),
            }
            p.fresh = false;
        }
    }

    /// The last mix as a listener outside it hears it (everyone), at the mixer's rate.
    pub fn total(&self) -> &[i32] {
        &self.total
    }

    /// What `id` put into the last mix, at the mixer's rate, gain applied (empty: nothing).
    pub fn contribution(&self, id: ParticipantId) -> Result<&[i32], MixerError> {
        Ok(&self.participants[self.index(id)?].input)
    }

    /// Samples per frame at the mixer's rate.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// What `id` hears this period, at its own rate.
    pub fn output(&self, id: ParticipantId) -> Result<&[i16], MixerError> {
        Ok(&self.participants[self.index(id)?].output)
    }

    fn index(&self, id: ParticipantId) -> Result<usize, MixerError> {
        self.participants.iter().position(|p| p.id == id).ok_or(MixerError::Unknown(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone::{goertzel_power, sine};

    const FRAME: Duration = Duration::from_millis(20);

    #[test]
    fn each_hears_everyone_but_themselves() {
        let mut m = Mixer::new(8000, FRAME);
        for id in 1..=3 {
            m.add(id, 8000).unwrap();
        }
        m.push(1, &[100; 160]).unwrap();
        m.push(2, &[20; 160]).unwrap();
        m.push(3, &[3; 160]).unwrap();
        m.mix();
        assert_eq!(m.output(1).unwrap()[0], 23);
        assert_eq!(m.output(2).unwrap()[0], 103);
        assert_eq!(m.output(3).unwrap()[0], 120);
    }

    #[test]
    fn the_total_and_each_contribution_stay_readable_until_the_next_mix() {
        let mut m = Mixer::new(8000, FRAME);
        for id in 1..=2 {
            m.add(id, 8000).unwrap();
        }
        m.push(1, &[100; 160]).unwrap();
        m.push(2, &[20; 160]).unwrap();
        m.mix();
        assert_eq!((m.total()[0], m.contribution(1).unwrap()[0], m.contribution(2).unwrap()[0]), (120, 100, 20));
        m.push(2, &[5; 160]).unwrap();
        m.mix();
        assert_eq!((m.total()[0], m.contribution(1).unwrap().len(), m.output(1).unwrap()[0]), (5, 0, 5), "1 was silent");
    }

    #[test]
    fn sums_clip_instead_of_wrapping_and_gain_applies() {
        let mut m = Mixer::new(8000, FRAME);
        for id in 1..=3 {
            m.add(id, 8000).unwrap();
        }
        m.push(1, &[30000; 160]).unwrap();
        m.push(2, &[30000; 160]).unwrap();
        m.push(3, &[-30000; 160]).unwrap();
        m.mix();
        assert_eq!(m.output(3).unwrap()[0], 32767);
        assert_eq!(m.output(1).unwrap()[0], 0);
        m.set_gain_db(2, -6.0).unwrap();
        m.set_gain_db(3, -100.0).unwrap();
        m.push(2, &[10000; 160]).unwrap();
        m.push(3, &[10000; 160]).unwrap();
        m.mix();
        let heard = m.output(1).unwrap()[0];
        assert!((4990..=5020).contains(&heard), "-6 dB of 10000 and a muted one: {heard}");
    }

    #[test]
    fn participants_at_different_rates_hear_each_other() {
        let mut m = Mixer::new(16000, FRAME);
        m.add(8, 8000).unwrap();
        m.add(48, 48000).unwrap();
        let narrow = sine(440.0, 8000, 8000, 8000.0);
        let wide = sine(1200.0, 48000, 48000, 8000.0);
        let (mut heard_by_8, mut heard_by_48) = (Vec::new(), Vec::new());
        for (n, w) in narrow.chunks(160).zip(wide.chunks(960)) {
            m.push(8, n).unwrap();
            m.push(48, w).unwrap();
            m.mix();
            heard_by_8.extend_from_slice(m.output(8).unwrap());
            heard_by_48.extend_from_slice(m.output(48).unwrap());
        }
        assert_eq!((heard_by_8.len(), heard_by_48.len()), (8000, 48000));
        let tail8 = &heard_by_8[2000..];
        let tail48 = &heard_by_48[12000..];
        assert!(goertzel_power(tail8, 1200.0, 8000) > 100.0 * goertzel_power(tail8, 440.0, 8000));
        assert!(goertzel_power(tail48, 440.0, 48000) > 100.0 * goertzel_power(tail48, 1200.0, 48000));
    }

    #[test]
    fn unknown_and_duplicate_participants_are_errors() {
        let mut m = Mixer::new(8000, FRAME);
        m.add(1, 8000).unwrap();
        assert_eq!(m.add(1, 8000), Err(MixerError::Duplicate(1)));
        assert_eq!(m.push(2, &[0; 160]), Err(MixerError::Unknown(2)));
        assert!(matches!(m.add(2, 44100), Err(MixerError::Rate(_))));
        m.remove(1).unwrap();
        assert!(m.is_empty());
    }
}
