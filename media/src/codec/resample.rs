//! Sample-rate conversion by a rational factor L/M (8 ↔ 16 ↔ 48 kHz and the like): a
//! Kaiser-windowed sinc low-pass at the lower of the two Nyquist rates, evaluated as a
//! polyphase filter so only the taps that meet a real input sample are computed. Streaming:
//! state carries over between frames, so frame edges do not click.

use super::CodecError;

/// Taps per polyphase branch: ~80 dB stop band with the transition below.
const TAPS_PER_PHASE: usize = 32;
/// Pass band edge as a fraction of the lower Nyquist rate.
const PASS_FRACTION: f64 = 0.90;
/// Kaiser window shape (β ≈ 8: ~80 dB side lobes).
const KAISER_BETA: f64 = 8.0;
/// Largest interpolation or decimation factor accepted (48000/8000 = 6).
const MAX_FACTOR: u32 = 48;

/// A streaming resampler for mono 16-bit PCM.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    up: usize,
    down: usize,
    /// `phases[p]` holds branch `p`, oldest tap first, to meet the history in order.
    phases: Vec<[f32; TAPS_PER_PHASE]>,
    /// The last `TAPS_PER_PHASE` inputs, written twice so a window is always contiguous.
    history: [f32; 2 * TAPS_PER_PHASE],
    head: usize,
    /// Next output's position on the upsampled grid, relative to the newest input.
    offset: usize,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Self, CodecError> {
        if from == 0 || to == 0 {
            return Err(CodecError::Unsupported(format!("resampling {from} Hz → {to} Hz")));
        }
        let g = gcd(from, to);
        let (up, down) = (to / g, from / g);
        if up > MAX_FACTOR || down > MAX_FACTOR {
            return Err(CodecError::Unsupported(format!("resampling {from} Hz → {to} Hz (factor {up}/{down})")));
        }
        let (up, down) = (up as usize, down as usize);
        Ok(Self { from, to, up, down, phases: design(up, down), history: [0.0; 2 * TAPS_PER_PHASE], head: 0, offset: up })
    }

    pub fn input_rate(&self) -> u32 {
        self.from
    }

    pub fn output_rate(&self) -> u32 {
        self.to
    }

    /// Appends the resampled `input` to `out` (about `input.len() · to / from` samples; the
    /// filter delays the signal by `TAPS_PER_PHASE / 2` input samples).
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        if self.up == 1 && self.down == 1 {
            out.extend_from_slice(input);
            return;
        }
        out.reserve(input.len() * self.up / self.down + 1);
        for &x in input {
            self.head = (self.head + 1) % TAPS_PER_PHASE;
            self.history[self.head] = f32::from(x);
            self.history[self.head + TAPS_PER_PHASE] = f32::from(x);
            // The window ends at the newest sample: oldest first.
            let window = &self.history[self.head + 1..self.head + 1 + TAPS_PER_PHASE];
            self.offset -= self.up;
            while self.offset < self.up {
                let taps = &self.phases[self.offset];
                let y: f32 = taps.iter().zip(window).map(|(h, v)| h * v).sum();
                out.push(y.round().clamp(-32768.0, 32767.0) as i16);
                self.offset += self.down;
            }
        }
    }
}

/// The prototype low-pass at the upsampled rate, split into `up` branches.
fn design(up: usize, down: usize) -> Vec<[f32; TAPS_PER_PHASE]> {
    let n = TAPS_PER_PHASE * up;
    // Cut-off in cycles per upsampled sample: the lower Nyquist rate, slightly inside.
    let cutoff = 0.5 / up.max(down) as f64 * PASS_FRACTION;
    let centre = (n - 1) as f64 / 2.0;
    let norm = bessel_i0(KAISER_BETA);
    let h: Vec<f64> = (0..n)
        .map(|i| {
            let t = i as f64 - centre;
            let sinc = if t == 0.0 {
                1.0
            } else {
                (2.0 * std::f64::consts::PI * cutoff * t).sin() / (std::f64::consts::PI * 2.0 * cutoff * t)
            };
            let r = 2.0 * t / (n - 1) as f64;
            let window = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / norm;
            2.0 * cutoff * sinc * window * up as f64
        })
        .collect();
    (0..up)
        .map(|p| {
            let mut branch = [0.0f32; TAPS_PER_PHASE];
            for j in 0..TAPS_PER_PHASE {
                // Tap j meets the input j samples before the newest: oldest first.
                branch[TAPS_PER_PHASE - 1 - j] = h[p + j * up] as f32;
            }
            branch
        })
        .collect()
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone::{goertzel_power, sine};

    fn convert(from: u32, to: u32, input: &[i16]) -> Vec<i16> {
        let mut r = Resampler::new(from, to).unwrap();
        let mut out = Vec::new();
        // In 20 ms frames, as a call would feed it.
        for frame in input.chunks(from as usize / 50) {
            r.process(frame, &mut out);
        }
        out
    }

    #[test]
    fn output_length_follows_the_ratio() {
        for (from, to) in [(8000, 16000), (16000, 8000), (8000, 48000), (48000, 8000), (16000, 48000), (48000, 16000)] {
            let out = convert(from, to, &vec![0; from as usize]);
            assert_eq!(out.len(), to as usize, "{from} → {to}");
        }
    }

    #[test]
    fn a_tone_keeps_its_pitch_and_level() {
        for (from, to) in [(8000, 16000), (16000, 8000), (8000, 48000), (48000, 8000), (16000, 48000), (48000, 16000)] {
            let input = sine(1000.0, from, from as usize, 10000.0);
            let out = convert(from, to, &input);
            // Skip the filter's start-up, measure one steady second's tail.
            let tail = &out[out.len() / 4..];
            let at_tone = goertzel_power(tail, 1000.0, to);
            let off_tone = goertzel_power(tail, 1500.0, to);
            assert!(at_tone > 1000.0 * off_tone, "{from} → {to}: tone {at_tone:.1} vs {off_tone:.1}");
            let peak = tail.iter().map(|s| s.unsigned_abs()).max().unwrap();
            assert!((9000..=11000).contains(&peak), "{from} → {to}: peak {peak}");
        }
    }

    #[test]
    fn downsampling_removes_what_would_alias() {
        // 6 kHz cannot exist at 8 kHz: it must be filtered out, not folded to 2 kHz.
        let input = sine(6000.0, 16000, 16000, 10000.0);
        let out = convert(16000, 8000, &input);
        let tail = &out[out.len() / 4..];
        let rms = (tail.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
        // 10000 / √2 ≈ 7071 in; at least 40 dB down out.
        assert!(rms < 71.0, "aliased energy rms {rms:.1}");
    }

    #[test]
    fn refuses_rates_it_cannot_convert() {
        assert!(Resampler::new(0, 8000).is_err());
        assert!(Resampler::new(44100, 8000).is_err());
        assert!(Resampler::new(8000, 8000).is_ok());
    }
}
