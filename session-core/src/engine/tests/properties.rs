//! Properties over random calls: far ends that answer, refuse, ring, hang up, re-INVITE,
//! transfer and go silent in random orders, with time moving at random.
//!
//! - Nothing is left hanging: once the application hangs up and the far ends answer what
//!   is still open, the caller's INVITE has its final response, every INVITE we sent has a
//!   final response or a CANCEL, every leg has ended, and the engine says the call is over.
//! - A call resumes exactly: at a random point the engine's state is written (protobuf,
//!   to bytes and back) and a second engine rebuilt from it; fed the same inputs from then
//!   on, both produce the same outputs, byte for byte.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use prost::Message as _;
use sip::dialog::Dialog;
use sip::message::{Builder, HeaderName, Message, Method};
use sip::transaction::Peer;

use super::harness::{caller_invite, phone_sdp, via};
use crate::engine::{
    Command, Engine, EngineConfig, Failure, MediaInput, OnTimeout, Output, RingPolicy, Route, ServerTx, SipInput, Target,
};

/// An input to the engine, kept so it can be given to a second engine too.
#[allow(clippy::large_enum_variant)] // a test value, cloned once per step
#[derive(Debug, Clone)]
enum Input {
    Sip(SipInput),
    Timeout(Instant),
}

/// What the far ends know and owe.
#[derive(Default)]
struct World {
    /// Requests the engine sent that have no final response yet: key → request.
    open: BTreeMap<u64, Message>,
    /// INVITEs the engine sent: key → (final response seen or CANCEL sent).
    invites: BTreeMap<u64, bool>,
    /// Dialogs the far ends hold (their view), by our tag in them.
    dialogs: BTreeMap<String, Dialog>,
    /// The caller's INVITE got a final response.
    caller_final: bool,
    /// The ACK the caller owes for a 2xx.
    caller_ack: Option<Message>,
    caller_invite: Option<Message>,
    next_tx: u64,
}

fn render(o: &Output) -> String {
    match o {
        Output::Respond { tx, response } => format!("respond {} {}", tx.id, String::from_utf8_lossy(response.as_bytes())),
        Output::Send { key, request, route } => format!("send {key} {route:?} {}", String::from_utf8_lossy(request.as_bytes())),
        Output::Ack { request, invite_key, .. } => format!("ack {invite_key:?} {}", String::from_utf8_lossy(request.as_bytes())),
        other => format!("{other:?}"),
    }
}

fn route() -> Route {
    Route { edge: "edge-1".into(), peer: Peer::udp("198.51.100.1:5060".parse().unwrap()) }
}

impl World {
    /// Takes the engine's outputs into the world's knowledge; returns them rendered.
    fn absorb(&mut self, engine: &mut Engine) -> Vec<String> {
        let mut rendered = Vec::new();
        while let Some(o) = engine.poll_output() {
            rendered.push(render(&o));
            match o {
                Output::Respond { tx, response } if tx.id == 1 && response.status().is_some_and(|s| s >= 200) => {
                    self.caller_final = true;
                    if response.status().is_some_and(|s| s < 300)
                        && let Some(invite) = &self.caller_invite
                        && let Ok(d) = Dialog::uac(invite, &response)
                    {
                        self.caller_ack = d.ack(1, Some(&via("z9hG4bK-ack"))).build().ok();
                        self.dialogs.insert(d.id.remote_tag.clone(), d);
                    }
                }
                Output::Send { key, request, .. } => {
                    let request = request.with_top_via(&via(&format!("z9hG4bK-e{key}"))).unwrap();
                    if request.method() == Some(&Method::Invite) && request.to_tag().is_none() {
                        self.invites.insert(key, false);
                    }
                    self.open.insert(key, request);
                }
                Output::Cancel { key } => {
                    self.invites.insert(key, true);
                }
                _ => {}
            }
        }
        rendered
    }

    /// A far end's answer to the open request `key`.
    fn answer(&mut self, key: u64, pick: u8) -> Option<Input> {
        let request = self.open.get(&key)?.clone();
        let invite = request.method() == Some(&Method::Invite);
        let initial = invite && request.to_tag().is_none();
        let tag = request.to_tag().map(str::to_owned).unwrap_or_else(|| format!("far{key}"));
        let status = if initial {
            [180, 183, 200, 200, 486, 603][pick as usize % 6]
        } else if invite {
            [200, 200, 491, 488][pick as usize % 4]
        } else {
            200
        };
        let mut b = Builder::response_to(&request, status, "", Some(&tag));
        if invite && status < 300 {
            b = b.header(HeaderName::Contact, format_args!("<sip:{tag}@203.0.113.5>"));
        }
        if invite && (status == 183 || status == 200) {
            b = b.body("application/sdp", phone_sdp("203.0.113.5:5000", "sendrecv"));
        }
        let response = b.build().ok()?;
        if status >= 200 {
            self.open.remove(&key);
            if initial {
                self.invites.insert(key, true);
                if status < 300
                    && let Ok(mut d) = Dialog::uas(&request, &tag)
                {
                    d.confirm();
                    self.dialogs.insert(request.from().ok()?.tag()?.to_owned(), d);
                }
            }
        }
        Some(Input::Sip(SipInput::Response { key, response }))
    }

    /// A request from the far end of the dialog at `index`.
    fn far_request(&mut self, index: usize, pick: u8) -> Option<Input> {
        let tag = self.dialogs.keys().nth(index % self.dialogs.len().max(1))?.clone();
        let dialog = self.dialogs.get_mut(&tag)?;
        self.next_tx += 1;
        let tx = ServerTx { edge: "edge-1".into(), id: 1000 + self.next_tx };
        let v = via(&format!("z9hG4bK-f{}", tx.id));
        let request = match pick % 4 {
            0 => dialog.request(Method::Bye, Some(&v)).build().ok()?,
            1 => dialog
                .request(Method::Invite, Some(&v))
                .header(HeaderName::Contact, "<sip:far@203.0.113.5>")
                .body("application/sdp", phone_sdp("203.0.113.5:5002", "sendonly"))
                .build()
                .ok()?,
            2 => dialog.request(Method::Refer, Some(&v)).header(HeaderName::ReferTo, "<sip:carol@203.0.113.6>").build().ok()?,
            _ => dialog.request(Method::Info, Some(&v)).body("application/dtmf-relay", "Signal=1\r\n").build().ok()?,
        };
        if request.method() == Some(&Method::Bye) {
            self.dialogs.remove(&tag);
        }
        Some(Input::Sip(SipInput::Request { tx, request, from: Peer::udp("203.0.113.5:5060".parse().unwrap()) }))
    }
}

fn give(engine: &mut Engine, input: &Input, now: Instant) {
    match input.clone() {
        Input::Sip(s) => engine.handle_sip(s, now),
        Input::Timeout(at) => engine.handle_timeout(at),
    }
}

/// Runs a random call from `choices`; checks the snapshot property at step `cut`.
fn run(choices: &[u8], cut: usize, targets: usize) -> Result<(), TestCaseError> {
    let start = Instant::now();
    let mut now = start;
    let wall = 1_800_000_000_000u64;
    let config = EngineConfig { session: "p1".into(), contact: "sip:p1@192.0.2.1".into(), sdp_user: "callmesh".into() };
    let invite = caller_invite("1000");
    let mut engine = Engine::incoming(config, invite.clone(), ServerTx { edge: "edge-1".into(), id: 1 }, route(), now);
    let mut world = World { caller_invite: Some(invite), ..Default::default() };
    world.absorb(&mut engine);
    engine.handle_media(
        MediaInput::Allocated {
            node: "m".into(),
            slots: vec!["192.0.2.100:30000".parse().unwrap(), "192.0.2.100:30002".parse().unwrap()],
        },
        now,
    );
    let targets: Vec<Target> =
        (0..targets).map(|i| Target { uri: format!("sip:t{i}@203.0.113.{}", 5 + i), route: None }).collect();
    let ring = RingPolicy { timeout: Some(Duration::from_secs(20)), on_timeout: OnTimeout::Reject };
    engine.handle_command(Command::Dial { targets, parallel: choices.first().is_some_and(|c| c % 2 == 0), ring }, now);
    world.absorb(&mut engine);
    let mut twin: Option<Engine> = None;
    for (step, pick) in choices.iter().enumerate() {
        if step == cut {
            let bytes = engine.snapshot(now, wall + (now - start).as_millis() as u64).encode_to_vec();
            let state = contracts::EngineState::decode(bytes.as_slice()).unwrap();
            twin = Some(Engine::restore(state, now, wall + (now - start).as_millis() as u64).unwrap());
        }
        let open = world.open.len().max(1);
        let input = match pick % 10 {
            0..=3 => world.open.keys().nth(usize::from(*pick / 10) % open).copied().and_then(|k| world.answer(k, pick / 4)),
            4 | 5 => world.far_request(usize::from(pick / 10), pick / 3),
            6 => {
                now += Duration::from_secs(u64::from(pick % 7) * 3);
                engine.poll_timeout().filter(|at| *at <= now).map(Input::Timeout)
            }
            7 if *pick > 150 => world.open.keys().nth(usize::from(*pick / 10) % open).copied().map(|key| {
                world.open.remove(&key);
                world.invites.insert(key, true);
                Input::Sip(SipInput::Failed { key, reason: Failure::Timeout })
            }),
            8 if *pick > 200 && !world.caller_final => {
                Some(Input::Sip(SipInput::Cancelled { tx: ServerTx { edge: "edge-1".into(), id: 1 } }))
            }
            9 => world.caller_ack.take().map(|request| Input::Sip(SipInput::Ack { request })),
            _ => None,
        };
        let Some(input) = input else { continue };
        give(&mut engine, &input, now);
        let ours = world.absorb(&mut engine);
        if let Some(twin) = twin.as_mut() {
            give(twin, &input, now);
            let theirs: Vec<String> = std::iter::from_fn(|| twin.poll_output()).map(|o| render(&o)).collect();
            prop_assert_eq!(&ours, &theirs, "the resumed engine diverged at step {}", step);
        }
    }
    // The application hangs up; the far ends answer everything still open.
    engine.handle_command(Command::Hangup, now);
    world.absorb(&mut engine);
    for _ in 0..20 {
        let keys: Vec<u64> = world.open.keys().copied().collect();
        for key in keys {
            let request = world.open[&key].clone();
            let status = if request.method() == Some(&Method::Invite) && request.to_tag().is_none() { 487 } else { 200 };
            let response = Builder::response_to(&request, status, "", Some("late")).build().unwrap();
            world.open.remove(&key);
            world.invites.insert(key, true);
            engine.handle_sip(SipInput::Response { key, response }, now);
            world.absorb(&mut engine);
        }
        now += Duration::from_secs(40);
        engine.handle_timeout(now);
        world.absorb(&mut engine);
        if world.open.is_empty() && engine.is_over() {
            break;
        }
    }
    prop_assert!(world.caller_final, "the caller's INVITE never got a final response");
    prop_assert!(world.invites.values().all(|done| *done), "an INVITE we sent was left without an end");
    prop_assert!(engine.is_over(), "the call is not over after a hangup");
    for leg in 0..engine.leg_count() {
        prop_assert_eq!(engine.leg_state(crate::engine::LegId(leg as u32)), Some(crate::leg::LegState::Terminated));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_calls_end_cleanly_and_resume_exactly(
        choices in proptest::collection::vec(any::<u8>(), 0..80),
        cut in 0usize..60,
        targets in 1usize..4,
    ) {
        run(&choices, cut, targets)?;
    }
}
