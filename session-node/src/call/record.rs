//! A call's record in the registry: written when the engine says its durable state changed
//! (created the first time, with what the call is — relayed, a conference seat, a queue
//! caller, an agent's leg — and the users it marks busy), and a relayed call resumed from
//! it by another node when its owner died (`crate::takeover`); and the calls a `Replaces`
//! names, looked up by their records.

use std::sync::Arc;
use std::time::Instant;

use cluster::contracts::{self, RoutedCall, SeatRecord, SessionRecord};
use cluster::ownership::{OwnedSession, OwnershipError};
use cluster::subjects::{NodeId, SessionId};
use cluster::tags;
use session_core::engine::{Engine, Replacement, Replaces, replacement};

use media_node::Seat;

use super::{Call, conference, queue};
use crate::node::Ctx;

/// The record's kinds: a relayed call, a queue caller, an agent's leg for one, a
/// conference seat.
const RELAYED: &str = "";
const QUEUE: &str = "queue";
const AGENT: &str = "agent";
const CONFERENCE: &str = "conference";
/// A leg of a call placed for an operator (not resumed).
const ORIGINATE: &str = "originate";

impl Call {
    /// What the record says this call is, for a node that resumes it.
    pub(super) fn kind(&self) -> &'static str {
        if self.originated.is_some() {
            return ORIGINATE;
        }
        match (&self.acd, &self.seat) {
            (Some(queue::Role::Caller(_)), _) => QUEUE,
            (Some(queue::Role::Agent(_)), _) => AGENT,
            (None, Some(_)) => CONFERENCE,
            (None, None) => RELAYED,
        }
    }

    /// A call another node ran, resumed from its record: a relayed call, a conference
    /// seat, a queue caller or an agent's leg put through to one (`None`: a record that
    /// does not restore).
    pub fn resume(ctx: Arc<Ctx>, id: SessionId, owned: OwnedSession) -> Option<Call> {
        match owned.record.kind.as_str() {
            RELAYED => Call::resume_relayed(ctx, id, owned),
            CONFERENCE | QUEUE | AGENT => Call::resume_seated(ctx, id, owned),
            _ => None,
        }
    }

    fn resume_relayed(ctx: Arc<Ctx>, id: SessionId, owned: OwnedSession) -> Option<Call> {
        let state = owned.record.engine.clone()?;
        let engine = Engine::restore(state, Instant::now(), contracts::unix_ms()).map_err(|e| unrestorable(&id, e)).ok()?;
        let media_node = engine.media_node().and_then(|n| NodeId::new(n).ok());
        // Its relay's node died before it was resumed (while it had no owner): it moves now.
        let relay_lost = media_node.as_ref().is_some_and(|n| ctx.media_gone.contains(n.as_str()));
        let caller_ip = std::net::Ipv4Addr::UNSPECIFIED.into();
        let mut call = Call::assemble(ctx, id, engine, RoutedCall::default(), caller_ip, None);
        if relay_lost {
            call.engine.handle_command(session_core::engine::Command::Reanchor, Instant::now());
        }
        call.record = owned.record.record;
        call.segment = owned.record.recording_segment;
        call.media_zone = owned.record.media_zone.clone();
        call.busy_keys = owned.record.busy_keys.clone();
        call.answered = owned.record.answered;
        call.media_node = media_node;
        call.taken_over(&owned.record);
        call.owned = Some(owned);
        call.resend_unheard();
        Some(call)
    }

    /// A call the dead node answered or placed itself, with a seat in a room (which its
    /// media node keeps): the engine goes on with that seat; a queue caller joins its queue
    /// again (`Call::rejoin`), keeping its place or its agent.
    fn resume_seated(ctx: Arc<Ctx>, id: SessionId, owned: OwnedSession) -> Option<Call> {
        let r = owned.record.seat.as_ref()?;
        let seat = Seat { node: NodeId::new(r.media_node.clone()).ok()?, rtp: r.rtp_addr.parse().ok()? };
        let state = owned.record.engine.clone()?;
        let now = (Instant::now(), contracts::unix_ms());
        // Our SDP's version goes on from above any the dead node sent (RFC 3264 §8).
        let mut end = conference::local_end(&seat);
        end.media.session_version = now.1 / 1000;
        let engine = Engine::restore_answered(state, end, now.0, now.1).map_err(|e| unrestorable(&id, e)).ok()?;
        let acd = match (owned.record.kind.as_str(), &owned.record.queue, &owned.record.agent_leg) {
            (QUEUE, Some(q), _) => Some(queue::Role::Caller(Box::new(queue::Waiting::from_record(q)))),
            (AGENT, _, Some(a)) => Some(queue::Role::Agent(super::agent_leg::AgentLeg::from_record(a))),
            (QUEUE | AGENT, _, _) => return None,
            _ => None,
        };
        let mut seated = conference::Seated::new(seat, &r.room);
        seated.music = r.music.clone();
        let caller_ip = std::net::Ipv4Addr::UNSPECIFIED.into();
        let mut call = Call::assemble(ctx, id, engine, RoutedCall::default(), caller_ip, Some(seated));
        call.seat_options = None;
        (call.record, call.segment) = (owned.record.record, owned.record.recording_segment);
        call.acd = acd;
        call.busy_keys = owned.record.busy_keys.clone();
        call.answered = owned.record.answered;
        call.taken_over(&owned.record);
        call.owned = Some(owned);
        Some(call)
    }

    /// Notes, for the call's detail record, that it was taken over (and when it was answered).
    fn taken_over(&mut self, record: &SessionRecord) {
        self.notes.taken_over = true;
        self.notes.start_ms = record.started_at_unix_ms;
        // A call the session answered itself is written before its answer is noted (at the
        // caller's ACK): it was answered as it started.
        let confirmed = record.engine.as_ref().is_some_and(crate::parties::caller_confirmed);
        self.notes.answered_ms = match record.answered_at_unix_ms {
            0 if confirmed => record.started_at_unix_ms,
            at => at,
        };
    }

    /// Writes the engine's state: creates the record the first time. False when fenced.
    pub(super) async fn persist(&mut self) -> bool {
        let (now, wall) = self.wall_now();
        let state = self.engine.snapshot(now, wall);
        let (kind, busy_keys, answered) = (self.kind(), self.busy_keys.clone(), self.answered);
        let (answered_at_unix_ms, started_at_unix_ms) = (self.notes.answered_ms, self.notes.start_ms);
        let (record, recording_segment, media_zone) = (self.record, self.segment, self.media_zone.clone());
        let seat = self.seat.as_ref().map(|s| SeatRecord {
            media_node: s.seat.node.to_string(),
            rtp_addr: s.seat.rtp.to_string(),
            room: s.room.clone(),
            music: s.music.clone(),
        });
        let (queue, agent_leg) = match &self.acd {
            Some(queue::Role::Caller(w)) => (Some(w.to_record()), None),
            Some(queue::Role::Agent(a)) => (None, Some(a.to_record())),
            None => (None, None),
        };
        match self.owned.as_mut() {
            None => match self
                .ctx
                .store
                .create_record(
                    &self.id,
                    SessionRecord {
                        engine: Some(state),
                        kind: kind.into(),
                        busy_keys,
                        answered,
                        record,
                        recording_segment,
                        media_zone,
                        seat,
                        queue,
                        agent_leg,
                        answered_at_unix_ms,
                        started_at_unix_ms,
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(owned) => self.owned = Some(owned),
                // The call goes on; it cannot be taken over if this node dies.
                Err(e) => tracing::warn!(session = %self.id, error = %e, "session not recorded"),
            },
            Some(owned) => {
                *owned.engine_mut() = state;
                owned.record.answered = answered;
                owned.record.answered_at_unix_ms = answered_at_unix_ms;
                owned.record.queue = queue;
                owned.record.seat = seat;
                owned.record.recording_segment = recording_segment;
                owned.record.record = record;
                match self.ctx.store.save(owned).await {
                    Ok(()) => {}
                    Err(e @ OwnershipError::Fenced { .. }) => {
                        tracing::warn!(session = %self.id, error = %e, "fenced: another node owns the session");
                        self.owned = None;
                        return false;
                    }
                    Err(e) => tracing::warn!(session = %self.id, error = %e, "session record not saved"),
                }
            }
        }
        true
    }

    /// The call a `Replaces` names by our tag (another session, on any node), and who takes
    /// the replaced dialog's place — from its record in the registry.
    pub(super) async fn find_replaced(&self, named: &Replaces) -> Option<Replacement> {
        let (session, _) = tags::session_of(&named.to_tag)?;
        match self.ctx.store.load(&session).await {
            Ok(Some((record, _))) => record.engine.as_ref().and_then(|state| replacement(state, named)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(session = %self.id, replaced = %session, error = %e, "replaced call not read");
                None
            }
        }
    }
}

fn unrestorable(id: &SessionId, e: impl std::fmt::Display) {
    tracing::warn!(session = %id, error = %e, "session record does not restore");
}
