//! A prompt or music playing in a room: PCM at the rate it is heard at, read 20 ms at a
//! time, once or looped.

use media::codec::Resampler;

/// Audio being played.
pub struct Player {
    /// The requester's number for it (its end is reported with it).
    pub id: u32,
    /// The session that asked (told when a prompt ends).
    pub requester: String,
    /// Heard by one seat only (its session), or by the whole room.
    pub seat: Option<String>,
    samples: Vec<i16>,
    position: usize,
    looped: bool,
}

/// `samples` at `from` Hz brought to `to` Hz.
pub fn at_rate(samples: &[i16], from: u32, to: u32) -> Result<Vec<i16>, String> {
    if from == to {
        return Ok(samples.to_vec());
    }
    let mut r = Resampler::new(from, to).map_err(|e| format!("prompt at {from} Hz: {e}"))?;
    let mut out = Vec::with_capacity(samples.len() * to as usize / from as usize + 64);
    r.process(samples, &mut out);
    Ok(out)
}

impl Player {
    pub fn new(id: u32, requester: String, seat: Option<String>, samples: Vec<i16>, looped: bool) -> Player {
        Player { id, requester, seat, samples, position: 0, looped }
    }

    /// Whether a prompt played once has been played to its end.
    pub fn is_over(&self) -> bool {
        !self.looped && self.position >= self.samples.len()
    }

    /// The next `n` samples (silence past the end); `None` once a prompt played once is over.
    pub fn next(&mut self, n: usize) -> Option<Vec<i16>> {
        if self.samples.is_empty() || (!self.looped && self.position >= self.samples.len()) {
            return None;
        }
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if self.position >= self.samples.len() {
                if !self.looped {
                    break;
                }
                self.position = 0;
            }
            let take = (n - out.len()).min(self.samples.len() - self.position);
            out.extend_from_slice(&self.samples[self.position..self.position + take]);
            self.position += take;
        }
        out.resize(n, 0);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_ends_and_looped_wraps() {
        let mut once = Player::new(1, "s".into(), None, vec![1, 2, 3, 4, 5], false);
        assert_eq!(once.next(3), Some(vec![1, 2, 3]));
        assert_eq!(once.next(3), Some(vec![4, 5, 0]));
        assert_eq!(once.next(3), None);
        let mut looped = Player::new(2, "s".into(), None, vec![1, 2], true);
        assert_eq!(looped.next(5), Some(vec![1, 2, 1, 2, 1]));
        assert_eq!(at_rate(&[0; 160], 8000, 16_000).unwrap().len(), 320);
        assert!(at_rate(&[0; 441], 44_100, 16_000).is_err());
    }
}
