//! Audio for end-to-end tests: an SDK call playing a tone, paced like a phone, what a call
//! hears, and tones written as prompt files.

use std::time::Duration;

use media::audio::tone;
use session_core::peer::{AudioFrame, Call};

/// Plays `freq` into `call` for as long as it lasts, from when it is established (waited
/// 10 s at most: the codec, and so the frame size, is known from then).
pub fn play(call: Call, freq: f64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if call.wait_established(Duration::from_secs(10)).await.is_err() {
            return;
        }
        let (rate, n) = (call.sample_rate(), call.frame_samples());
        let tone = tone::sine(freq, rate, rate as usize, 6000.0);
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        for chunk in tone.chunks(n).cycle() {
            ticks.tick().await;
            if call.send_audio(AudioFrame::new(chunk.to_vec(), rate)).await.is_err() {
                break;
            }
        }
    })
}

/// The next `seconds` of what `call` hears (each frame awaited 10 s at most).
pub async fn hear(call: &Call, seconds: f64) -> Vec<i16> {
    let want = (f64::from(call.sample_rate()) * seconds) as usize;
    let mut heard = Vec::new();
    while heard.len() < want {
        let frame = tokio::time::timeout(Duration::from_secs(10), call.recv_audio()).await.expect("audio keeps coming").unwrap();
        heard.extend_from_slice(&frame.samples);
    }
    heard
}

/// Writes a mono 8 kHz WAV of `seconds` of `freq` Hz (a prompt file).
pub fn tone_file(path: &std::path::Path, freq: f64, seconds: f64) {
    let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut wav = hound::WavWriter::create(path, spec).unwrap();
    for s in tone::sine(freq, 8000, (8000.0 * seconds) as usize, 6000.0) {
        wav.write_sample(s).unwrap();
    }
    wav.finalize().unwrap();
}
