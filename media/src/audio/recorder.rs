//! Call recording to WAV (16-bit PCM, via hound): one mixed mono channel, or one channel per
//! leg. The header is brought up to date every second of audio, so a crash loses at most the
//! last second and what is on disk is always a valid file; a clean stop finalises it.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How legs are laid out in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingLayout {
    /// All legs summed into one channel.
    Mixed,
    /// One channel per leg, in the order the legs are given.
    PerLeg { legs: u16 },
}

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("recording to {path}: {source}")]
    Wav { path: PathBuf, source: hound::Error },
    #[error("a recording needs 1 to 8 channels, not {0}")]
    Channels(u16),
    #[error("{given} legs given to a recording of {expected}")]
    Legs { given: usize, expected: usize },
}

/// What a finished recording holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    pub path: PathBuf,
    pub channels: u16,
    pub duration: Duration,
}

/// Writes one call's audio to a WAV file as it happens.
pub struct Recorder {
    path: PathBuf,
    writer: hound::WavWriter<BufWriter<File>>,
    layout: RecordingLayout,
    rate: u32,
    unflushed: u32,
}

impl Recorder {
    /// Creates (or truncates) `path` for audio at `rate` Hz.
    pub fn create(path: impl AsRef<Path>, rate: u32, layout: RecordingLayout) -> Result<Self, RecorderError> {
        let channels = match layout {
            RecordingLayout::Mixed => 1,
            RecordingLayout::PerLeg { legs } if (1..=8).contains(&legs) => legs,
            RecordingLayout::PerLeg { legs } => return Err(RecorderError::Channels(legs)),
        };
        let path = path.as_ref().to_path_buf();
        let spec = hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let writer = hound::WavWriter::create(&path, spec).map_err(|source| RecorderError::Wav { path: path.clone(), source })?;
        Ok(Self { path, writer, layout, rate, unflushed: 0 })
    }

    /// Appends one frame of each leg (frames of unequal length are padded with silence).
    pub fn write(&mut self, legs: &[&[i16]]) -> Result<(), RecorderError> {
        let longest = legs.iter().map(|l| l.len()).max().unwrap_or(0);
        let at = |leg: &[i16], i: usize| leg.get(i).copied().unwrap_or(0);
        match self.layout {
            RecordingLayout::Mixed => {
                for i in 0..longest {
                    let sum: i32 = legs.iter().map(|l| i32::from(at(l, i))).sum();
                    self.sample(sum.clamp(-32768, 32767) as i16)?;
                }
            }
            RecordingLayout::PerLeg { legs: expected } => {
                if legs.len() != usize::from(expected) {
                    return Err(RecorderError::Legs { given: legs.len(), expected: usize::from(expected) });
                }
                for i in 0..longest {
                    for leg in legs {
                        self.sample(at(leg, i))?;
                    }
                }
            }
        }
        self.unflushed += longest as u32;
        if self.unflushed >= self.rate {
            self.unflushed = 0;
            self.writer.flush().map_err(|source| RecorderError::Wav { path: self.path.clone(), source })?;
        }
        Ok(())
    }

    fn sample(&mut self, s: i16) -> Result<(), RecorderError> {
        self.writer.write_sample(s).map_err(|source| RecorderError::Wav { path: self.path.clone(), source })
    }

    /// Audio written so far.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.writer.duration()) / f64::from(self.rate))
    }

    /// Completes the file.
    pub fn finish(self) -> Result<RecordingSummary, RecorderError> {
        let duration = self.duration();
        let channels = self.writer.spec().channels;
        let path = self.path;
        self.writer.finalize().map_err(|source| RecorderError::Wav { path: path.clone(), source })?;
        Ok(RecordingSummary { path, channels, duration })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone::{goertzel_power, sine};

    fn read(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut reader = hound::WavReader::open(path).unwrap();
        let spec = reader.spec();
        (spec, reader.samples::<i16>().map(Result::unwrap).collect())
    }

    #[test]
    fn per_leg_recording_keeps_each_leg_in_its_channel() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.wav");
        let mut rec = Recorder::create(&path, 8000, RecordingLayout::PerLeg { legs: 2 }).unwrap();
        let a = sine(440.0, 8000, 16000, 8000.0);
        let b = sine(1000.0, 8000, 16000, 8000.0);
        for (fa, fb) in a.chunks(160).zip(b.chunks(160)) {
            rec.write(&[fa, fb]).unwrap();
        }
        let summary = rec.finish().unwrap();
        assert_eq!((summary.channels, summary.duration), (2, Duration::from_secs(2)));
        let (spec, samples) = read(&path);
        assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (2, 8000, 16));
        let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
        let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
        assert_eq!(left, a);
        assert!(goertzel_power(&right, 1000.0, 8000) > 100.0 * goertzel_power(&right, 440.0, 8000));
    }

    #[test]
    fn mixed_recording_sums_legs_with_clipping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mixed.wav");
        let mut rec = Recorder::create(&path, 8000, RecordingLayout::Mixed).unwrap();
        rec.write(&[&[100, 30000][..], &[5, 30000, 7][..]]).unwrap();
        rec.finish().unwrap();
        assert_eq!(read(&path).1, [105, 32767, 7]);
    }

    #[test]
    fn a_crash_loses_at_most_the_last_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.wav");
        let mut rec = Recorder::create(&path, 8000, RecordingLayout::Mixed).unwrap();
        let tone = sine(440.0, 8000, 8000 * 5 / 2, 8000.0);
        for frame in tone.chunks(160) {
            rec.write(&[frame]).unwrap();
        }
        // The process dies: no finalise, buffered data never reaches the file.
        std::mem::forget(rec);
        let (_, samples) = read(&path);
        assert!(samples.len() >= 8000 * 3 / 2, "{} samples survived of 20000", samples.len());
        assert_eq!(&samples[..], &tone[..samples.len()]);
    }

    #[test]
    fn bad_layouts_and_paths_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Recorder::create(dir.path().join("x.wav"), 8000, RecordingLayout::PerLeg { legs: 0 }),
            Err(RecorderError::Channels(0))
        ));
        assert!(Recorder::create(dir.path().join("missing/dir/x.wav"), 8000, RecordingLayout::Mixed).is_err());
        let mut rec = Recorder::create(dir.path().join("y.wav"), 8000, RecordingLayout::PerLeg { legs: 2 }).unwrap();
        assert!(matches!(rec.write(&[&[0; 160]]), Err(RecorderError::Legs { given: 1, expected: 2 })));
    }
}
