//! Server transactions: INVITE (RFC 3261 §17.2.1 with the Accepted state of RFC 6026, and
//! the UAS core's 2xx retransmission until ACK of §13.3.1.4) and non-INVITE (§17.2.2).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::{Timer, TimerConfig, TimerTable};
use super::{Event, Outputs, Peer, TxId};
use crate::message::Message;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerState {
    /// Non-INVITE received, no response yet.
    Trying,
    Proceeding,
    Completed,
    /// INVITE only: the ACK for a failure response arrived.
    Confirmed,
    /// INVITE only: a 2xx was sent.
    Accepted,
    Terminated,
}

/// Why the TU cannot send a response now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RespondError {
    FinalAlreadySent,
    NotAResponse,
}

pub(crate) struct ServerTx {
    pub id: TxId,
    invite: bool,
    pub state: ServerState,
    /// The request, until a final response is sent (then only the key and the last
    /// response are needed, and a transaction lives on for up to 64·T1).
    pub request: Option<Box<Message>>,
    /// Where responses go (§18.2.2).
    pub peer: Peer,
    pub timers: TimerTable,
    interval: Duration,
    last_response: Option<Bytes>,
    /// A 2xx was sent and its ACK has not arrived.
    pub awaiting_ack: bool,
}

impl ServerTx {
    pub fn new(id: TxId, request: Message, peer: Peer, invite: bool) -> ServerTx {
        ServerTx {
            id,
            invite,
            state: if invite { ServerState::Proceeding } else { ServerState::Trying },
            request: Some(Box::new(request)),
            peer,
            timers: TimerTable::default(),
            interval: Duration::ZERO,
            last_response: None,
            awaiting_ack: false,
        }
    }

    fn arm(&mut self, timer: Timer, after: Duration, now: Instant, out: &mut Outputs) {
        self.timers.set(timer, now + after);
        out.wake(now + after, self.id);
    }

    fn terminate(&mut self) {
        self.state = ServerState::Terminated;
        self.timers.stop_all();
    }

    fn reliable(&self) -> bool {
        self.peer.transport.is_reliable()
    }

    /// A retransmission of the request arrived: resend the last response, if any.
    pub fn on_retransmission(&mut self, out: &mut Outputs) -> bool {
        let resend = match self.state {
            ServerState::Proceeding | ServerState::Completed => true,
            ServerState::Trying | ServerState::Confirmed | ServerState::Accepted | ServerState::Terminated => false,
        };
        match (&self.last_response, resend) {
            (Some(r), true) => {
                out.resend(self.peer, r.clone(), self.id);
                true
            }
            _ => false,
        }
    }

    pub fn respond(
        &mut self,
        response: &Message,
        now: Instant,
        cfg: &TimerConfig,
        out: &mut Outputs,
    ) -> Result<(), RespondError> {
        let code = response.status().ok_or(RespondError::NotAResponse)?;
        let bytes = response.as_bytes().clone();
        if code >= 200 && self.is_pending() {
            self.request = None;
        }
        use ServerState::*;
        match (self.invite, self.state, code) {
            (true, Proceeding, 100..=199) | (false, Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
            }
            (true, Proceeding, 200..=299) => {
                self.state = Accepted;
                self.awaiting_ack = true;
                if !self.reliable() {
                    self.interval = cfg.t1;
                    self.arm(Timer::Retransmit2xx, cfg.t1, now, out);
                }
                self.arm(Timer::L, cfg.t1x64(), now, out);
            }
            (true, Accepted, 200..=299) => {}
            (true, Proceeding, 300..) => {
                self.state = Completed;
                if !self.reliable() {
                    self.interval = cfg.t1;
                    self.arm(Timer::G, cfg.t1, now, out);
                }
                self.arm(Timer::H, cfg.t1x64(), now, out);
            }
            (false, Trying | Proceeding, 200..) => {
                self.state = Completed;
                let j = cfg.timer_j(self.reliable());
                out.send(self.peer, bytes, self.id);
                if j.is_zero() {
                    self.terminate();
                } else {
                    self.arm(Timer::J, j, now, out);
                    self.last_response = Some(response.as_bytes().clone());
                }
                return Ok(());
            }
            _ => return Err(RespondError::FinalAlreadySent),
        }
        out.send(self.peer, bytes.clone(), self.id);
        self.last_response = Some(bytes);
        Ok(())
    }

    /// An ACK matched this INVITE transaction by branch. Returns true when it acknowledges
    /// a 2xx (and so belongs to the TU).
    pub fn on_ack(&mut self, now: Instant, cfg: &TimerConfig, out: &mut Outputs) -> bool {
        match self.state {
            ServerState::Completed => {
                self.state = ServerState::Confirmed;
                self.last_response = None;
                self.timers.stop(Timer::G);
                self.timers.stop(Timer::H);
                let i = cfg.t4_unless_reliable(self.reliable());
                if i.is_zero() {
                    self.terminate();
                } else {
                    self.arm(Timer::I, i, now, out);
                }
                false
            }
            ServerState::Accepted => self.ack_2xx(),
            _ => false,
        }
    }

    /// The ACK for our 2xx arrived: stop retransmitting it. Returns true the first time.
    pub fn ack_2xx(&mut self) -> bool {
        self.timers.stop(Timer::Retransmit2xx);
        self.last_response = None;
        std::mem::replace(&mut self.awaiting_ack, false)
    }

    pub fn on_timer(&mut self, timer: Timer, now: Instant, cfg: &TimerConfig, out: &mut Outputs) {
        use ServerState::*;
        match (timer, self.state) {
            (Timer::G, Completed) | (Timer::Retransmit2xx, Accepted) => {
                if let Some(r) = &self.last_response {
                    out.resend(self.peer, r.clone(), self.id);
                }
                self.interval = (self.interval * 2).min(cfg.t2);
                self.arm(timer, self.interval, now, out);
            }
            (Timer::H, Completed) => {
                out.event(Event::Timeout { tx: self.id });
                self.terminate();
            }
            (Timer::L, Accepted) => {
                if self.awaiting_ack {
                    out.event(Event::AckTimeout { tx: self.id });
                }
                self.terminate();
            }
            (Timer::I, Confirmed) | (Timer::J, Completed) => self.terminate(),
            _ => {}
        }
    }

    pub fn on_transport_error(&mut self, out: &mut Outputs) {
        if self.state != ServerState::Terminated {
            out.event(Event::TransportError { tx: self.id });
        }
        self.terminate();
    }

    pub fn is_invite(&self) -> bool {
        self.invite
    }

    /// True until a final response has been sent.
    pub fn is_pending(&self) -> bool {
        matches!(self.state, ServerState::Trying | ServerState::Proceeding)
    }
}
