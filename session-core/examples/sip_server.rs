//! Seed 003's first use case: a SIP server that answers every call itself, plays a prompt
//! (a 660 Hz tone, one second, or a WAV file given with `--prompt`) and hangs up.
//!
//! `cargo run --example sip_server -- [--port 5070] [--calls N] [--prompt file.wav]`
//!
//! It prints where it listens, one line per call, and, with `--calls N`, stops after N.

use std::sync::Arc;

use media::audio::tone;
use session_core::peer::{AudioFrame, AutoAnswerHandler, Call, Config, PeerEvent, SimplePeer, load_wav};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    port: u16,
    calls: Option<usize>,
    prompt: Option<String>,
}

fn args() -> Result<Args, Error> {
    let mut a = Args { port: 5070, calls: None, prompt: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => a.port = value()?.parse()?,
            "--calls" => a.calls = Some(value()?.parse()?),
            "--prompt" => a.prompt = Some(value()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(a)
}

/// Plays the prompt into an answered call, then hangs up (returning once the BYE is
/// answered).
async fn serve(call: Call, prompt: AudioFrame) -> Result<(), Error> {
    call.play(prompt, false).await?;
    call.hangup().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = args()?;
    let prompt = match &args.prompt {
        Some(path) => load_wav(path)?,
        None => AudioFrame::new(tone::sine(660.0, 8000, 8000, 8000.0), 8000),
    };
    let config = Config { sip_port: args.port, ..Config::default() };
    let server = SimplePeer::builder("server").config(config).handler(Arc::new(AutoAnswerHandler)).build().await?;
    let mut events = server.subscribe(session_core::peer::EventFilter::types([session_core::peer::EventType::CallEstablished]));
    println!("listening on {}", server.uri());
    let mut served = 0;
    while args.calls.is_none_or(|n| served < n) {
        let Some(PeerEvent::CallEstablished(call)) = events.recv().await else { break };
        println!("call from {}: playing the prompt", call.remote_uri());
        served += 1;
        let last = args.calls == Some(served);
        let task = tokio::spawn(serve(call, prompt.clone()));
        if last {
            task.await.map_err(|e| e.to_string())??;
        }
    }
    println!("served {served} call(s)");
    Ok(())
}
