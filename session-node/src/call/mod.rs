//! One call, run as a B2BUA: the caller's leg and the callee's leg, each a call-leg state
//! table from the session core, joined by its bridge. Events from the edges and the media
//! node become leg inputs; the resulting actions are persisted (the call's record in the
//! registry) before they are carried out.

mod effects;
mod messages;
mod record;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cluster::bus::typed::TypedSubscription;
use cluster::contracts::{
    self, CallState, EdgeEvent, FailureReason, MediaEvent, RoutedCall, TimeoutAction, edge_event, media_event,
};
use cluster::ownership::OwnedSession;
use cluster::subjects::{NodeId, SessionId};
use cluster::tags::{self, TagSide};
use media_node::Allocation;
use session_core::b2bua::{B2bCall, Side};
use session_core::leg::LegInput;
use sip::dialog::Dialog;
use sip::dialog::forking::{DialogUpdate, UacDialogs};
use sip::message::{Message, Method};
use tokio::time::Instant;

use crate::node::Ctx;
use crate::sdp;

/// The caller's side: we are its UAS.
pub(crate) struct CallerSide {
    pub edge: NodeId,
    /// The INVITE's server transaction on `edge`.
    pub tx: u64,
    pub invite: Message,
    pub flow: contracts::Peer,
    /// The edge's contact URI with the session as user.
    pub contact: String,
    pub tag: String,
    pub dialog: Option<Dialog>,
}

/// The callee's side: we are its UAC.
pub(crate) struct CalleeSide {
    pub edge: NodeId,
    pub target: String,
    pub flow: Option<contracts::Peer>,
    pub invite: Option<Message>,
    pub dialogs: Option<UacDialogs>,
    pub dialog: Option<Dialog>,
    pub invite_correlation: u64,
    pub last_provisional: Option<Message>,
    pub answer: Option<Message>,
    pub tag: String,
}

/// A request received in the dialog of `side`, on `edge`'s server transaction `tx`.
#[derive(Clone)]
pub(crate) struct Inbound {
    pub side: Side,
    pub edge: NodeId,
    pub tx: u64,
    pub request: Message,
}

/// A request we sent in a dialog, by correlation.
#[derive(Clone, Copy)]
pub(crate) enum Outgoing {
    Bye(Side),
    Reinvite(Side, u32),
}

pub(crate) fn index(side: Side) -> usize {
    match side {
        Side::Caller => 0,
        Side::Callee => 1,
    }
}

/// A call in progress.
pub(crate) struct Call {
    pub ctx: Arc<Ctx>,
    pub id: SessionId,
    pub machine: B2bCall,
    pub owned: Option<OwnedSession>,
    /// What was last written of the call (its durable part, see `record`).
    pub saved: Option<CallState>,
    pub caller: CallerSide,
    pub callee: CalleeSide,
    pub media: Option<Allocation>,
    /// What a failure response to the caller says.
    pub failure: (u16, String),
    /// The in-dialog request being handled right now.
    pub inbound: Option<Inbound>,
    /// A re-INVITE of each side waiting for the other side's answer.
    pub pending_reinvite: [Option<Inbound>; 2],
    /// The other side's answer to relay to each side's pending re-INVITE.
    pub update_answer: [Option<Message>; 2],
    /// The CSeq of a re-INVITE of ours whose 2xx must be acknowledged, per side.
    pub ack_pending: [Option<u32>; 2],
    pub requests: HashMap<u64, Outgoing>,
    pub next_correlation: u64,
    pub ring_deadline: Option<Instant>,
    pub on_timeout: TimeoutAction,
    pub voicemail: String,
    pub busy_key: String,
    pub created_ms: u64,
    pub answered_ms: u64,
}

fn parse(bytes: Vec<u8>) -> Option<Message> {
    let bytes = Bytes::from(bytes);
    Message::parse_stream_message(bytes.clone()).or_else(|_| Message::parse_datagram(bytes)).ok()
}

impl Call {
    /// Sets up a call from a routed call; `None` when the INVITE is unusable.
    pub fn new(ctx: Arc<Ctx>, routed: RoutedCall) -> Option<Call> {
        let incoming = routed.call?;
        let id = SessionId::new(incoming.session_id.clone()).ok()?;
        let invite = parse(incoming.invite.clone())?;
        let caller_edge = NodeId::new(incoming.edge_id.clone()).ok()?;
        let callee_edge = NodeId::new(routed.target_edge_id.clone()).unwrap_or_else(|_| caller_edge.clone());
        let contact = messages::contact(&incoming.edge_uri, &id);
        let target = routed.targets.first()?.clone();
        Some(Call {
            caller: CallerSide {
                edge: caller_edge,
                tx: incoming.edge_tx,
                invite,
                flow: incoming.source.unwrap_or_default(),
                contact,
                tag: tags::tag(&id, TagSide::Caller),
                dialog: None,
            },
            callee: CalleeSide {
                edge: callee_edge,
                target,
                flow: routed.target_flow,
                invite: None,
                dialogs: None,
                dialog: None,
                invite_correlation: 1,
                last_provisional: None,
                answer: None,
                tag: tags::tag(&id, TagSide::Callee),
            },
            ring_deadline: (routed.ring_timeout_secs > 0)
                .then(|| Instant::now() + Duration::from_secs(u64::from(routed.ring_timeout_secs))),
            on_timeout: TimeoutAction::try_from(routed.on_timeout).unwrap_or(TimeoutAction::Reject),
            voicemail: routed.voicemail,
            busy_key: routed.busy_key,
            ctx,
            id,
            machine: B2bCall::new(),
            owned: None,
            saved: None,
            media: None,
            failure: (500, "Server Internal Error".into()),
            inbound: None,
            pending_reinvite: [None, None],
            update_answer: [None, None],
            ack_pending: [None, None],
            requests: HashMap::new(),
            next_correlation: 2,
            created_ms: contracts::unix_ms(),
            answered_ms: 0,
        })
    }

    /// Runs the call to its end.
    pub async fn run(mut self, mut events: TypedSubscription<EdgeEvent>, mut media_events: TypedSubscription<MediaEvent>) {
        if !self.begin().await {
            return self.finish().await;
        }
        while !self.machine.is_over() {
            let deadline = self.ring_deadline;
            tokio::select! {
                Some(e) = events.next() => self.on_edge_event(e.message).await,
                Some(m) = media_events.next() => self.on_media_event(m.message).await,
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    self.ring_deadline = None;
                    self.on_ring_timeout().await;
                }
            }
            if self.owned.is_none() {
                tracing::warn!(session = %self.id, "session taken over by another node: leaving it");
                return;
            }
        }
        self.finish().await
    }

    /// Records the session, allocates media and calls the target. False when the call
    /// cannot go on (it was then refused to the caller).
    async fn begin(&mut self) -> bool {
        self.input(Side::Caller, LegInput::InviteReceived).await;
        let offer = sdp::audio_rtp_addr(&String::from_utf8_lossy(self.caller.invite.body())).filter(|a| !a.ip().is_unspecified());
        match self.ctx.media.allocate(&self.id, offer).await {
            Ok(allocation) => self.media = Some(allocation),
            Err(e) => {
                tracing::warn!(session = %self.id, error = %e, "no media for the call");
                self.failure = (503, "Service Unavailable".into());
                self.input(Side::Caller, LegInput::Reject).await;
                return false;
            }
        }
        // The record (and with it the ownership) is created with the media it holds.
        if !self.create_record().await {
            return false;
        }
        self.input(Side::Callee, LegInput::Dial).await;
        true
    }

    /// Gives `input` to leg `side` and carries out what follows (persisted first).
    pub async fn input(&mut self, side: Side, input: LegInput) {
        let effects = self.machine.handle(side, input);
        if effects.is_empty() {
            tracing::debug!(session = %self.id, ?side, ?input, "input ignored in this state");
            return;
        }
        self.persist().await;
        self.execute(effects).await;
    }

    fn side_of(&self, request: &Message) -> Side {
        match request.to_tag().and_then(tags::session_of) {
            Some((_, TagSide::Callee)) => Side::Callee,
            _ => Side::Caller,
        }
    }

    async fn on_edge_event(&mut self, event: EdgeEvent) {
        let Ok(edge) = NodeId::new(event.edge_id.clone()) else { return };
        match event.event {
            Some(edge_event::Event::Request(r)) => {
                let Some(request) = parse(r.request) else { return };
                let side = self.side_of(&request);
                self.on_request(Inbound { side, edge, tx: r.tx, request }).await;
            }
            Some(edge_event::Event::Ack(a)) => {
                if let Some(ack) = parse(a.ack) {
                    self.input(self.side_of(&ack), LegInput::Ack).await;
                }
            }
            Some(edge_event::Event::Cancelled(c)) if c.tx == self.caller.tx => {
                self.input(Side::Caller, LegInput::CancelReceived).await
            }
            Some(edge_event::Event::Response(r)) => {
                if let Some(response) = parse(r.response) {
                    self.on_response(r.correlation, response).await;
                }
            }
            Some(edge_event::Event::Failed(f)) => self.on_failure(f).await,
            _ => {}
        }
    }

    async fn on_request(&mut self, inbound: Inbound) {
        let side = inbound.side;
        match inbound.request.method() {
            Some(Method::Bye) => {
                self.inbound = Some(inbound);
                self.input(side, LegInput::ByeReceived).await;
            }
            Some(Method::Invite) => {
                let refused = self.dialog_mut(side).map(|d| d.on_request(&inbound.request)).transpose().err();
                if let Some(e) = refused {
                    return self.respond_to(&inbound, e.status(), "Invalid Request In Dialog").await;
                }
                if self.machine.state(side) == session_core::leg::LegState::Confirmed {
                    self.pending_reinvite[index(side)] = Some(inbound.clone());
                    if let Some(addr) = sdp::audio_rtp_addr(&String::from_utf8_lossy(inbound.request.body())) {
                        self.connect_media(side, addr).await;
                    }
                }
                self.inbound = Some(inbound);
                self.input(side, LegInput::ReinviteReceived).await;
            }
            Some(Method::Info) => self.respond_to(&inbound, 200, "OK").await,
            _ => self.respond_to(&inbound, 501, "Not Implemented").await,
        }
        self.inbound = None;
    }

    async fn on_response(&mut self, correlation: u64, response: Message) {
        let status = response.status().unwrap_or(0);
        if correlation == self.callee.invite_correlation {
            return self.on_invite_response(response).await;
        }
        match self.requests.get(&correlation).copied() {
            Some(Outgoing::Bye(side)) if status >= 200 => {
                self.requests.remove(&correlation);
                self.input(side, LegInput::ByeResponse).await;
            }
            Some(Outgoing::Reinvite(side, cseq)) if status >= 200 => {
                self.requests.remove(&correlation);
                let other = index(side.other());
                if (200..300).contains(&status) {
                    if let Some(addr) = sdp::audio_rtp_addr(&String::from_utf8_lossy(response.body())) {
                        self.connect_media(side, addr).await;
                    }
                    self.ack_pending[index(side)] = Some(cseq);
                    self.update_answer[other] = Some(response);
                    self.input(side, LegInput::UpdateSuccess).await;
                } else {
                    self.update_answer[other] = Some(response);
                    self.input(side, LegInput::UpdateFailure).await;
                }
            }
            _ => {}
        }
    }

    async fn on_invite_response(&mut self, response: Message) {
        let status = response.status().unwrap_or(0);
        let update = self.callee.dialogs.as_mut().map(|d| d.on_response(&response));
        match status {
            101..=199 => {
                self.callee.last_provisional = Some(response);
                self.input(Side::Callee, LegInput::Provisional).await;
            }
            200..=299 => {
                let Some(Ok(DialogUpdate::Confirmed(tag))) = update else { return };
                self.callee.dialog = self.callee.dialogs.as_ref().and_then(|d| d.get(&tag)).cloned();
                if let Some(addr) = sdp::audio_rtp_addr(&String::from_utf8_lossy(response.body())) {
                    self.connect_media(Side::Callee, addr).await;
                }
                self.callee.answer = Some(response);
                self.answered_ms = contracts::unix_ms();
                self.ring_deadline = None;
                self.mark_busy().await;
                self.input(Side::Callee, LegInput::Success).await;
            }
            300.. => {
                self.failure = (status, response.reason().to_owned());
                self.input(Side::Callee, LegInput::Failure).await;
            }
            _ => {}
        }
    }

    async fn on_failure(&mut self, failed: contracts::RequestFailed) {
        let reason = FailureReason::try_from(failed.reason).unwrap_or(FailureReason::Timeout);
        if reason == FailureReason::NoAck {
            if failed.tx == self.caller.tx {
                self.input(Side::Caller, LegInput::Timeout).await;
            }
        } else if failed.correlation == self.callee.invite_correlation {
            self.failure = match reason {
                FailureReason::Transport => (503, "Service Unavailable".into()),
                _ => (408, "Request Timeout".into()),
            };
            self.input(Side::Callee, LegInput::Timeout).await;
        } else if let Some(out) = self.requests.remove(&failed.correlation) {
            let side = match out {
                Outgoing::Bye(s) | Outgoing::Reinvite(s, _) => s,
            };
            self.input(side, LegInput::Timeout).await;
        }
    }

    async fn on_media_event(&mut self, event: MediaEvent) {
        if let Some(media_event::Event::NoRtp(n)) = event.event {
            tracing::info!(session = %self.id, leg = n.leg, seconds = n.seconds, "no RTP: ending the call");
            self.input(Side::Caller, LegInput::Hangup).await;
            self.input(Side::Callee, LegInput::Hangup).await;
        }
    }

    async fn on_ring_timeout(&mut self) {
        tracing::info!(session = %self.id, on_timeout = ?self.on_timeout, "ring timeout");
        self.input(Side::Callee, LegInput::Cancel).await;
        match self.on_timeout {
            TimeoutAction::Accept => self.input(Side::Caller, LegInput::Answer).await,
            TimeoutAction::Voicemail if !self.voicemail.is_empty() => {
                self.callee.target = self.voicemail.clone();
                self.callee.invite_correlation = self.next_correlation;
                self.next_correlation += 1;
                self.machine.restart_callee();
                self.input(Side::Callee, LegInput::Dial).await;
            }
            _ => {
                self.failure = (480, "Temporarily Unavailable".into());
                self.input(Side::Caller, LegInput::Reject).await;
            }
        }
    }

    fn dialog_mut(&mut self, side: Side) -> Option<&mut Dialog> {
        match side {
            Side::Caller => self.caller.dialog.as_mut(),
            Side::Callee => self.callee.dialog.as_mut(),
        }
    }
}
