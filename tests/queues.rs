//! A call-center queue end to end, over real SIP and RTP: a caller dials the queue's number,
//! is answered by Callmesh and hears the queue's music while agents are offered the call
//! one at a time (longest idle first: agent1, who declines, then agent2, who answers); then
//! caller and agent hear each other's tone; when the caller hangs up, the agent's call ends
//! — in `callmesh all` and across the cluster on a real nats-server (its routers running
//! the ACD over JetStream). And agents as SIP users, rung at the devices they registered:
//! the first lets the call ring out, the next answers, the queue's event feed telling it
//! in order. And a queue's announcement with the caller's position, a caller who hangs up
//! and calls back taking its place again, and the exit key putting a caller through to the
//! exit's target.

mod common;

use std::time::Duration;

use cluster::bus::{Bus, NatsBus, typed};
use cluster::contracts::{QueueEvent, queue_event};
use cluster::subjects;
use common::Callmesh;
use common::tones::{hear, play, tone_file};
use media::audio::tone;
use session_core::peer::{Call, HistoryFilter, IncomingCallPolicy, SimplePeer};
use session_core::policy::TimeoutAction;

const WAIT: Duration = Duration::from_secs(15);
const MUSIC: f64 = 300.0;
const CALLER: f64 = 440.0;
const AGENT: f64 = 1000.0;
const ANNOUNCEMENT: f64 = 600.0;
const POSITION: f64 = 800.0;
const ONE: f64 = 1500.0;
const TWO: f64 = 1800.0;

/// Whether `call` hears `freq` above the other tones within `halves` half seconds.
async fn until_heard(call: &Call, freq: f64, halves: usize) -> bool {
    for _ in 0..halves {
        if dominant(call, &hear(call, 0.5).await) == Some(freq) {
            return true;
        }
    }
    false
}

fn dominant(call: &Call, samples: &[i16]) -> Option<f64> {
    tone::dominant_tone(samples, call.sample_rate(), &[MUSIC, CALLER, AGENT, ANNOUNCEMENT, POSITION, ONE, TWO]).map(|(f, _)| f)
}

fn music_file(dir: &std::path::Path) {
    tone_file(&dir.join("music.wav"), MUSIC, 2.0);
}

async fn a_caller_waits_with_music_and_reaches_the_agent_who_answers(cluster: bool) {
    let prompts = tempfile::tempdir().unwrap();
    music_file(prompts.path());
    let declines = SimplePeer::builder("agent1").incoming_call_policy(IncomingCallPolicy::RejectAll).build().await.unwrap();
    // agent2's phone rings a second before it answers: the caller hears the music meanwhile.
    let after_a_second = IncomingCallPolicy::QueueWithTimeout { timeout_secs: 1, on_timeout: TimeoutAction::Accept };
    let answers = SimplePeer::builder("agent2").incoming_call_policy(after_a_second).build().await.unwrap();
    let config = format!(
        "[media]\nprompts_dir = \"{}\"\n\
         [[queues]]\nname = \"sales\"\nring_secs = 5\nmusic_on_hold = \"music.wav\"\n\
         [[agents]]\nuser = \"agent1\"\nqueues = [\"sales\"]\ncontact = \"{}\"\n\
         [[agents]]\nuser = \"agent2\"\nqueues = [\"sales\"]\ncontact = \"{}\"\n\
         [[routes]]\nuser = '^7000$'\ntarget = \"queue:sales\"\n",
        prompts.path().display(),
        declines.uri(),
        answers.uri()
    );
    let cm =
        tokio::task::spawn_blocking(move || if cluster { Callmesh::cluster(&config) } else { Callmesh::all_in_one(&config) })
            .await
            .unwrap();
    let caller = SimplePeer::new("caller").await.unwrap();
    let call = caller.call(&format!("sip:7000@{}", cm.sip[0])).await.unwrap();
    call.wait_established(WAIT).await.unwrap();
    let talking = play(call.clone(), CALLER);
    let waiting = hear(&call, 0.5).await;
    assert_eq!(dominant(&call, &waiting), Some(MUSIC), "the caller hears the queue's music while waiting");

    // agent1 declines; agent2's phone rings and it answers.
    let agent_call = offered(&answers, "caller").await;
    let agent_talks = put_through(&call, &agent_call).await;
    assert!(declines.active_calls().is_empty(), "agent1 declined and is not on the call");
    hang_up(&call, &answers).await;
    for t in [talking, agent_talks] {
        t.await.unwrap();
    }
    tokio::task::spawn_blocking(move || cm.wait_idle()).await.unwrap();
}

/// The call from `from` that `agent` is offered (answered by its policy), within `WAIT`.
async fn offered(agent: &SimplePeer, from: &str) -> Call {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(c) = agent.active_calls().into_iter().find(|c| c.remote_uri().contains(from)) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let call = found.await.unwrap_or_else(|_| panic!("the agent is offered a call from {from}"));
    call.wait_established(WAIT).await.unwrap();
    call
}

/// Once the agent answered: the caller hears it (music until the routers put it through)
/// and it hears the caller. The agent's tone, playing.
async fn put_through(call: &Call, agent_call: &Call) -> tokio::task::JoinHandle<()> {
    let agent_talks = play(agent_call.clone(), AGENT);
    // Bounded: the caller hears the music until the routers put the agent through.
    assert!(until_heard(call, AGENT, 10).await, "the caller hears the agent once put through");
    hear(agent_call, 0.5).await;
    assert_eq!(dominant(agent_call, &hear(agent_call, 0.5).await), Some(CALLER), "the agent hears the caller");
    agent_talks
}

/// The caller hangs up; the agent's call ends with it.
async fn hang_up(call: &Call, agent: &SimplePeer) {
    call.hangup().await.unwrap();
    let ended = tokio::time::timeout(WAIT, async {
        while !agent.active_calls().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    ended.await.expect("the agent's call ends with the caller's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_agents_are_rung_and_one_ringing_out_passes_the_caller_on() {
    let prompts = tempfile::tempdir().unwrap();
    music_file(prompts.path());
    let config = format!(
        "[media]\nprompts_dir = \"{}\"\n\
         [[users]]\nusername = \"agent1\"\npassword = \"one\"\n[[users]]\nusername = \"agent2\"\npassword = \"two\"\n\
         [[queues]]\nname = \"support\"\nstrategy = \"top-down\"\nring_secs = 2\nmusic_on_hold = \"music.wav\"\n\
         [[agents]]\nuser = \"agent1\"\nqueues = [\"support\"]\n[[agents]]\nuser = \"agent2\"\nqueues = [\"support\"]\n\
         [[routes]]\nuser = '^7100$'\ntarget = \"queue:support\"\n",
        prompts.path().display()
    );
    let cm = tokio::task::spawn_blocking(move || Callmesh::cluster(&config)).await.unwrap();
    let registrar = format!("sip:{}", cm.sip[0]);
    // The queue's event feed, as an integrator reads it.
    let bus = NatsBus::connect(cm.nats_url().unwrap(), "wallboard").await.unwrap();
    let mut feed = typed::subscribe::<QueueEvent>(&bus, &subjects::acd_events()).await.unwrap();
    bus.flush().await.unwrap();
    // agent1's phone rings for a minute unless cancelled; agent2 answers.
    let rings = IncomingCallPolicy::QueueWithTimeout { timeout_secs: 60, on_timeout: TimeoutAction::Reject };
    let first = SimplePeer::builder("agent1").credentials("agent1", "one").incoming_call_policy(rings).build().await.unwrap();
    let second = SimplePeer::builder("agent2")
        .credentials("agent2", "two")
        .incoming_call_policy(IncomingCallPolicy::AcceptAll)
        .build()
        .await
        .unwrap();
    let _registrations = (first.register(&registrar).await.unwrap(), second.register(&registrar).await.unwrap());

    let caller = SimplePeer::new("caller").await.unwrap();
    let call = caller.call(&format!("sip:7100@{}", cm.sip[0])).await.unwrap();
    call.wait_established(WAIT).await.unwrap();
    let talking = play(call.clone(), CALLER);
    let agent_call = offered(&second, "caller").await;
    let agent_talks = put_through(&call, &agent_call).await;
    assert!(first.active_calls().is_empty(), "agent1's ringing phone was cancelled");
    let rang = first.call_history(&HistoryFilter { answered: Some(false), ..Default::default() });
    assert_eq!(rang.len(), 1, "agent1 was offered the caller first and let it ring out");
    assert!(rang[0].remote_uri.contains("caller"), "agent1 saw who was calling: {}", rang[0].remote_uri);
    hang_up(&call, &second).await;
    let mut seen = Vec::new();
    while !seen.iter().any(|e: &String| e.starts_with("ended")) {
        let e = tokio::time::timeout(WAIT, feed.next()).await.expect("the feed goes on to the call's end").unwrap();
        seen.push(match e.message.event.unwrap() {
            // The queues' statistics, every 5 s: not part of the call's story.
            queue_event::Event::Stats(_) => continue,
            queue_event::Event::CallerJoined(j) => format!("joined {}", j.queue),
            queue_event::Event::AgentOffered(o) => format!("offered {}", o.agent),
            queue_event::Event::AgentNoAnswer(o) => format!("no answer {}", o.agent),
            queue_event::Event::AgentAnswered(o) => format!("answered {}", o.agent),
            queue_event::Event::CallEnded(_) => "ended".into(),
            other => format!("{other:?}"),
        });
    }
    let expected = ["joined support", "offered agent1", "no answer agent1", "offered agent2", "answered agent2", "ended"];
    assert_eq!(seen, expected, "the queue's events, in order");
    for t in [talking, agent_talks] {
        t.await.unwrap();
    }
    tokio::task::spawn_blocking(move || cm.wait_idle()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_in_one_process() {
    a_caller_waits_with_music_and_reaches_the_agent_who_answers(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_across_the_cluster() {
    a_caller_waits_with_music_and_reaches_the_agent_who_answers(true).await;
}

/// Writes the prompts a queue announcing positions needs: "you are caller number", then
/// the numbers (1 and 2 as tones of their own, the rest alike).
fn position_prompts(dir: &std::path::Path) {
    std::fs::create_dir(dir.join("digits")).unwrap();
    tone_file(&dir.join("queue-position.wav"), POSITION, 0.5);
    for n in (0..=20).chain((30..=90).step_by(10)) {
        let freq = match n {
            1 => ONE,
            2 => TWO,
            _ => 2500.0,
        };
        tone_file(&dir.join(format!("digits/{n}.wav")), freq, 0.5);
    }
}

/// The position the caller hears in its next announcement (bounded: 40 quarter seconds,
/// more than the 5 s period and the announcement itself).
async fn announced_position(call: &Call) -> Option<f64> {
    let mut heard = Vec::new();
    for _ in 0..40 {
        let tone = dominant(call, &hear(call, 0.25).await)?;
        if heard.last() != Some(&tone) {
            heard.push(tone);
        }
        if let Some(at) = heard.iter().position(|t| *t == ANNOUNCEMENT)
            && heard.len() >= at + 3
        {
            assert_eq!(heard[at + 1], POSITION, "the position follows the announcement: {heard:?}");
            return Some(heard[at + 2]);
        }
    }
    None
}

/// A queue with nobody to answer, announcing positions and keeping abandoned callers'
/// places: Bob, second in line, hears the music, then every 5 s the announcement and "you
/// are caller number 2". Alice, first, hangs up and calls back: she takes her place again,
/// so Bob is still number 2. Then Bob presses the exit key and is put through to the
/// exit's target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_callers_hear_their_position_resume_their_place_and_leave_by_the_exit_key() {
    let prompts = tempfile::tempdir().unwrap();
    music_file(prompts.path());
    tone_file(&prompts.path().join("announce.wav"), ANNOUNCEMENT, 1.0);
    position_prompts(prompts.path());
    let voicemail = SimplePeer::builder("voicemail").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let config = format!(
        "[media]\nprompts_dir = \"{}\"\n\
         [[queues]]\nname = \"help\"\nmusic_on_hold = \"music.wav\"\nannounce = \"announce.wav\"\nannounce_secs = 5\n\
         announce_position = true\nresume_secs = 60\nexit_key = \"0\"\nexit_target = \"{}\"\n\
         [[routes]]\nuser = '^7200$'\ntarget = \"queue:help\"\n",
        prompts.path().display(),
        voicemail.uri()
    );
    let cm = tokio::task::spawn_blocking(move || Callmesh::all_in_one(&config)).await.unwrap();
    let queue = format!("sip:7200@{}", cm.sip[0]);
    let (alice, bob) = (SimplePeer::new("alice").await.unwrap(), SimplePeer::new("bob").await.unwrap());
    let first = alice.call(&queue).await.unwrap();
    first.wait_established(WAIT).await.unwrap();
    assert_eq!(dominant(&first, &hear(&first, 0.5).await), Some(MUSIC), "music while waiting");
    let call = bob.call(&queue).await.unwrap();
    call.wait_established(WAIT).await.unwrap();
    let talking = play(call.clone(), CALLER);
    assert_eq!(dominant(&call, &hear(&call, 0.5).await), Some(MUSIC), "music while waiting");
    assert_eq!(announced_position(&call).await, Some(TWO), "Bob is second");

    first.hangup().await.unwrap();
    first.wait_ended(WAIT).await.unwrap();
    let again = alice.call(&queue).await.unwrap();
    again.wait_established(WAIT).await.unwrap();
    assert_eq!(dominant(&again, &hear(&again, 0.5).await), Some(MUSIC), "Alice waits again");
    assert_eq!(announced_position(&call).await, Some(TWO), "Alice took her place back, ahead of Bob");
    assert_eq!(announced_position(&again).await, Some(ONE), "Alice is first");

    call.send_dtmf('0', Duration::from_millis(120)).await.unwrap();
    let onward = offered(&voicemail, "bob").await;
    let onward_talks = put_through(&call, &onward).await;
    hang_up(&call, &voicemail).await;
    again.hangup().await.unwrap();
    for t in [talking, onward_talks] {
        t.await.unwrap();
    }
    tokio::task::spawn_blocking(move || cm.wait_idle()).await.unwrap();
}

/// The SDK's call-center agent example, run as a user runs it: it registers to Callmesh as
/// agent `carol`, the queue offers it a caller, it answers and talks until the caller hangs
/// up, then says what it heard and, asked for one call, unregisters and exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_center_agent_example_takes_a_queue_call() {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "callmesh-session-core", "--example", "call_center_agent"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the example builds");
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples").join("call_center_agent");
    let config = "[[users]]\nusername = \"carol\"\npassword = \"c4r0l\"\n[[queues]]\nname = \"sales\"\n\
                  [[agents]]\nuser = \"carol\"\nqueues = [\"sales\"]\n[[routes]]\nuser = '^7000$'\ntarget = \"queue:sales\"\n";
    let cm = tokio::task::spawn_blocking(move || Callmesh::all_in_one(config)).await.unwrap();
    let mut cmd = std::process::Command::new(example);
    cmd.args(["--registrar", &format!("sip:{}", cm.sip[0]), "--user", "carol", "--password", "c4r0l", "--calls", "1"]);
    let mut agent = testkit::process::Spawned::spawn("call_center_agent", cmd).unwrap();
    agent.wait_for_line("registered as carol", WAIT).expect("the agent registers");

    let caller = SimplePeer::new("caller").await.unwrap();
    let call = caller.call(&format!("sip:7000@{}", cm.sip[0])).await.unwrap();
    call.wait_established(WAIT).await.unwrap();
    let talking = play(call.clone(), CALLER);
    assert!(until_heard(&call, AGENT, 20).await, "the caller reaches the agent");
    hear(&call, 1.0).await;
    call.hangup().await.unwrap();
    talking.await.unwrap();
    assert!(agent.wait(WAIT).expect("the agent exits after one call").success(), "{}", agent.output());
    let out = agent.output();
    assert!(out.contains("call from <sip:caller@") || out.contains("call from sip:caller@"), "{out}");
    assert!(out.contains("heard mostly 440 Hz") && out.contains("took 1 call(s)"), "{out}");
}

/// An agent on a call outside the queues (called directly) is not offered a queue's caller
/// until that call ends; then it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_a_direct_call_is_offered_the_queue_only_once_it_hangs_up() {
    let prompts = tempfile::tempdir().unwrap();
    music_file(prompts.path());
    let config = format!(
        "[media]\nprompts_dir = \"{}\"\n[[users]]\nusername = \"dave\"\npassword = \"d4ve\"\n\
         [[queues]]\nname = \"q\"\nmusic_on_hold = \"music.wav\"\n[[agents]]\nuser = \"dave\"\nqueues = [\"q\"]\n\
         [[routes]]\nuser = '^7000$'\ntarget = \"queue:q\"\n[[routes]]\nuser = '^dave$'\ntarget = \"registered\"\n",
        prompts.path().display()
    );
    let cm = tokio::task::spawn_blocking(move || Callmesh::all_in_one(&config)).await.unwrap();
    let dave = SimplePeer::builder("dave")
        .credentials("dave", "d4ve")
        .incoming_call_policy(IncomingCallPolicy::AcceptAll)
        .build()
        .await
        .unwrap();
    let _registration = dave.register(&format!("sip:{}", cm.sip[0])).await.unwrap();
    let friend = SimplePeer::new("friend").await.unwrap();
    let direct = friend.call(&format!("sip:dave@{}", cm.sip[0])).await.unwrap();
    direct.wait_established(WAIT).await.unwrap();
    offered(&dave, "friend").await; // dave talks to a friend

    let caller = SimplePeer::new("caller").await.unwrap();
    let call = caller.call(&format!("sip:7000@{}", cm.sip[0])).await.unwrap();
    call.wait_established(WAIT).await.unwrap();
    // Two seconds of the queue's music: dave, busy, is not offered the caller meanwhile.
    for _ in 0..4 {
        assert_eq!(dominant(&call, &hear(&call, 0.5).await), Some(MUSIC), "the caller waits");
        assert_eq!(dave.active_calls().len(), 1, "dave is not offered the queue while on a call");
    }
    direct.hangup().await.unwrap();
    // dave, free again, is offered the queue's caller.
    offered(&dave, "caller").await;
    hang_up(&call, &dave).await;
    tokio::task::spawn_blocking(move || cm.wait_idle()).await.unwrap();
}
