//! In-band DTMF: digits heard as tones in 8 kHz audio (phones and gateways that send no RFC
//! 4733 events), sans-IO. Each 20 ms block is measured at the eight DTMF frequencies
//! (Goertzel); a block holds a digit when one row and one column tone stand out of their
//! groups, carry most of the block's energy, are loud enough and not too unequal (twist).
//! A digit heard in two blocks running (40 ms, the ITU-T Q.24 minimum) is reported once,
//! when it stops, with its duration.

use std::time::Duration;

use crate::audio::tone::goertzel_power;

const RATE: u32 = 8000;
/// Samples per block (20 ms at 8 kHz).
pub const BLOCK: usize = 160;
const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const COLUMNS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];
/// A tone's power over the next strongest of its group (6 dB).
const DOMINANCE: f64 = 4.0;
/// The two tones' share of the block's energy.
const PURITY: f64 = 0.6;
/// The weaker tone at least this fraction of the stronger's power (8 dB of twist).
const TWIST: f64 = 0.16;
/// Quietest tone heard (about -40 dBm0 at G.711's level), as Goertzel power.
const MIN_POWER: f64 = 2500.0;
/// Blocks a digit must last to count.
const MIN_BLOCKS: u32 = 2;

/// A digit heard, and how long it lasted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToneDigit {
    pub digit: char,
    pub duration: Duration,
}

/// Listens for DTMF tones in one stream.
#[derive(Debug, Clone, Default)]
pub struct ToneDetector {
    pending: Vec<i16>,
    current: Option<(char, u32)>,
}

/// The digit one block holds, if any.
fn block_digit(block: &[i16]) -> Option<char> {
    let energy = block.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / block.len() as f64;
    let strongest = |freqs: &[f64; 4]| {
        let powers: Vec<f64> = freqs.iter().map(|&f| goertzel_power(block, f, RATE)).collect();
        let (best, &power) = powers.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
        let runner_up = powers.iter().enumerate().filter(|(i, _)| *i != best).map(|(_, p)| *p).fold(0.0, f64::max);
        (power >= MIN_POWER && power >= DOMINANCE * runner_up).then_some((best, power))
    };
    let (row, row_power) = strongest(&ROWS)?;
    let (column, column_power) = strongest(&COLUMNS)?;
    // A sine of mean square E shows as a Goertzel power of E / 2.
    let pure = 2.0 * (row_power + column_power) >= PURITY * energy;
    let balanced = row_power.min(column_power) >= TWIST * row_power.max(column_power);
    (pure && balanced).then(|| KEYS[row][column])
}

impl ToneDetector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Audio at 8 kHz, in any amounts; digits that ended in it.
    pub fn push(&mut self, samples: &[i16]) -> Vec<ToneDigit> {
        self.pending.extend_from_slice(samples);
        let mut ended = Vec::new();
        let mut start = 0;
        while self.pending.len() - start >= BLOCK {
            let heard = block_digit(&self.pending[start..start + BLOCK]);
            start += BLOCK;
            match (self.current, heard) {
                (Some((d, n)), Some(h)) if d == h => self.current = Some((d, n + 1)),
                (current, heard) => {
                    if let Some((digit, blocks)) = current.filter(|(_, n)| *n >= MIN_BLOCKS) {
                        ended.push(ToneDigit { digit, duration: Duration::from_millis(u64::from(blocks) * 20) });
                    }
                    self.current = heard.map(|h| (h, 1));
                }
            }
        }
        self.pending.drain(..start);
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone::sine;

    /// `digit` as its two tones for `ms`, at `level` each.
    fn dtmf(digit: char, ms: usize, level: f64) -> Vec<i16> {
        crate::audio::tone::dtmf(digit, RATE, ms * 8, level).unwrap()
    }

    fn heard(audio: &[i16]) -> Vec<char> {
        let mut d = ToneDetector::new();
        // In odd-sized pieces, as decoders deliver them.
        let mut digits: Vec<char> = audio.chunks(97).flat_map(|c| d.push(c)).map(|t| t.digit).collect();
        digits.extend(d.push(&[0; 2 * BLOCK]).iter().map(|t| t.digit));
        digits
    }

    #[test]
    fn every_key_is_heard_once_and_timed() {
        let mut audio = Vec::new();
        for digit in "1234567890*#ABCD".chars() {
            audio.extend(dtmf(digit, 80, 4000.0));
            audio.extend(vec![0i16; 480]);
        }
        assert_eq!(heard(&audio).into_iter().collect::<String>(), "1234567890*#ABCD");
        let mut d = ToneDetector::new();
        d.push(&dtmf('5', 100, 4000.0));
        assert_eq!(d.push(&[0; 320]), [ToneDigit { digit: '5', duration: Duration::from_millis(100) }]);
    }

    #[test]
    fn quiet_short_twisted_and_impure_sounds_are_not_digits() {
        assert!(heard(&dtmf('5', 80, 20.0)).is_empty(), "too quiet");
        assert!(heard(&dtmf('5', 20, 4000.0)).is_empty(), "too short");
        let twisted: Vec<i16> =
            sine(770.0, RATE, 640, 6000.0).iter().zip(sine(1336.0, RATE, 640, 600.0)).map(|(a, b)| a + b).collect();
        assert!(heard(&twisted).is_empty(), "20 dB of twist");
        let voice: Vec<i16> = sine(440.0, RATE, 8000, 6000.0)
            .iter()
            .zip(sine(1200.0, RATE, 8000, 3000.0))
            .zip(sine(2500.0, RATE, 8000, 2000.0))
            .map(|((a, b), c)| a + b + c)
            .collect();
        assert!(heard(&voice).is_empty(), "tones that are not DTMF");
        let noisy: Vec<i16> = dtmf('9', 80, 3000.0)
            .iter()
            .enumerate()
            .map(|(i, s)| s.saturating_add(((i * 7919 % 601) as i16 - 300) * 2))
            .collect();
        assert_eq!(heard(&noisy), ['9'], "a digit through some noise");
    }
}
