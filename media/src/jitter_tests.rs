//! Jitter buffer behaviour on a virtual clock: packets are scheduled by simulated network
//! delay, the player pops every 20 ms, and the tests check what was played.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;

const FRAME: Duration = Duration::from_millis(20);

/// Sends `count` frames, frame `i` leaving at `i · sender_period` and arriving after
/// `delay(i)`; `lost` frames never arrive. Pops every 20 ms until all have had their chance.
/// Returns the sequence of played frame indices (`None` = concealed) and the buffer.
fn simulate(
    count: u32,
    sender_period: Duration,
    mut delay: impl FnMut(u32) -> Duration,
    lost: impl Fn(u32) -> bool,
) -> (Vec<Option<u32>>, JitterBuffer<u32>) {
    let t0 = Instant::now();
    let mut arrivals: Vec<(Instant, u32)> =
        (0..count).filter(|i| !lost(*i)).map(|i| (t0 + sender_period * i + delay(i), i)).collect();
    arrivals.sort();
    let mut jb = JitterBuffer::new(JitterConfig::default(), 8000);
    let mut played = Vec::new();
    // Runs until every packet went in and the buffer is empty (bounded, in case it never is).
    let bound = arrivals.last().map(|a| a.0).unwrap_or(t0) + Duration::from_secs(5);
    let mut next_arrival = 0;
    let mut now = t0;
    while (next_arrival < arrivals.len() || !jb.is_empty()) && now < bound {
        while next_arrival < arrivals.len() && arrivals[next_arrival].0 <= now {
            let i = arrivals[next_arrival].1;
            jb.push((i as u16).wrapping_add(65000), i.wrapping_mul(160), i, arrivals[next_arrival].0);
            next_arrival += 1;
        }
        match jb.pop(now) {
            Playout::Frame(i) => played.push(Some(i)),
            Playout::Missing => played.push(None),
            Playout::Buffering => {}
        }
        now += FRAME;
    }
    // Trailing concealment after the last frame is the player idling, not loss.
    while played.last() == Some(&None) {
        played.pop();
    }
    (played, jb)
}

fn frames(played: &[Option<u32>]) -> Vec<u32> {
    played.iter().flatten().copied().collect()
}

#[test]
fn reordered_packets_play_in_order_across_sequence_wrap() {
    // Pairs swapped on the wire: 1 before 0, 3 before 2 …; sequence numbers wrap at 65536.
    let (played, jb) = simulate(1000, FRAME, |i| Duration::from_millis(if i % 2 == 0 { 35 } else { 10 }), |_| false);
    assert_eq!(frames(&played), (0..1000).collect::<Vec<_>>());
    assert_eq!(jb.stats().lost + jb.stats().late + jb.stats().dropped, 0, "{:?}", jb.stats());
}

#[test]
fn a_lost_packet_is_concealed_once_and_play_goes_on() {
    let (played, jb) = simulate(200, FRAME, |_| Duration::from_millis(30), |i| i == 50 || i == 120);
    let position = played.iter().position(|p| p.is_none()).expect("a concealed frame");
    assert_eq!(played[position - 1], Some(49));
    assert_eq!(played[position + 1], Some(51));
    assert_eq!(jb.stats().lost, 2);
    assert_eq!(frames(&played).len(), 198);
}

#[test]
fn a_packet_later_than_its_slot_is_dropped() {
    // Frame 100 is held up 400 ms: by then its slot has been concealed.
    let (played, jb) = simulate(300, FRAME, |i| Duration::from_millis(if i == 100 { 400 } else { 20 }), |_| false);
    assert!(!frames(&played).contains(&100));
    assert_eq!(jb.stats().late, 1);
    assert_eq!(jb.stats().lost, 1);
}

#[test]
fn the_delay_adapts_to_the_measured_jitter() {
    let (_, calm) = simulate(1000, FRAME, |_| Duration::from_millis(20), |_| false);
    let mut rng = StdRng::seed_from_u64(7);
    let (played, rough) = simulate(3000, FRAME, |_| Duration::from_millis(rng.random_range(0..80)), |_| false);
    assert!(calm.target_delay() <= Duration::from_millis(20), "calm target {:?}", calm.target_delay());
    assert!(rough.target_delay() >= Duration::from_millis(60), "rough target {:?}", rough.target_delay());
    assert!(rough.jitter() > Duration::from_millis(15), "jitter {:?}", rough.jitter());
    // Once adapted, almost nothing arrives too late.
    let late = rough.stats().late + rough.stats().lost;
    assert!(late < 3000 / 50, "{:?}", rough.stats());
    assert!(frames(&played).len() > 2900);
}

#[test]
fn a_fast_sender_clock_is_absorbed_by_dropping_frames() {
    // The sender's 20 ms are our 19.8 ms (1 % fast) for 60 s.
    let (played, jb) = simulate(3000, Duration::from_micros(19_800), |_| Duration::from_millis(20), |_| false);
    let stats = jb.stats();
    assert!(stats.dropped >= 20 && stats.dropped <= 40, "{stats:?}");
    assert_eq!(frames(&played).len() as u64 + stats.dropped, 3000);
    assert_eq!(stats.lost + stats.late, 0, "{stats:?}");
}

#[test]
fn a_slow_sender_clock_is_absorbed_by_stretching_without_losing_frames() {
    // The sender's 20 ms are our 20.2 ms (1 % slow) for 60 s.
    let (played, jb) = simulate(3000, Duration::from_micros(20_200), |_| Duration::from_millis(20), |_| false);
    assert_eq!(frames(&played), (0..3000).collect::<Vec<_>>(), "every frame played, in order");
    assert!(jb.stats().underruns >= 20, "{:?}", jb.stats());
    assert_eq!(jb.stats().lost + jb.stats().late, 0);
}

#[test]
fn concealment_repeats_the_last_frame_fading_to_silence() {
    let mut c = Concealer::default();
    c.good(&[1000; 160]);
    let mut out = Vec::new();
    for _ in 0..6 {
        c.conceal(160, &mut out);
    }
    let levels: Vec<i16> = out.chunks(160).map(|f| f[0]).collect();
    assert_eq!(levels, [500, 250, 125, 62, 0, 0]);
    c.good(&[8; 160]);
    out.clear();
    c.conceal(160, &mut out);
    assert_eq!(out[0], 4);
}
