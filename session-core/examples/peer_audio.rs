//! The seeds' success criterion: Alice calls Bob over real SIP and RTP on loopback, Bob
//! takes the real call, both send a tone for two seconds and record the call to WAV, and
//! each recording is checked for the other's tone.
//!
//! `cargo run --example peer_audio [output-dir]`

use std::path::PathBuf;
use std::time::Duration;

use media::audio::tone;
use session_core::peer::{AudioFrame, Call, PeerError, RecordingLayout, SimplePeer};

type Error = Box<dyn std::error::Error + Send + Sync>;

const ALICE_HZ: f64 = 440.0;
const BOB_HZ: f64 = 1000.0;

/// Sends `hz` for `seconds`, paced like a microphone (one 20 ms frame every 20 ms); stops
/// early if the other side hangs up first.
async fn speak(call: &Call, hz: f64, seconds: u32) -> Result<(), Error> {
    let rate = call.sample_rate();
    let frame = (rate / 50) as usize;
    let signal = tone::sine(hz, rate, frame * 50 * seconds as usize, 8000.0);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for chunk in signal.chunks(frame) {
        tick.tick().await;
        match call.send_audio(AudioFrame::new(chunk.to_vec(), rate)).await {
            Err(PeerError::CallEnded) => break,
            other => other?,
        }
    }
    Ok(())
}

/// The dominant tone of a recording's far-end channel (channel 1).
fn heard(path: &PathBuf) -> Result<Option<f64>, Error> {
    let mut reader = hound::WavReader::open(path)?;
    let rate = reader.spec().sample_rate;
    let far: Vec<i16> = reader.samples::<i16>().collect::<Result<Vec<_>, _>>()?.chunks(2).map(|s| s[1]).collect();
    Ok(tone::dominant_tone(&far, rate, &[ALICE_HZ, BOB_HZ]).map(|(hz, _)| hz))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let dir = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("callmesh-peer-audio"));
    std::fs::create_dir_all(&dir)?;
    let alice = SimplePeer::new("alice").await?;
    let bob = SimplePeer::new("bob").await?;
    println!("alice at {}, bob at {}", alice.uri(), bob.uri());

    let bob_uri = bob.uri();
    let bob_wav = dir.join("bob.wav");
    let bob_side = tokio::spawn(async move {
        let incoming = bob.next_incoming().await.ok_or("bob's peer stopped")?;
        println!("bob: incoming call from {}", incoming.from());
        let call = incoming.accept().await?;
        call.start_recording(bob_wav, RecordingLayout::PerLeg { legs: 2 }).await?;
        speak(&call, BOB_HZ, 2).await?;
        call.wait_ended(Duration::from_secs(10)).await?;
        Ok::<_, Error>(())
    });

    let call = alice.call(&bob_uri).await?;
    println!("alice: connected, codec {}", call.statistics().codec);
    call.start_recording(dir.join("alice.wav"), RecordingLayout::PerLeg { legs: 2 }).await?;
    speak(&call, ALICE_HZ, 2).await?;
    let stats = call.statistics();
    call.stop_recording().await?;
    call.hangup().await?;
    bob_side.await?.map_err(|e| e.to_string())?;
    println!(
        "alice: sent {} packets, received {}, lost {}, jitter {:.1} ms, MOS {:.2}",
        stats.packets_sent, stats.packets_received, stats.packets_lost, stats.jitter_ms, stats.mos
    );
    let (a, b) = (dir.join("alice.wav"), dir.join("bob.wav"));
    println!("alice.wav: far end tone {:?} Hz (Bob sent {BOB_HZ})", heard(&a)?);
    println!("bob.wav:   far end tone {:?} Hz (Alice sent {ALICE_HZ})", heard(&b)?);
    Ok(())
}
