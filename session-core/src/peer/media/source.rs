//! Audio to play into a call: WAV files (any rate, mono or stereo, 16-bit or float) brought
//! to mono at the call's rate, and the hold beep.

use std::path::Path;

use media::audio::tone;
use media::codec::resample::Resampler;

use super::AudioFrame;
use crate::peer::error::PeerError;

/// Reads a WAV file as mono PCM at its own rate (channels averaged).
pub fn load_wav(path: impl AsRef<Path>) -> Result<AudioFrame, PeerError> {
    let (samples, rate) = media::audio::wav::read_mono(path).map_err(PeerError::Media)?;
    Ok(AudioFrame::new(samples, rate))
}

/// `frame` at `rate`: the polyphase resampler where the ratio allows, else linear interpolation.
pub(crate) fn to_rate(frame: &AudioFrame, rate: u32) -> Vec<i16> {
    if frame.sample_rate == rate {
        return frame.samples.clone();
    }
    if let Ok(mut r) = Resampler::new(frame.sample_rate, rate) {
        let mut out = Vec::with_capacity(frame.samples.len() * rate as usize / frame.sample_rate as usize + 8);
        r.process(&frame.samples, &mut out);
        return out;
    }
    let n = (frame.samples.len() as u64 * u64::from(rate) / u64::from(frame.sample_rate.max(1))) as usize;
    let step = f64::from(frame.sample_rate) / f64::from(rate);
    (0..n)
        .map(|i| {
            let x = i as f64 * step;
            let j = x as usize;
            let a = f64::from(frame.samples.get(j).copied().unwrap_or(0));
            let b = f64::from(frame.samples.get(j + 1).copied().unwrap_or(0));
            (a + (b - a) * (x - j as f64)) as i16
        })
        .collect()
}

/// Four seconds: a 440 Hz beep of 300 ms, then silence.
pub(crate) fn hold_beep(rate: u32) -> AudioFrame {
    let mut samples = tone::sine(440.0, rate, rate as usize * 3 / 10, 8000.0);
    samples.resize(rate as usize * 4, 0);
    AudioFrame::new(samples, rate)
}
