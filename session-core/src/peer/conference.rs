//! Local conferences (seed 001's `create_conference`): two or more of a peer's calls mixed by
//! the media core's mixer, each far end hearing all the others but not itself. A task per
//! member reads what its far end says; one mixing task, every 20 ms, gives each member the
//! mix of the others. Members join, leave and are muted (the others stop hearing them) while
//! it runs; a member whose call ends leaves by itself. While in a conference a call's audio
//! belongs to it: the application should not read or send that call's audio meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use media::audio::mixer::{Mixer, ParticipantId};
use tokio::sync::mpsc;

use super::call::{Call, CallId};
use super::error::{PeerError, Result};
use super::lock;
use super::media::AudioFrame;

/// The mixer's own rate: wideband, so Opus members keep more than G.711 would.
const MIX_RATE: u32 = 16_000;
const FRAME: Duration = Duration::from_millis(20);

enum Command {
    Join(Call),
    Leave(CallId),
    Mute(CallId, bool),
}

/// A conference of some of a peer's calls. Clones refer to the same conference; it ends
/// when the last clone is dropped or [`Conference::end`] is called.
#[derive(Clone)]
pub struct Conference {
    commands: mpsc::UnboundedSender<Command>,
    members: Arc<Mutex<Vec<CallId>>>,
}

impl Conference {
    /// Mixes `calls` (established ones) together.
    pub(crate) fn start(calls: &[Call]) -> Result<Conference> {
        if calls.iter().any(|c| !c.state().is_established()) {
            return Err(PeerError::InvalidState("a conference takes established calls"));
        }
        let (commands, rx) = mpsc::unbounded_channel();
        let members = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(run(rx, members.clone()));
        let conference = Conference { commands, members };
        for call in calls {
            conference.join(call)?;
        }
        Ok(conference)
    }

    fn send(&self, command: Command) -> Result<()> {
        self.commands.send(command).map_err(|_| PeerError::InvalidState("the conference has ended"))
    }

    /// Adds an established call.
    pub fn join(&self, call: &Call) -> Result<()> {
        if !call.state().is_established() {
            return Err(PeerError::InvalidState("a conference takes established calls"));
        }
        lock(&self.members).push(call.id().clone());
        self.send(Command::Join(call.clone()))
    }

    /// Takes a call out (the call goes on, its audio the application's again).
    pub fn leave(&self, call: &Call) -> Result<()> {
        lock(&self.members).retain(|m| m != call.id());
        self.send(Command::Leave(call.id().clone()))
    }

    /// The others stop (or start again) hearing this member.
    pub fn set_muted(&self, call: &Call, muted: bool) -> Result<()> {
        self.send(Command::Mute(call.id().clone(), muted))
    }

    /// The calls in the conference.
    pub fn members(&self) -> Vec<CallId> {
        lock(&self.members).clone()
    }

    /// Stops mixing; the calls go on.
    pub fn end(self) {}
}

struct Member {
    call: Call,
    id: ParticipantId,
    muted: bool,
    /// What its far end said since the last mix.
    heard: Vec<i16>,
    reader: tokio::task::JoinHandle<()>,
}

async fn run(mut commands: mpsc::UnboundedReceiver<Command>, list: Arc<Mutex<Vec<CallId>>>) {
    let mut mixer = Mixer::new(MIX_RATE, FRAME);
    let mut members: HashMap<CallId, Member> = HashMap::new();
    let (said_tx, mut said) = mpsc::unbounded_channel::<(CallId, AudioFrame)>();
    let mut next_id: ParticipantId = 0;
    let mut tick = tokio::time::interval(FRAME);
    // A late tick is not made up with a burst: the calls would queue audio and lag behind.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Join(call)) => {
                    next_id += 1;
                    if members.contains_key(call.id()) || mixer.add(next_id, call.sample_rate()).is_err() {
                        continue;
                    }
                    let reader = tokio::spawn(read(call.clone(), said_tx.clone()));
                    members.insert(call.id().clone(), Member { call, id: next_id, muted: false, heard: Vec::new(), reader });
                }
                Some(Command::Leave(id)) => {
                    if let Some(m) = members.remove(&id) {
                        m.reader.abort();
                        let _ = mixer.remove(m.id);
                    }
                }
                Some(Command::Mute(id, muted)) => {
                    if let Some(m) = members.get_mut(&id) {
                        m.muted = muted;
                    }
                }
                None => break,
            },
            Some((id, frame)) = said.recv() => {
                if let Some(m) = members.get_mut(&id) {
                    m.heard.extend_from_slice(&frame.samples);
                }
            }
            _ = tick.tick() => {
                let ended: Vec<CallId> = members.iter().filter(|(_, m)| m.call.state().is_final()).map(|(k, _)| k.clone()).collect();
                for id in ended {
                    if let Some(m) = members.remove(&id) {
                        let _ = mixer.remove(m.id);
                        lock(&list).retain(|c| c != &id);
                    }
                }
                mix(&mut mixer, &mut members).await;
            }
        }
    }
    for m in members.values() {
        m.reader.abort();
    }
}

/// One period: each member's input in, each member's mix-minus out to its call.
async fn mix(mixer: &mut Mixer, members: &mut HashMap<CallId, Member>) {
    for m in members.values_mut() {
        let frame = (m.call.sample_rate() as usize * FRAME.as_millis() as usize) / 1000;
        let take = m.heard.len().min(frame);
        if !m.muted && take > 0 {
            let _ = mixer.push(m.id, &m.heard[..take]);
        }
        m.heard.drain(..take);
        // Never let a member's backlog grow: what is more than a frame late is dropped.
        if m.heard.len() > frame {
            let late = m.heard.len() - frame;
            m.heard.drain(..late);
        }
    }
    mixer.mix();
    for m in members.values() {
        if let Ok(out) = mixer.output(m.id) {
            let _ = m.call.send_audio(AudioFrame::new(out.to_vec(), m.call.sample_rate())).await;
        }
    }
}

/// What a member's far end says, frame by frame, until its call ends.
async fn read(call: Call, said: mpsc::UnboundedSender<(CallId, AudioFrame)>) {
    while let Ok(frame) = call.recv_audio().await {
        if said.send((call.id().clone(), frame)).is_err() {
            return;
        }
    }
}
