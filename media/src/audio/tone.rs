//! Test tones and tone detection: a sine generator and the Goertzel algorithm, which measures
//! the power at one frequency — how tests (and IVR prompts checks) prove which tone went
//! through a codec, a mixer or a call.

use std::f64::consts::PI;

/// `samples` of a sine at `freq` Hz sampled at `rate`, peak `amplitude`.
pub fn sine(freq: f64, rate: u32, samples: usize, amplitude: f64) -> Vec<i16> {
    (0..samples).map(|i| (amplitude * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()).round() as i16).collect()
}

/// Power of `freq` in `samples` (Goertzel), normalised by the length so blocks compare.
pub fn goertzel_power(samples: &[i16], freq: f64, rate: u32) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let coeff = 2.0 * (2.0 * PI * freq / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (samples.len() as f64 * samples.len() as f64)
}

/// The strongest of `candidates` in `samples`, with its share of the candidates' total power.
pub fn dominant_tone(samples: &[i16], rate: u32, candidates: &[f64]) -> Option<(f64, f64)> {
    let powers: Vec<f64> = candidates.iter().map(|f| goertzel_power(samples, *f, rate)).collect();
    let total: f64 = powers.iter().sum();
    let (i, p) = powers.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1))?;
    (total > 0.0).then(|| (candidates[i], p / total))
}

/// The two frequencies (row, column) of a DTMF key (ITU-T Q.23).
pub fn dtmf_frequencies(digit: char) -> Option<(f64, f64)> {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLUMNS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    let digit = digit.to_ascii_uppercase();
    let row = KEYS.iter().position(|k| k.contains(digit))?;
    Some((ROWS[row], COLUMNS[KEYS[row].find(digit)?]))
}

/// `samples` of DTMF key `digit` at `rate`, each tone at `amplitude`.
pub fn dtmf(digit: char, rate: u32, samples: usize, amplitude: f64) -> Option<Vec<i16>> {
    let (low, high) = dtmf_frequencies(digit)?;
    let (low, high) = (sine(low, rate, samples, amplitude), sine(high, rate, samples, amplitude));
    Some(low.iter().zip(&high).map(|(a, b)| a.saturating_add(*b)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goertzel_finds_the_tone_that_is_there() {
        let tone = sine(440.0, 8000, 1600, 8000.0);
        let (freq, share) = dominant_tone(&tone, 8000, &[350.0, 440.0, 620.0, 1000.0]).unwrap();
        assert_eq!(freq, 440.0);
        assert!(share > 0.95, "share {share}");
        assert_eq!(dominant_tone(&[0; 160], 8000, &[440.0]), None);
    }
}
