//! Audio through the real codecs and a lossy link: an Opus tone comes out as the same tone
//! at every rate and frame size; DTMF digits sent as RFC 4733 packets over a link that drops
//! and repeats packets arrive once each, in order, with their durations.

use std::time::{Duration, Instant};

use media::audio::tone::{dominant_tone, sine};
use media::codec::{AudioCodec, Opus, Pcma, Pcmu, frame_samples};
use media::dtmf::{DtmfReceiver, DtmfSender};
use rand::{Rng, SeedableRng, rngs::StdRng};

const CANDIDATES: [f64; 5] = [300.0, 440.0, 700.0, 1000.0, 1800.0];

/// Encodes `freq` for 1 s frame by frame, decodes, and returns the decoded audio.
fn through(codec: &mut dyn AudioCodec, freq: f64, frame_ms: u32) -> Vec<i16> {
    let rate = codec.sample_rate();
    let tone = sine(freq, rate, rate as usize, 8000.0);
    let mut decoded = Vec::new();
    let mut payload = Vec::new();
    for frame in tone.chunks(frame_samples(rate, frame_ms)) {
        payload.clear();
        codec.encode(frame, &mut payload).unwrap();
        codec.decode(&payload, &mut decoded).unwrap();
    }
    decoded
}

#[test]
fn opus_keeps_the_tone_at_every_rate_and_frame_size() {
    for rate in [8000, 16000, 48000] {
        for frame_ms in [10, 20, 30] {
            for freq in [440.0, 1000.0] {
                let mut opus = Opus::new(rate).unwrap();
                let out = through(&mut opus, freq, frame_ms);
                assert_eq!(out.len(), rate as usize, "{rate} Hz {frame_ms} ms");
                // Past the codec's start-up, the tone is the tone.
                let (found, share) = dominant_tone(&out[rate as usize / 5..], rate, &CANDIDATES).unwrap();
                assert_eq!(found, freq, "{rate} Hz {frame_ms} ms");
                assert!(share > 0.9, "{rate} Hz {frame_ms} ms: share {share}");
            }
        }
    }
}

#[test]
fn opus_refuses_odd_frames_and_conceals_losses() {
    let mut opus = Opus::new(16000).unwrap();
    let mut out = Vec::new();
    assert!(opus.encode(&[0; 100], &mut out).is_err());
    assert!(opus.decode(&[], &mut Vec::new()).is_err());
    let _ = through(&mut opus, 440.0, 20);
    let mut concealed = Vec::new();
    assert!(opus.conceal(320, &mut concealed).unwrap());
    assert_eq!(concealed.len(), 320);
}

#[test]
fn g711_keeps_the_tone() {
    for codec in [&mut Pcmu as &mut dyn AudioCodec, &mut Pcma] {
        let out = through(codec, 1000.0, 20);
        let (found, share) = dominant_tone(&out, 8000, &CANDIDATES).unwrap();
        assert_eq!(found, 1000.0, "{}", codec.name());
        assert!(share > 0.99, "{}: {share}", codec.name());
    }
}

#[test]
fn dtmf_digits_survive_a_lossy_link() {
    let digits = "0123456789*#ABCD1590";
    let sender = DtmfSender::new(8000, Duration::from_millis(20));
    let mut receiver = DtmfReceiver::new(8000);
    let mut rng = StdRng::seed_from_u64(4733);
    let t0 = Instant::now();
    let mut received = Vec::new();
    let (mut lost, mut repeated) = (0, 0);
    let mut end_arrived = Vec::new();
    for (n, digit) in digits.chars().enumerate() {
        // One digit every 300 ms, 120 ms long; each starts at its own RTP timestamp.
        let start = t0 + Duration::from_millis(300 * n as u64);
        let timestamp = 2400 * n as u32;
        let packets = sender.packets(digit, Duration::from_millis(120)).unwrap();
        let mut end_seen = false;
        for p in &packets {
            // 30 % of packets lost, 10 % delivered twice.
            if rng.random_bool(0.3) {
                lost += 1;
                continue;
            }
            let copies = if rng.random_bool(0.1) { 2 } else { 1 };
            repeated += copies - 1;
            end_seen |= p.payload[1] & 0x80 != 0;
            for _ in 0..copies {
                receiver.on_packet(timestamp, &p.payload, start + p.at);
            }
        }
        end_arrived.push(end_seen);
        while let Some(d) = receiver.poll(start + Duration::from_millis(150)) {
            received.push(d);
        }
    }
    while let Some(d) = receiver.poll(t0 + Duration::from_secs(60)) {
        received.push(d);
    }
    assert!(lost > 20 && repeated > 3, "the link did drop ({lost}) and repeat ({repeated})");
    let got: String = received.iter().map(|d| d.digit).collect();
    assert_eq!(got, digits);
    for (d, end_seen) in received.iter().zip(end_arrived) {
        if end_seen {
            assert_eq!(d.duration, Duration::from_millis(120), "{d:?}");
        } else {
            // Without its end packets a digit lasts as long as its last continuation said.
            assert!(d.duration >= Duration::from_millis(20) && d.duration < Duration::from_millis(120), "{d:?}");
        }
    }
}

/// A voiced, speech-like signal: a gliding pitch's harmonics shaped by two formants, in
/// syllables of 250 ms.
fn voiced(rate: u32, samples: usize) -> Vec<i16> {
    let mut phase = 0.0f64;
    (0..samples)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let f0 = 120.0 + 40.0 * (t * 2.1).sin();
            phase += f0 / f64::from(rate);
            let mut v = 0.0;
            for h in (1..30).take_while(|h| f0 * f64::from(*h) < f64::from(rate) / 2.0 - 200.0) {
                let f = f0 * f64::from(h);
                let formants = (-((f - 700.0) / 300.0).powi(2)).exp() + 0.6 * (-((f - 1200.0) / 400.0).powi(2)).exp();
                v += formants * (std::f64::consts::TAU * phase * f64::from(h)).sin() / f64::from(h);
            }
            (v * (t * 4.0 * std::f64::consts::PI).sin().abs() * 20000.0).clamp(-32767.0, 32767.0) as i16
        })
        .collect()
}

/// Signal-to-noise ratio of `out` against `input`, in dB, at the best delay up to `max_lag`.
fn snr_db(input: &[i16], out: &[i16], max_lag: usize) -> f64 {
    (0..=max_lag)
        .map(|lag| {
            let n = input.len().min(out.len() - lag);
            let (mut signal, mut noise) = (0.0, 0.0);
            for (a, b) in input[..n].iter().zip(&out[lag..lag + n]) {
                let (a, b) = (f64::from(*a), f64::from(*b));
                signal += a * a;
                noise += (a - b) * (a - b);
            }
            10.0 * (signal / noise.max(1.0)).log10()
        })
        .fold(f64::MIN, f64::max)
}

#[test]
fn opus_keeps_speech() {
    for rate in [8000, 16000, 48000] {
        let input = voiced(rate, rate as usize * 2);
        let mut opus = Opus::new(rate).unwrap();
        let (mut out, mut payload) = (Vec::new(), Vec::new());
        for frame in input.chunks(frame_samples(rate, 20)) {
            payload.clear();
            opus.encode(frame, &mut payload).unwrap();
            opus.decode(&payload, &mut out).unwrap();
        }
        // Opus is perceptual, not waveform-exact: speech through it measures 13-18 dB here;
        // a broken codec (silence, noise, a wrong rate) measures 0 dB or less.
        let snr = snr_db(&input, &out, rate as usize / 50);
        assert!(snr > 7.0, "{rate} Hz: SNR {snr:.1} dB");
    }
}
