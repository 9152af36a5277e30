//! Seed 004's call-center use case: an agent's softphone. It registers to Callmesh as a SIP
//! user (digest authentication), answers the calls the queue offers it, talks — a 1 kHz
//! tone stands for its voice — while measuring what it hears, and when the caller hangs up
//! says how long the call was and which tone it heard most.
//!
//! `cargo run --example call_center_agent -- --registrar sip:127.0.0.1:5060 --user agent1 --password secret [--calls N]`
//!
//! With `--calls N` it unregisters and stops after N calls. Callmesh offers it calls once
//! it is an agent of a queue (`[[agents]] user = "agent1"`, docs/acd.md).

use std::sync::Arc;
use std::time::Duration;

use media::audio::tone;
use session_core::peer::{AudioFrame, AutoAnswerHandler, Call, EventFilter, EventType, PeerEvent, SimplePeer};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    registrar: String,
    user: String,
    password: String,
    calls: Option<usize>,
}

fn args() -> Result<Args, Error> {
    let mut a = Args { registrar: "sip:127.0.0.1:5060".into(), user: String::new(), password: String::new(), calls: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--registrar" => a.registrar = value()?,
            "--user" => a.user = value()?,
            "--password" => a.password = value()?,
            "--calls" => a.calls = Some(value()?.parse()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if a.user.is_empty() {
        return Err("--user is needed".into());
    }
    Ok(a)
}

/// Talks on `call` until the caller hangs up: the agent's "voice" out, what it hears in.
/// Returns the seconds heard and the tone heard most.
async fn talk(call: Call) -> (f64, Option<f64>) {
    let (rate, n) = (call.sample_rate(), call.frame_samples());
    let voice = tone::sine(1000.0, rate, rate as usize, 6000.0);
    let speaking = call.clone();
    let speaker = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        for chunk in voice.chunks(n).cycle() {
            ticks.tick().await;
            if speaking.send_audio(AudioFrame::new(chunk.to_vec(), rate)).await.is_err() {
                break;
            }
        }
    });
    let mut heard = Vec::new();
    while let Ok(frame) = call.recv_audio().await {
        heard.extend_from_slice(&frame.samples);
    }
    speaker.abort();
    let seconds = heard.len() as f64 / f64::from(rate);
    let candidates: Vec<f64> = (10..=200).map(|i| f64::from(i) * 10.0).collect();
    (seconds, tone::dominant_tone(&heard, rate, &candidates).map(|(f, _)| f))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = args()?;
    let agent = SimplePeer::builder(&args.user)
        .credentials(&args.user, &args.password)
        .handler(Arc::new(AutoAnswerHandler))
        .build()
        .await?;
    let mut events = agent.subscribe(EventFilter::types([EventType::CallEstablished]));
    let registration = agent.register(&args.registrar).await?;
    println!("registered as {} for {} s", args.user, registration.expires());
    let mut taken = 0;
    while args.calls.is_none_or(|n| taken < n) {
        let Some(PeerEvent::CallEstablished(call)) = events.recv().await else { break };
        let from = call.remote_uri().to_owned();
        println!("call from {from}: talking");
        let (seconds, tone) = talk(call).await;
        taken += 1;
        match tone {
            Some(f) => println!("call from {from} ended: {seconds:.1} s, heard mostly {f} Hz"),
            None => println!("call from {from} ended: {seconds:.1} s, heard nothing"),
        }
    }
    registration.unregister().await?;
    println!("took {taken} call(s)");
    Ok(())
}
