//! What a recording test reads back: the sidecar the media node wrote in a directory, and a
//! stereo WAV's two channels.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first `.json` sidecar in `dir`, once there is one (within `wait`), and its content.
pub async fn sidecar(dir: PathBuf, wait: Duration) -> (PathBuf, serde_json::Value) {
    let path = tokio::task::spawn_blocking(move || {
        let json = || {
            std::fs::read_dir(&dir)
                .ok()?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "json"))
        };
        testkit::wait::blocking_until("the recording's sidecar", wait, || json().is_some());
        json().unwrap()
    })
    .await
    .unwrap();
    let info = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (path, info)
}

/// A stereo WAV's rate, left and right channels.
pub fn stereo(path: &Path) -> (u32, Vec<i16>, Vec<i16>) {
    let mut wav = hound::WavReader::open(path).unwrap();
    let (channels, rate) = (wav.spec().channels, wav.spec().sample_rate);
    assert_eq!(channels, 2, "{} is stereo", path.display());
    let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
    (rate, samples.iter().step_by(2).copied().collect(), samples.iter().skip(1).step_by(2).copied().collect())
}

/// The tone among `candidates` in the middle half-second of each channel of a stereo WAV
/// (left, right), and how long the file is.
pub fn middle_tones(path: &Path, candidates: &[f64]) -> (Option<f64>, Option<f64>, Duration) {
    let (rate, left, right) = stereo(path);
    let length = Duration::from_millis(left.len() as u64 * 1000 / u64::from(rate));
    if left.len() < rate as usize {
        return (None, None, length);
    }
    let middle = |c: &[i16]| c[c.len() / 2 - rate as usize / 4..c.len() / 2 + rate as usize / 4].to_vec();
    let found = |c: &[i16]| media::audio::tone::dominant_tone(&middle(c), rate, candidates).map(|(f, _)| f);
    (found(&left), found(&right), length)
}

/// The files in `dir` whose names end with `suffix`, sorted.
pub fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(suffix)).collect())
        .unwrap_or_default();
    found.sort();
    found
}
