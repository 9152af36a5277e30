//! Calls in the ACD's queues. A caller dialling `queue:<name>` is answered by the session
//! itself, as a conference caller is, with a seat in a room of its own (`q-<session>`)
//! where music on hold plays while it is alone; then it joins the queue (`AcdReport`) and
//! does what the routers tell it (`AcdInstruction`): for each offer, a leg to the agent —
//! another call of this node, whose media is a seat in the same room, muted and deaf (the
//! caller still alone, hearing music) until the routers say it has the caller, when the
//! two hear each other. Whichever hangs up first ends the other; the routers hear of every
//! answer, decline and end.

use std::time::{Duration, Instant};

use cluster::bus::typed::{self, TypedSubscription};
use cluster::contracts::{
    self, AcdAgentAnswered, AcdAgentDeclined, AcdEnded, AcdInstruction, AcdKey, AcdLeft, AcdOffer, AcdReport, AcdWhere, RoomPlay,
    acd_instruction, acd_report,
};
use cluster::subjects::{self, SessionId};
use session_core::engine::{CallEvent, Command};

use super::Call;
use super::agent_leg::{AgentLeg, Via, cancel, spawn_agent_leg};
pub(crate) use super::waiting::Waiting;

/// The target prefix that names a queue.
pub const PREFIX: &str = "queue:";

/// What an agent's leg tells its caller's call.
#[derive(Debug)]
pub(crate) enum Note {
    Answered,
    Declined(&'static str),
    /// The agent hung up after talking.
    Ended,
}

/// What a caller's call tells one of its agents' legs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ToAgent {
    Bridge,
    HangUp,
}

/// A call's part in the ACD.
pub(crate) enum Role {
    Caller(Box<Waiting>),
    Agent(AgentLeg),
}

/// What one of the ACD's sources gave.
pub(crate) enum Input {
    Instruction(AcdInstruction),
    Note(String, Note),
    Command(ToAgent),
    Announce,
}

/// The leg a caller is sent on to when the queue overflows to a URI (not an agent: it is
/// put through when it answers, without the routers).
const ONWARD: &str = "onward";

/// How long the overflow target rings.
const ONWARD_RING: Duration = Duration::from_secs(60);

/// The prompt id of a queue's announcement.
const ANNOUNCEMENT: u32 = 2;

/// The next instruction on `subscription` (pending forever without one).
async fn instruction(subscription: &mut Option<TypedSubscription<AcdInstruction>>) -> Option<AcdInstruction> {
    match subscription.as_mut() {
        Some(s) => s.next().await.map(|r| r.message),
        None => std::future::pending().await,
    }
}

/// The next input for a call's ACD role (pending forever without one).
pub(crate) async fn next(role: &mut Option<Role>) -> Option<Input> {
    match role {
        Some(Role::Caller(w)) => {
            let instructions = instruction(&mut w.instructions);
            let waiting = w.bridged.is_none();
            let announce = async {
                match w.announce.as_mut() {
                    Some(every) if waiting => every.tick().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(i) = instructions => Some(Input::Instruction(i)),
                Some((agent, note)) = w.notes.recv() => Some(Input::Note(agent, note)),
                _ = announce => Some(Input::Announce),
            }
        }
        Some(Role::Agent(a)) => {
            let commands = async {
                match a.commands.as_mut() {
                    Some(c) => c.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(c) = commands => Some(Input::Command(c)),
                Some(i) = instruction(&mut a.instructions) => Some(Input::Instruction(i)),
            }
        }
        None => std::future::pending().await,
    }
}

impl Call {
    /// Reports to the routers about this (caller's) session.
    async fn report(&self, report: acd_report::Report) {
        let message =
            AcdReport { meta: contracts::meta(self.ctx.node.as_str()), session_id: self.id.to_string(), report: Some(report) };
        if let Err(e) = typed::publish(self.ctx.bus.as_ref(), &subjects::acd_reports(), &message).await {
            tracing::warn!(session = %self.id, error = %e, "ACD report not sent");
        }
    }

    /// The caller has its seat and music: it joins its queue (once).
    pub(super) async fn join_queue(&mut self) {
        let Some(Role::Caller(w)) = &mut self.acd else { return };
        if w.joined {
            return;
        }
        w.joined = true;
        w.joined_at = Some(Instant::now());
        match typed::subscribe::<AcdInstruction>(self.ctx.bus.as_ref(), &subjects::session_acd(&self.id)).await {
            Ok(s) => w.instructions = Some(s),
            Err(e) => tracing::warn!(session = %self.id, error = %e, "no ACD instructions"),
        }
        let _ = self.ctx.bus.flush().await;
        let join = w.join();
        self.report(acd_report::Report::Join(join)).await;
    }

    /// A queue caller taken over from a node that died joins its queue again, as resumed:
    /// the routers keep its place or its agent (or let it go, when its queue call ended
    /// meanwhile); an agent's leg taken over listens for its caller's end.
    pub(crate) async fn rejoin(&mut self) {
        match &mut self.acd {
            Some(Role::Caller(w)) if w.resumed => self.join_queue().await,
            // An agent's leg hears of its caller's end on its own ACD subject.
            Some(Role::Agent(a)) if a.caller.is_none() => {
                match typed::subscribe::<AcdInstruction>(self.ctx.bus.as_ref(), &subjects::session_acd(&self.id)).await {
                    Ok(s) => a.instructions = Some(s),
                    Err(e) => tracing::warn!(session = %self.id, error = %e, "agent's leg not told of its caller's end"),
                }
                let _ = self.ctx.bus.flush().await;
            }
            _ => {}
        }
    }

    pub(super) async fn on_acd(&mut self, input: Input) {
        match input {
            // An agent's leg taken over: its caller's call ended.
            Input::Instruction(AcdInstruction { instruction: Some(acd_instruction::Instruction::Cancel(_)), .. })
                if matches!(self.acd, Some(Role::Agent(_))) =>
            {
                self.engine.handle_command(Command::Hangup, Instant::now())
            }
            Input::Instruction(i) => self.on_instruction(i).await,
            Input::Note(agent, note) => self.on_note(agent, note).await,
            Input::Command(ToAgent::Bridge) => {
                if let (Some(Role::Agent(a)), Some(seated)) = (&mut self.acd, &self.seat) {
                    a.bridged = true;
                    if let Err(e) = self.ctx.media.seat_control(&seated.seat, &self.id, false, false).await {
                        tracing::warn!(session = %self.id, error = %e, "agent's seat not opened");
                    }
                    // Recorded: a node that takes the leg over goes on with it.
                    self.persist().await;
                }
            }
            Input::Command(ToAgent::HangUp) => self.engine.handle_command(Command::Hangup, Instant::now()),
            // The routers say what the announcement plays: it tells where the caller stands.
            Input::Announce => self.report(acd_report::Report::Where(AcdWhere {})).await,
        }
    }

    /// A key the caller pressed in its seat: the room's controls, and for a caller waiting
    /// in a queue, a key the routers may take as the queue's exit.
    pub(super) async fn on_key(&mut self, digit: char) {
        if let Some(seat) = &mut self.seat {
            seat.key(&self.ctx, &self.id, digit).await;
        }
        if let Some(Role::Caller(w)) = &self.acd
            && w.joined
            && w.bridged.is_none()
        {
            self.report(acd_report::Report::Key(AcdKey { digit: digit.to_string() })).await;
        }
    }

    async fn on_instruction(&mut self, instruction: AcdInstruction) {
        tracing::debug!(session = %self.id, ?instruction, "ACD instruction");
        let Some(Role::Caller(w)) = &mut self.acd else { return };
        match instruction.instruction {
            Some(acd_instruction::Instruction::Offer(offer)) => {
                if let Some(joined) = w.joined_at.filter(|_| !w.offered) {
                    w.offered = true;
                    self.ctx.stats.acd_offer_wait.observe(joined.elapsed());
                }
                let (agent, notes) = (offer.agent.clone(), w.notes_tx.clone());
                let via = Via { edge_id: w.edge_id.clone(), edge_uri: w.edge_uri.clone(), identity: w.identity.clone() };
                match spawn_agent_leg(self.ctx.clone(), offer, &self.id, via, notes).await {
                    Ok((tx, leg)) => {
                        w.agent_sessions.insert(agent.clone(), leg.to_string());
                        w.agents.insert(agent, tx);
                    }
                    Err(why) => {
                        tracing::warn!(session = %self.id, %agent, %why, "agent not called");
                        self.report(acd_report::Report::Declined(AcdAgentDeclined { agent, why: "no-answer".into() })).await
                    }
                }
            }
            Some(acd_instruction::Instruction::Cancel(c)) => {
                if let Some(tx) = w.agents.remove(&c.agent) {
                    let _ = tx.send(ToAgent::HangUp);
                }
                // The agent it talks to is gone (its leg ended on another node, or the
                // routers ended the queue call while nobody had the caller).
                if w.bridged.as_deref() == Some(c.agent.as_str()) {
                    self.engine.handle_command(Command::Hangup, Instant::now());
                }
            }
            Some(acd_instruction::Instruction::Bridge(b)) => {
                if let Some(joined) = w.joined_at {
                    self.ctx.stats.acd_answer_wait.observe(joined.elapsed());
                }
                w.bridged = Some(b.agent.clone());
                w.bridged_at = Some(Instant::now());
                if let Some(tx) = w.agents.get(&b.agent) {
                    let _ = tx.send(ToAgent::Bridge);
                }
                // A node that takes the call over must know it was put through.
                self.persist().await;
            }
            Some(acd_instruction::Instruction::Overflow(o)) => {
                tracing::info!(session = %self.id, target = %o.target, status = o.status, "the queue gives the caller up");
                if let Some(queue) = o.target.strip_prefix(PREFIX) {
                    w.queue = queue.to_owned();
                    let join = w.join();
                    self.report(acd_report::Report::Join(join)).await;
                } else if o.target.is_empty() {
                    // A refusal: the caller was answered already, so it is let go.
                    self.engine.handle_command(Command::Hangup, Instant::now());
                } else {
                    // On to a URI (voicemail, another site): a leg there, put through on answer.
                    let until_ms = contracts::unix_ms() + ONWARD_RING.as_millis() as u64;
                    let offer = AcdOffer { agent: ONWARD.into(), contacts: vec![o.target], until_ms, ..Default::default() };
                    let via = Via { edge_id: w.edge_id.clone(), edge_uri: w.edge_uri.clone(), identity: w.identity.clone() };
                    match spawn_agent_leg(self.ctx.clone(), offer, &self.id, via, w.notes_tx.clone()).await {
                        Ok((tx, _)) => {
                            w.agents.insert(ONWARD.into(), tx);
                        }
                        Err(why) => {
                            tracing::warn!(session = %self.id, %why, "overflow target not called");
                            self.engine.handle_command(Command::Hangup, Instant::now());
                        }
                    }
                }
            }
            Some(acd_instruction::Instruction::Announce(a)) => {
                let (Some(first), Some(seated)) = (a.files.first(), &self.seat) else { return };
                if w.bridged.is_some() {
                    return;
                }
                let then = a.files[1..].to_vec();
                let play = RoomPlay { id: ANNOUNCEMENT, file: first.clone(), looped: false, own_seat_only: true, then };
                if let Err(e) = self.ctx.media.seat_play(&seated.seat, &self.id, play).await {
                    tracing::warn!(session = %self.id, error = %e, "announcement not played");
                }
            }
            None => {}
        }
    }

    async fn on_note(&mut self, agent: String, note: Note) {
        if agent == ONWARD {
            // The overflow target: put through when it answers; the caller goes when it goes.
            match (note, &mut self.acd) {
                (Note::Answered, Some(Role::Caller(w))) => {
                    w.bridged = Some(agent.clone());
                    if let Some(tx) = w.agents.get(&agent) {
                        let _ = tx.send(ToAgent::Bridge);
                    }
                }
                _ => self.engine.handle_command(Command::Hangup, Instant::now()),
            }
            return;
        }
        match note {
            Note::Answered => self.report(acd_report::Report::Answered(AcdAgentAnswered { agent })).await,
            Note::Declined(why) => {
                if let Some(Role::Caller(w)) = &mut self.acd {
                    w.agents.remove(&agent);
                }
                self.report(acd_report::Report::Declined(AcdAgentDeclined { agent, why: why.into() })).await
            }
            Note::Ended => self.engine.handle_command(Command::Hangup, Instant::now()),
        }
    }

    /// An agent leg's own events: its answer, or why it was not answered.
    pub(super) fn on_agent_event(&mut self, event: &CallEvent) {
        let Some(Role::Agent(a)) = &mut self.acd else { return };
        match event {
            CallEvent::Answered { .. } if !a.answered => {
                a.answered = true;
                if let Some(caller) = &a.caller {
                    let _ = caller.send((a.agent.clone(), Note::Answered));
                }
            }
            CallEvent::LegEnded { status, .. } if !a.answered && !a.told => {
                a.told = true;
                let why = match status {
                    486 | 600 => "busy",
                    603 => "rejected",
                    _ => "no-answer",
                };
                if let Some(caller) = &a.caller {
                    let _ = caller.send((a.agent.clone(), Note::Declined(why)));
                }
            }
            _ => {}
        }
    }

    /// The call ends: a caller leaves its queue and lets its agents go; an agent's leg
    /// tells its caller.
    pub(super) async fn leave_acd(&mut self) {
        match self.acd.take() {
            Some(Role::Caller(w)) => {
                for tx in w.agents.values() {
                    let _ = tx.send(ToAgent::HangUp);
                }
                // Taken over, its agent's leg is told over the bus (it may be on another node).
                if let Some(agent) = w.bridged.as_ref().filter(|a| !w.agents.contains_key(*a))
                    && let Some(leg) = w.agent_sessions.get(agent).and_then(|s| SessionId::new(s.clone()).ok())
                {
                    cancel(&self.ctx, &leg, agent).await;
                }
                if let Some(at) = w.bridged_at {
                    self.ctx.stats.acd_talk_ms.fetch_add(at.elapsed().as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                if w.joined {
                    let report = match w.bridged {
                        Some(_) => acd_report::Report::Ended(AcdEnded {}),
                        None => acd_report::Report::Left(AcdLeft {}),
                    };
                    self.report(report).await;
                }
            }
            Some(Role::Agent(a)) => {
                let note = match (a.bridged, a.answered || a.told) {
                    (true, _) => Some(Note::Ended),
                    (false, false) => Some(Note::Declined("no-answer")),
                    (false, true) => None,
                };
                if let Some(note) = note {
                    a.tell(&self.ctx, note).await;
                }
            }
            None => {}
        }
    }
}

/// The room a queue caller waits in.
pub fn room_of(session: &SessionId) -> String {
    format!("q-{session}")
}
