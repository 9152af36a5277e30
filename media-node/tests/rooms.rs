//! Conference rooms on a media node over real UDP, driven through the bus as a session node
//! does: three seats of different codecs (G.711 µ-law, A-law, Opus) each play their own tone
//! and must hear the other two and not themselves; muting and deafening; leaving closes the
//! room and frees its ports.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::bus::{Bus, LocalBus, typed};
use cluster::contracts::{MediaEvent, RoomPlay, media_event};
use cluster::subjects::{self, NodeId, SessionId};
use media::audio::tone;
use media::endpoint::Endpoint;
use media::sdp::{Codec, Negotiated};
use media_node::{MediaClient, MediaConfig, MediaNode, Seat};
use tokio::net::UdpSocket;

async fn node(bus: &LocalBus, ports: (u16, u16)) -> MediaNode {
    node_with(bus, ports, None).await
}

async fn node_with(bus: &LocalBus, ports: (u16, u16), prompts_dir: Option<std::path::PathBuf>) -> MediaNode {
    let config =
        MediaConfig { prompts_dir, ..MediaConfig::new(NodeId::new("media-1").unwrap(), "127.0.0.1".parse().unwrap(), ports) };
    MediaNode::start(config, Arc::new(bus.clone())).await.unwrap()
}

fn stream(codec: Codec, remote: Option<SocketAddr>) -> Negotiated {
    Negotiated::plain(codec, remote)
}

/// A phone in the room: its socket, its end of the stream, its tone, what it heard.
struct Phone {
    session: SessionId,
    seat: Seat,
    socket: UdpSocket,
    ep: Endpoint,
    tone: Vec<i16>,
    position: usize,
    heard: Vec<i16>,
}

impl Phone {
    async fn join(client: &MediaClient, name: &str, codec: Codec, freq: f64, node: Option<&NodeId>) -> Phone {
        let session = SessionId::new(name).unwrap();
        let seat = client.seat(&session, "room-1", node, None).await.unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut ep = Endpoint::new(stream(codec.clone(), Some(seat.rtp)), 48_000).unwrap();
        ep.negotiated.remote_rtp = Some(seat.rtp);
        client.seat_stream(&seat, &session, &stream(codec, Some(socket.local_addr().unwrap())), None).await.unwrap();
        let tone = tone::sine(freq, ep.rate, ep.rate as usize, 6000.0);
        Phone { session, seat, socket, ep, tone, position: 0, heard: Vec::new() }
    }

    /// One 20 ms period: our tone out, whatever arrived in, a frame played.
    async fn period(&mut self, now: Instant) {
        let n = self.ep.frame_samples;
        let frame: Vec<i16> = self.tone.iter().cycle().skip(self.position).take(n).copied().collect();
        self.position = (self.position + n) % self.tone.len();
        let packet = self.ep.encode(&frame).unwrap();
        self.socket.send_to(&media::rtp::write_packet(&packet), self.seat.rtp).await.unwrap();
        let mut buf = [0u8; 2048];
        while let Ok((len, _)) = self.socket.try_recv_from(&mut buf) {
            if let Some(p) = media::rtp::parse_packet(&buf[..len]) {
                self.ep.receive(&p, now);
            }
        }
        self.heard.extend(self.ep.playout(now).unwrap_or_default());
    }

    /// The power of `freq` in the last second heard, and of the strongest other candidate.
    fn power(&self, freq: f64) -> f64 {
        let tail = &self.heard[self.heard.len().saturating_sub(self.ep.rate as usize)..];
        tone::goertzel_power(tail, freq, self.ep.rate)
    }

    fn clear(&mut self) {
        self.heard.clear();
    }
}

/// Runs every phone for `periods` × 20 ms, paced like real phones.
async fn talk(phones: &mut [Phone], periods: usize) {
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..periods {
        ticks.tick().await;
        let now = Instant::now();
        for p in phones.iter_mut() {
            p.period(now).await;
        }
    }
}

const FREQS: [f64; 3] = [440.0, 1000.0, 1800.0];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_seats_of_three_codecs_each_hear_the_others_and_not_themselves() {
    let bus = LocalBus::default();
    let media = node(&bus, (44_000, 44_019)).await;
    let client = MediaClient::new(Arc::new(bus.clone()), &NodeId::new("session-1").unwrap(), Duration::from_secs(2));
    let first = Phone::join(&client, "alice", Codec::pcmu(), FREQS[0], None).await;
    let node_id = first.seat.node.clone();
    let second = Phone::join(&client, "bob", Codec::pcma(), FREQS[1], Some(&node_id)).await;
    let third = Phone::join(&client, "carol", Codec::opus(111), FREQS[2], Some(&node_id)).await;
    let mut phones = [first, second, third];
    assert_eq!(media.room_counts(), (1, 3));

    talk(&mut phones, 100).await;
    for (i, p) in phones.iter().enumerate() {
        let own = p.power(FREQS[i]);
        for (j, f) in FREQS.iter().enumerate().filter(|(j, _)| *j != i) {
            let other = p.power(*f);
            assert!(other > 50.0 * own.max(1.0), "{} hears {f} Hz ({other:.0}) over its own ({own:.0}); {j}", p.session);
        }
    }

    // Bob muted: the others stop hearing 1 kHz. Carol deaf: she hears nothing at all.
    client.seat_control(&phones[1].seat, &phones[1].session, true, false).await.unwrap();
    client.seat_control(&phones[2].seat, &phones[2].session, false, true).await.unwrap();
    talk(&mut phones, 10).await;
    phones.iter_mut().for_each(Phone::clear);
    talk(&mut phones, 60).await;
    assert!(phones[0].power(FREQS[2]) > 50.0 * phones[0].power(FREQS[1]).max(1.0), "alice hears carol, not muted bob");
    let carol_rms = (phones[2].heard.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / phones[2].heard.len() as f64).sqrt();
    assert!(carol_rms < 30.0, "deaf carol hears silence (rms {carol_rms:.0})");

    let free = media.free_port_pairs();
    for p in &phones[..2] {
        assert!(!client.leave_seat(&p.seat, &p.session).await.unwrap(), "others still seated");
    }
    assert!(client.leave_seat(&phones[2].seat, &phones[2].session).await.unwrap(), "the last one leaves: the room closes");
    assert_eq!(media.room_counts(), (0, 0));
    testkit::wait::until("the seats' ports to be back in the pool", Duration::from_secs(5), || {
        media.free_port_pairs() == free + 3
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_plays_to_the_room_and_its_end_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let spec = hound::WavSpec { channels: 1, sample_rate: 48_000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut wav = hound::WavWriter::create(dir.path().join("beep.wav"), spec).unwrap();
    for s in tone::sine(1200.0, 48_000, 24_000, 6000.0) {
        wav.write_sample(s).unwrap();
    }
    wav.finalize().unwrap();
    let bus = LocalBus::default();
    let _media = node_with(&bus, (44_100, 44_119), Some(dir.path().to_path_buf())).await;
    let client = MediaClient::new(Arc::new(bus.clone()), &NodeId::new("session-1").unwrap(), Duration::from_secs(2));
    let mut phones = [Phone::join(&client, "dave", Codec::pcmu(), 440.0, None).await];
    let (seat, session) = (phones[0].seat.clone(), phones[0].session.clone());
    let mut events = typed::subscribe::<MediaEvent>(&bus as &dyn Bus, &subjects::session_media_events(&session)).await.unwrap();

    for bad in ["../beep.wav", "/etc/passwd", "missing.wav"] {
        let play = RoomPlay { id: 1, file: bad.into(), looped: false, own_seat_only: false, then: Vec::new() };
        assert!(client.seat_play(&seat, &session, play).await.is_err(), "{bad} refused");
        let play = RoomPlay { id: 1, file: "beep.wav".into(), looped: false, own_seat_only: false, then: vec![bad.into()] };
        assert!(client.seat_play(&seat, &session, play).await.is_err(), "{bad} refused in a list");
    }
    let play = RoomPlay { id: 7, file: "beep.wav".into(), looped: false, own_seat_only: false, then: Vec::new() };
    client.seat_play(&seat, &session, play).await.unwrap();
    talk(&mut phones, 20).await;
    assert!(phones[0].power(1200.0) > 50.0 * phones[0].power(440.0).max(1.0), "the room hears the prompt (a 48 kHz file)");
    let ended = tokio::time::timeout(Duration::from_secs(5), events.next()).await.expect("the prompt's end").unwrap();
    assert!(matches!(ended.message.event, Some(media_event::Event::PromptEnded(p)) if p.id == 7), "{:?}", ended.message.event);

    // Two files as one prompt, the second at another rate (8 kHz): one, then the other,
    // then one end.
    tone_file(&dir.path().join("low.wav"), 600.0, 0.9);
    let play = RoomPlay { id: 8, file: "beep.wav".into(), looped: false, own_seat_only: false, then: vec!["low.wav".into()] };
    client.seat_play(&seat, &session, play).await.unwrap();
    phones[0].clear();
    talk(&mut phones, 15).await;
    assert!(phones[0].power(1200.0) > 50.0 * phones[0].power(600.0).max(1.0), "the first file first");
    talk(&mut phones, 15).await; // across the change, at 0.5 s
    phones[0].clear();
    talk(&mut phones, 20).await;
    assert!(phones[0].power(600.0) > 50.0 * phones[0].power(1200.0).max(1.0), "then the second");
    let ended = tokio::time::timeout(Duration::from_secs(5), events.next()).await.expect("the list's end").unwrap();
    assert!(matches!(ended.message.event, Some(media_event::Event::PromptEnded(p)) if p.id == 8), "{:?}", ended.message.event);
}

/// Writes `seconds` of `freq` Hz as a mono 8 kHz WAV.
fn tone_file(path: &std::path::Path, freq: f64, seconds: f64) {
    let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut wav = hound::WavWriter::create(path, spec).unwrap();
    for s in tone::sine(freq, 8000, (8000.0 * seconds) as usize, 6000.0) {
        wav.write_sample(s).unwrap();
    }
    wav.finalize().unwrap();
}

/// `digits` as DTMF tones (100 ms each, 100 ms apart) at 8 kHz.
fn tones(digits: &str) -> Vec<i16> {
    digits.chars().flat_map(|d| tone::dtmf(d, 8000, 800, 5000.0).unwrap().into_iter().chain([0i16; 800])).collect()
}

/// The digits reported for `session` on the bus, until `n` came.
async fn digits(events: &mut typed::TypedSubscription<MediaEvent>, n: usize) -> String {
    let mut got = String::new();
    while got.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next()).await.expect("a digit").unwrap();
        if let Some(media_event::Event::Dtmf(d)) = event.message.event {
            got.push_str(&d.digit);
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digits_are_read_from_events_and_from_tones_in_g711_audio() {
    let bus = LocalBus::default();
    let _media = node(&bus, (44_200, 44_219)).await;
    let client = MediaClient::new(Arc::new(bus.clone()), &NodeId::new("session-1").unwrap(), Duration::from_secs(2));
    // A phone without RFC 4733: its digits are tones in its audio.
    let mut phone = Phone::join(&client, "erin", Codec::pcmu(), 440.0, None).await;
    let mut events =
        typed::subscribe::<MediaEvent>(&bus as &dyn Bus, &subjects::session_media_events(&phone.session)).await.unwrap();
    phone.tone = tones("159#");
    phone.tone.extend([0i16; 8000]);
    talk(std::slice::from_mut(&mut phone), 50).await;
    assert_eq!(digits(&mut events, 4).await, "159#");

    // A phone with RFC 4733 events on 101.
    let session = SessionId::new("frank").unwrap();
    let seat = client.seat(&session, "room-1", Some(&phone.seat.node), None).await.unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let te = media::sdp::TelephoneEvent { send_payload_type: 101, recv_payload_type: 101, clock_rate: 8000 };
    let theirs = Negotiated { telephone_event: Some(te), ..stream(Codec::pcmu(), Some(socket.local_addr().unwrap())) };
    client.seat_stream(&seat, &session, &theirs, None).await.unwrap();
    let mut events = typed::subscribe::<MediaEvent>(&bus as &dyn Bus, &subjects::session_media_events(&session)).await.unwrap();
    let mut sender = media::rtp::RtpSender::random(0);
    let dtmf = media::dtmf::DtmfSender::new(8000, Duration::from_millis(20));
    for digit in ['7', '*'] {
        let timestamp = sender.timestamp();
        let packets = dtmf.packets(digit, Duration::from_millis(100)).unwrap();
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        for p in packets {
            ticks.tick().await;
            let packet = sender.packet(101, timestamp, bytes::Bytes::copy_from_slice(&p.payload), p.marker);
            socket.send_to(&media::rtp::write_packet(&packet), seat.rtp).await.unwrap();
        }
        sender.skip(1600);
    }
    assert_eq!(digits(&mut events, 2).await, "7*");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_seat_is_scored_and_its_session_told() {
    let bus = LocalBus::default();
    let _media = node(&bus, (44_300, 44_319)).await;
    let client = MediaClient::new(Arc::new(bus.clone()), &NodeId::new("session-1").unwrap(), Duration::from_secs(2));
    let mut phone = Phone::join(&client, "gina", Codec::pcmu(), 440.0, None).await;
    let mut events =
        typed::subscribe::<MediaEvent>(&bus as &dyn Bus, &subjects::session_media_events(&phone.session)).await.unwrap();
    // Six seconds in which one packet in four is lost on the way.
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    for n in 0..300u32 {
        ticks.tick().await;
        let frame: Vec<i16> = phone.tone.iter().cycle().skip(n as usize * 160).take(160).copied().collect();
        let packet = phone.ep.encode(&frame).unwrap();
        if n % 4 != 3 {
            phone.socket.send_to(&media::rtp::write_packet(&packet), phone.seat.rtp).await.unwrap();
        }
    }
    let quality = loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next()).await.expect("a quality report").unwrap();
        if let Some(media_event::Event::Quality(q)) = event.message.event {
            break q;
        }
    };
    assert!((20.0..30.0).contains(&quality.loss_percent) && quality.mos < 3.0, "{quality:?}");
}
