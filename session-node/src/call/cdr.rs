//! What the call tells integrators: a notice when it starts and when it is answered
//! (`callmesh.events.call`), and when it ends its call detail record, appended to the CDR
//! journal under its session id before its session record goes — so a node that takes the
//! call over after its owner died mid-way writes the record the owner could not, and one
//! that finds it written already adds nothing (the journal keeps one per id).

use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::bus::typed;
use cluster::contracts::{self, CallAnswered, CallNotice, CallStarted, Cdr, CdrLeg, MediaEvent, call_notice, media_event};
use cluster::journal::Log;
use cluster::subjects;
use prost::Message as _;
use session_core::engine::{CALLER, CallEvent, LegId};

use super::{Call, queue};
use sip::message::Message;

/// Attempts at appending the record, a second apart (the journal's stream may be moving to
/// another server).
const ATTEMPTS: u32 = 5;

/// What the call's record needs that its engine does not keep.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    /// When the call started (Unix ms).
    pub start_ms: u64,
    /// When the caller was answered (Unix ms; 0: never).
    pub answered_ms: u64,
    /// The first leg that ended, and the status that ended it (0: a BYE).
    pub first_ended: Option<(LegId, u16)>,
    /// The caller's final status, when the call failed.
    pub caller_status: u16,
    /// The worst quality reported (MOS 0: none yet) and the most loss.
    pub mos: f64,
    pub loss_percent: f64,
    /// Taken over from a node that died.
    pub taken_over: bool,
}

impl Notes {
    /// Keeps what the record needs from an engine event; true when the caller was answered
    /// just now (by the session itself, or put through to a callee).
    pub fn on_event(&mut self, event: &CallEvent) -> bool {
        match *event {
            CallEvent::Answered { leg } | CallEvent::Bridged { a: leg, .. } if leg == CALLER && self.answered_ms == 0 => {
                self.answered_ms = contracts::unix_ms();
                return true;
            }
            CallEvent::LegEnded { leg, status } => {
                self.first_ended.get_or_insert((leg, status));
                if leg == CALLER {
                    self.caller_status = status;
                }
            }
            _ => {}
        }
        false
    }

    /// Keeps the quality a media node reports.
    pub fn heard(&mut self, event: &MediaEvent) {
        if let Some(media_event::Event::Quality(q)) = &event.event {
            if self.mos == 0.0 || q.mos < self.mos {
                self.mos = q.mos;
            }
            self.loss_percent = self.loss_percent.max(q.loss_percent);
        }
    }
}

/// The disposition of a call that was not answered, from the caller's final status.
fn unanswered(status: u16) -> &'static str {
    match status {
        487 => "cancelled",
        486 | 600 => "busy",
        603 => "declined",
        408 | 480 => "no-answer",
        _ => "failed",
    }
}

/// The URI of a name-addr header of `message` (`Message::from`, `Message::to`), or empty.
fn address(
    message: Option<&Message>,
    header: fn(&Message) -> Result<sip::message::NameAddr, sip::message::ParseError>,
) -> String {
    message.and_then(|m| header(m).ok()).map(|a| a.uri.to_string()).unwrap_or_default()
}

impl Call {
    fn kind_name(&self) -> &'static str {
        match self.kind() {
            "" => "call",
            kind => kind,
        }
    }

    /// Now, on the engine's clock and on the wall clock.
    pub(super) fn wall_now(&self) -> (Instant, u64) {
        let now = Instant::now();
        (now, self.started_ms + now.duration_since(self.started).as_millis() as u64)
    }

    pub(super) async fn notify(&self, notice: call_notice::Notice) {
        let message = CallNotice {
            meta: contracts::meta(self.ctx.node.as_str()),
            at_unix_ms: contracts::unix_ms(),
            session_id: self.id.to_string(),
            notice: Some(notice),
        };
        if let Err(e) = typed::publish(self.ctx.bus.as_ref(), &subjects::call_events(), &message).await {
            tracing::debug!(session = %self.id, error = %e, "call notice not published");
        }
    }

    /// The notice of a call that starts here (not one taken over).
    pub(super) async fn notify_started(&self) {
        let invite = self.engine.leg_invite(CALLER);
        let (caller, callee) = (address(invite, Message::from), address(invite, Message::to));
        let call_id = invite.and_then(Message::call_id).unwrap_or_default().to_owned();
        let kind = self.kind_name().into();
        self.notify(call_notice::Notice::Started(CallStarted { caller, callee, call_id, kind })).await;
    }

    /// Keeps what `event` tells the record, and says when the caller is answered.
    pub(super) async fn note(&mut self, event: &CallEvent) {
        // A seat (a queue, a conference) answers the caller itself, as soon as it is offered.
        let seat_answers = matches!(event, CallEvent::Offered { leg, .. } if *leg == CALLER) && self.seat.is_some();
        let answer = CallEvent::Answered { leg: CALLER };
        if self.notes.on_event(if seat_answers { &answer } else { event }) {
            let by = match (&self.acd, self.engine.partner(CALLER)) {
                (Some(queue::Role::Agent(a)), _) => a.agent.clone(),
                (_, Some(callee)) => self.engine.leg_target(callee).unwrap_or_default().to_owned(),
                // The session answered the caller itself (a queue, a conference).
                (_, None) => self.id.to_string(),
            };
            self.notify(call_notice::Notice::Answered(CallAnswered { by })).await;
        }
    }

    /// The call's detail record, now that it has ended (read from the engine as it is: no
    /// copy of its state, no message parsed again).
    fn cdr(&self) -> Cdr {
        let (now, wall) = self.wall_now();
        let uri = address;
        let caller_invite = self.engine.leg_summaries().find(|l| l.id == CALLER && l.uas).and_then(|l| l.invite);
        let (caller, callee) = (uri(caller_invite, Message::from), uri(caller_invite, Message::to));
        let legs: Vec<CdrLeg> = self
            .engine
            .leg_summaries()
            .map(|l| CdrLeg {
                role: if l.id == CALLER { "caller" } else { "callee" }.into(),
                call_id: l.call_id.or_else(|| l.invite.and_then(Message::call_id)).unwrap_or_default().to_owned(),
                uri: if l.uas { uri(l.invite, Message::from) } else { l.target.to_owned() },
                answered: l.answered,
                status: l.failure.map_or(0, u32::from),
            })
            .collect();
        let notes = &self.notes;
        let answered = notes.answered_ms > 0 || self.answered;
        // The status the caller got: as its leg ended, or as its state says (a CANCEL).
        let caller_failure = legs.first().map_or(0, |l| l.status as u16);
        let caller_status = if notes.caller_status != 0 { notes.caller_status } else { caller_failure };
        let mut cdr = Cdr {
            session_id: self.id.to_string(),
            kind: self.kind_name().into(),
            caller,
            callee,
            start_ms: notes.start_ms,
            answer_ms: notes.answered_ms,
            end_ms: wall,
            mos: notes.mos,
            loss_percent: notes.loss_percent,
            recording: if self.segment > 0 { format!("{}.wav", self.id) } else { String::new() },
            legs,
            written_by: self.ctx.node.to_string(),
            taken_over: notes.taken_over,
            ..Default::default()
        };
        cdr.status = if answered { 200 } else { u32::from(caller_status) };
        let by = |who: &str, why: String| (who.to_owned(), why);
        (cdr.hangup_by, cdr.hangup_reason) = match (answered, notes.first_ended) {
            // Not answered: the caller gave up (CANCEL), the callee refused, or it failed.
            (false, _) => match caller_status {
                487 => by("caller", "CANCEL".into()),
                408 | 480 | 500..=599 | 0 => by("system", format!("status {caller_status}")),
                status => by("callee", format!("status {status}")),
            },
            (true, Some((_, status))) if status != 0 => by("system", format!("status {status}")),
            (true, Some((leg, _))) if leg == CALLER => by("caller", "BYE".into()),
            (true, Some(_)) => by("callee", "BYE".into()),
            (true, None) => by("system", "ended".into()),
        };
        cdr.disposition = if answered { "answered" } else { unanswered(caller_status) }.into();
        match &self.acd {
            Some(queue::Role::Caller(w)) => {
                cdr.queue = w.queue.clone();
                cdr.agent = w.bridged.clone().unwrap_or_default();
                let until = w.bridged_at.unwrap_or(now);
                cdr.queue_wait_ms = w.joined_at.map_or(0, |j| until.saturating_duration_since(j).as_millis() as u64);
                if cdr.agent.is_empty() && answered {
                    cdr.disposition = "abandoned".into();
                }
            }
            Some(queue::Role::Agent(a)) => {
                cdr.agent = a.agent.clone();
                cdr.caller_session = a.caller_session.clone();
                for leg in &mut cdr.legs {
                    leg.role = "agent".into();
                }
            }
            None => {}
        }
        if let Some(o) = &self.originated {
            // A call placed for an operator: who it calls is its leg's far end.
            cdr.agent = o.agent.clone();
            cdr.caller = o.identity.clone();
            cdr.callee = cdr.legs.first().map(|l| l.uri.clone()).unwrap_or_default();
            cdr.caller_session = o.other.as_ref().map(|s| s.to_string()).unwrap_or_default();
        }
        cdr
    }

    /// Appends the call's record to the journal (a few attempts), and tells the event feed.
    pub(super) async fn write_cdr(&self) {
        let cdr = self.cdr();
        let payload = Bytes::from(cdr.encode_to_vec());
        for attempt in 1..=ATTEMPTS {
            match self.ctx.journal.append(Log::Cdrs, self.id.as_str(), payload.clone()).await {
                Ok(_) => break,
                Err(e) if attempt == ATTEMPTS => tracing::error!(session = %self.id, error = %e, "call record not written"),
                Err(e) => {
                    tracing::warn!(session = %self.id, error = %e, "call record not written yet, retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        self.notify(call_notice::Notice::Ended(cdr)).await;
    }
}
