//! The examples, run as a user runs them, their output checked: `peer_audio` (each side's
//! recording holds the other's tone) and `sip_server` (a caller hears the prompt, then the
//! server hangs up and, asked for one call, exits).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use media::audio::tone;
use session_core::peer::{CallState, SimplePeer};
use testkit::ports::free_local_addr;
use testkit::process::Spawned;

const WAIT: Duration = Duration::from_secs(20);

/// Builds example `name` (as `cargo run --example` would) and gives its path.
fn example(name: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "callmesh-session-core", "--example", name])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "example {name} builds");
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    profile_dir.join("examples").join(name)
}

#[test]
fn peer_audio_hears_both_tones() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(example("peer_audio")).arg(dir.path()).output().expect("peer_audio runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("alice.wav: far end tone Some(1000.0) Hz"), "{text}");
    assert!(text.contains("bob.wav:   far end tone Some(440.0) Hz"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_server_answers_plays_its_prompt_and_hangs_up() {
    let port = free_local_addr().port();
    let mut cmd = Command::new(example("sip_server"));
    cmd.args(["--port", &port.to_string(), "--calls", "1"]);
    let mut server = Spawned::spawn("sip_server", cmd).unwrap();
    let listening = server.wait_for_line("listening on", WAIT).unwrap();
    let uri = listening.trim().trim_start_matches("listening on ").to_owned();

    let caller = SimplePeer::new("caller").await.unwrap();
    let call = caller.call(&uri).await.expect("the server answers");
    let mut heard = Vec::new();
    while let Ok(frame) = call.recv_audio().await {
        heard.extend_from_slice(&frame.samples);
    }
    assert_eq!(call.wait_ended(WAIT).await.unwrap(), CallState::Ended, "the server hung up");
    assert!(heard.len() >= 4000, "half a second of prompt at least, got {} samples", heard.len());
    let prompt = &heard[heard.len() / 4..heard.len() / 2];
    assert_eq!(tone::dominant_tone(prompt, call.sample_rate(), &[440.0, 660.0, 1000.0]).map(|(f, _)| f), Some(660.0));
    assert!(server.wait(WAIT).expect("the server exits after one call").success());
    assert!(server.output().contains("served 1 call(s)"), "{}", server.output());
}
