//! Media core costs on one core: G.711 and Opus per 20 ms frame, the mixer per participant
//! (G.711 decode, mix, encode), the jitter buffer per packet, rate conversion per frame, and
//! SDP parsing and anchoring per description.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use media::audio::Mixer;
use media::audio::tone::sine;
use media::codec::{AudioCodec, Opus, Pcmu, Resampler};
use media::jitter::{JitterBuffer, JitterConfig, Playout};

fn g711(c: &mut Criterion) {
    let pcm = sine(440.0, 8000, 160, 8000.0);
    let mut codec = Pcmu;
    let mut payload = Vec::with_capacity(160);
    codec.encode(&pcm, &mut payload).unwrap();
    let mut out = Vec::with_capacity(160);
    c.bench_function("g711 µ-law encode 20 ms", |b| {
        b.iter(|| {
            let mut p = Vec::with_capacity(160);
            codec.encode(black_box(&pcm), &mut p).unwrap();
            p
        })
    });
    c.bench_function("g711 µ-law decode 20 ms", |b| {
        b.iter(|| {
            out.clear();
            codec.decode(black_box(&payload), &mut out).unwrap();
        })
    });
}

fn opus(c: &mut Criterion) {
    for rate in [16000, 48000] {
        let pcm = sine(440.0, rate, rate as usize / 50, 8000.0);
        let mut codec = Opus::new(rate).unwrap();
        let mut payload = Vec::new();
        codec.encode(&pcm, &mut payload).unwrap();
        c.bench_with_input(BenchmarkId::new("opus encode 20 ms", rate), &pcm, |b, pcm| {
            b.iter(|| {
                let mut p = Vec::with_capacity(200);
                codec.encode(black_box(pcm), &mut p).unwrap();
                p
            })
        });
        let mut out = Vec::with_capacity(pcm.len());
        c.bench_with_input(BenchmarkId::new("opus decode 20 ms", rate), &payload, |b, payload| {
            b.iter(|| {
                out.clear();
                codec.decode(black_box(payload), &mut out).unwrap();
            })
        });
    }
}

/// One 20 ms period of a G.711 conference of `n`: decode each input, mix, encode each output.
fn mixer(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixer g711 period");
    for n in [10u64, 100, 300] {
        let mut mixer = Mixer::new(8000, Duration::from_millis(20));
        let mut codec = Pcmu;
        let mut payloads = Vec::new();
        for id in 0..n {
            mixer.add(id, 8000).unwrap();
            let mut p = Vec::new();
            codec.encode(&sine(300.0 + id as f64, 8000, 160, 3000.0), &mut p).unwrap();
            payloads.push(p);
        }
        group.throughput(Throughput::Elements(n));
        let mut pcm = Vec::with_capacity(160);
        let mut encoded = Vec::with_capacity(160);
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                for (id, p) in payloads.iter().enumerate() {
                    pcm.clear();
                    codec.decode(p, &mut pcm).unwrap();
                    mixer.push(id as u64, &pcm).unwrap();
                }
                mixer.mix();
                for id in 0..n {
                    encoded.clear();
                    codec.encode(mixer.output(id).unwrap(), &mut encoded).unwrap();
                }
            })
        });
    }
    group.finish();
}

/// A media node's room as it runs: every seat a `media::endpoint` (RTP in, jitter buffer,
/// decode), mixed at 16 kHz with each seat's rate converted both ways, each seat's mix-minus
/// encoded into its RTP packet.
fn room(c: &mut Criterion) {
    use media::endpoint::Endpoint;
    use media::sdp::{Codec, Negotiated};
    let stream = |codec: Codec| Negotiated::plain(codec, None);
    let mut group = c.benchmark_group("room period");
    for (name, codec, n) in [("g711", Codec::pcmu(), 100u64), ("g711", Codec::pcmu(), 300), ("opus", Codec::opus(111), 20)] {
        let mut mixer = Mixer::new(16_000, Duration::from_millis(20));
        let mut seats = Vec::new();
        for id in 0..n {
            let mut phone = Endpoint::new(stream(codec.clone()), 48_000).unwrap();
            // As the media node's rooms: Opus seats at the 16 kHz of the mix.
            let seat = Endpoint::new(stream(codec.clone()), 16_000).unwrap();
            mixer.add(id, seat.rate).unwrap();
            let tone = sine(300.0 + id as f64, phone.rate, phone.frame_samples, 3000.0);
            let packet = phone.encode(&tone).unwrap();
            seats.push((seat, packet));
        }
        group.throughput(Throughput::Elements(n));
        let t0 = Instant::now();
        let mut period = 0u32;
        group.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter(|| {
                let now = t0 + Duration::from_millis(20 * u64::from(period));
                for (id, (seat, packet)) in seats.iter_mut().enumerate() {
                    packet.header.sequence_number = period as u16;
                    packet.header.timestamp = period.wrapping_mul(seat.frame_samples as u32);
                    seat.receive(packet, now);
                    if let Some(pcm) = seat.playout(now) {
                        mixer.push(id as u64, &pcm).unwrap();
                    }
                }
                mixer.mix();
                for (id, (seat, _)) in seats.iter_mut().enumerate() {
                    let heard = mixer.output(id as u64).unwrap().to_vec();
                    black_box(seat.encode(&heard));
                }
                period += 1;
            })
        });
    }
    group.finish();
}

fn jitter(c: &mut Criterion) {
    c.bench_function("jitter buffer push + pop per packet", |b| {
        let t0 = Instant::now();
        let mut jb: JitterBuffer<u32> = JitterBuffer::new(JitterConfig::default(), 8000);
        let mut seq: u32 = 0;
        b.iter(|| {
            let now = t0 + Duration::from_millis(20 * u64::from(seq));
            jb.push(seq as u16, seq.wrapping_mul(160), seq, now);
            let out = jb.pop(now);
            seq = seq.wrapping_add(1);
            matches!(out, Playout::Frame(_))
        })
    });
}

fn resample(c: &mut Criterion) {
    let pcm = sine(440.0, 8000, 160, 8000.0);
    let mut up = Resampler::new(8000, 48000).unwrap();
    let mut out = Vec::with_capacity(960);
    c.bench_function("resample 8 → 48 kHz 20 ms", |b| {
        b.iter(|| {
            out.clear();
            up.process(black_box(&pcm), &mut out);
        })
    });
}

/// A call parses two descriptions (offer, answer) and, anchored, prints one per leg.
fn sdp(c: &mut Criterion) {
    let offer = "v=0\r\no=user1 53655765 2353687637 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                 m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
                 a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n";
    c.bench_function("sdp parse (a phone's offer)", |b| {
        b.iter(|| media::sdp::SessionDescription::parse(black_box(offer.as_bytes())).unwrap())
    });
    let parsed = media::sdp::SessionDescription::parse(offer.as_bytes()).unwrap();
    let relay = "198.51.100.9:30000".parse().unwrap();
    let mut origin = media::sdp::AnchorOrigin::new("callmesh", 1);
    c.bench_function("sdp anchor (print for the other leg)", |b| {
        b.iter(|| media::sdp::anchor(black_box(&parsed), relay, &mut origin))
    });
}

criterion_group!(benches, g711, opus, mixer, room, jitter, resample, sdp);
criterion_main!(benches);
