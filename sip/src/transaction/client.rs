//! Client transactions: INVITE (RFC 3261 §17.1.1 with the Accepted state of RFC 6026) and
//! non-INVITE (§17.1.2).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::derived::ack_for_failure;
use super::timer::{Timer, TimerConfig, TimerTable};
use super::{Event, Outputs, Peer, TxId};
use crate::message::Message;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientState {
    /// INVITE sent, nothing heard yet.
    Calling,
    /// Non-INVITE sent, nothing heard yet.
    Trying,
    Proceeding,
    Completed,
    /// A 2xx to INVITE arrived; further 2xx (retransmissions, forks) are passed up.
    Accepted,
    Terminated,
}

/// What the layer must do after a response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AfterResponse {
    Nothing,
    /// A provisional response arrived and the TU asked for a CANCEL earlier.
    SendPendingCancel,
}

pub(crate) struct ClientTx {
    pub id: TxId,
    invite: bool,
    pub state: ClientState,
    /// The request, until a final response arrives.
    pub request: Option<Box<Message>>,
    pub peer: Peer,
    pub timers: TimerTable,
    interval: Duration,
    /// The ACK sent for a non-2xx final response, resent on its retransmissions.
    ack: Option<Bytes>,
    /// The ACK the TU sent for a 2xx, by the To tag it acknowledged.
    ack_2xx: Option<(Box<str>, Bytes)>,
    pub cancel_pending: bool,
}

impl ClientTx {
    /// Creates the transaction and sends its request.
    pub fn start(
        id: TxId,
        request: Message,
        peer: Peer,
        invite: bool,
        now: Instant,
        cfg: &TimerConfig,
        out: &mut Outputs,
    ) -> ClientTx {
        let mut tx = ClientTx {
            id,
            invite,
            state: if invite { ClientState::Calling } else { ClientState::Trying },
            peer,
            timers: TimerTable::default(),
            interval: cfg.t1,
            ack: None,
            ack_2xx: None,
            cancel_pending: false,
            request: None,
        };
        out.send(peer, request.as_bytes().clone(), id);
        tx.request = Some(Box::new(request));
        if !peer.transport.is_reliable() {
            tx.arm(if invite { Timer::A } else { Timer::E }, cfg.t1, now, out);
        }
        tx.arm(if invite { Timer::B } else { Timer::F }, cfg.t1x64(), now, out);
        tx
    }

    fn arm(&mut self, timer: Timer, after: Duration, now: Instant, out: &mut Outputs) {
        self.timers.set(timer, now + after);
        out.wake(now + after, self.id);
    }

    /// Enters a wait state that lasts `after`, or terminates at once when it is zero
    /// (reliable transports).
    fn wait(&mut self, timer: Timer, after: Duration, now: Instant, out: &mut Outputs) {
        if after.is_zero() {
            self.terminate();
        } else {
            self.arm(timer, after, now, out);
        }
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.timers.stop_all();
    }

    pub fn on_response(&mut self, response: Message, now: Instant, cfg: &TimerConfig, out: &mut Outputs) -> AfterResponse {
        let code = response.status().unwrap_or(0);
        use ClientState::*;
        match (self.state, code) {
            (Calling | Trying | Proceeding, 100..=199) => {
                let first = self.state != Proceeding;
                self.state = Proceeding;
                if self.invite {
                    self.timers.stop(Timer::A);
                    self.timers.stop(Timer::B);
                }
                out.event(Event::Response { tx: self.id, response });
                if first && self.cancel_pending {
                    self.cancel_pending = false;
                    return AfterResponse::SendPendingCancel;
                }
            }
            (Calling | Proceeding, 200..=299) if self.invite => {
                self.state = Accepted;
                self.request = None;
                self.timers.stop_all();
                self.cancel_pending = false;
                self.arm(Timer::M, cfg.t1x64(), now, out);
                out.event(Event::Response { tx: self.id, response });
            }
            (Calling | Proceeding, 300..) if self.invite => {
                self.state = Completed;
                self.timers.stop_all();
                self.cancel_pending = false;
                let invite = self.request.take();
                if let Some(Ok(ack)) = invite.map(|r| ack_for_failure(&r, &response)) {
                    let bytes = ack.as_bytes().clone();
                    out.send(self.peer, bytes.clone(), self.id);
                    self.ack = Some(bytes);
                }
                out.event(Event::Response { tx: self.id, response });
                self.wait(Timer::D, cfg.timer_d(self.peer.transport.is_reliable()), now, out);
            }
            (Completed, 300..) if self.invite => {
                if let Some(ack) = &self.ack {
                    out.resend(self.peer, ack.clone(), self.id);
                }
            }
            (Accepted, 200..=299) => {
                let same_dialog = matches!((&self.ack_2xx, response.to_tag()), (Some((tag, _)), Some(t)) if **tag == *t);
                match &self.ack_2xx {
                    Some((_, ack)) if same_dialog => out.resend(self.peer, ack.clone(), self.id),
                    _ => out.event(Event::Response { tx: self.id, response }),
                }
            }
            (Trying | Proceeding, 200..) => {
                self.state = Completed;
                self.request = None;
                self.timers.stop_all();
                out.event(Event::Response { tx: self.id, response });
                self.wait(Timer::K, cfg.t4_unless_reliable(self.peer.transport.is_reliable()), now, out);
            }
            _ => {}
        }
        AfterResponse::Nothing
    }

    fn retransmit(&self, out: &mut Outputs) {
        if let Some(r) = &self.request {
            out.resend(self.peer, r.as_bytes().clone(), self.id);
        }
    }

    /// Remembers the ACK the TU sent for the 2xx with `to_tag`, to answer its retransmissions.
    pub fn remember_ack(&mut self, to_tag: &str, ack: Bytes) {
        if self.state == ClientState::Accepted {
            self.ack_2xx = Some((to_tag.into(), ack));
        }
    }

    pub fn on_timer(&mut self, timer: Timer, now: Instant, cfg: &TimerConfig, out: &mut Outputs) {
        use ClientState::*;
        match (timer, self.state) {
            (Timer::A, Calling) => {
                self.retransmit(out);
                self.interval *= 2;
                self.arm(Timer::A, self.interval, now, out);
            }
            (Timer::E, Trying) => {
                self.retransmit(out);
                self.interval = (self.interval * 2).min(cfg.t2);
                self.arm(Timer::E, self.interval, now, out);
            }
            (Timer::E, Proceeding) => {
                self.retransmit(out);
                self.arm(Timer::E, cfg.t2, now, out);
            }
            (Timer::B, Calling) | (Timer::F, Trying | Proceeding) => {
                out.event(Event::Timeout { tx: self.id });
                self.terminate();
            }
            (Timer::D, Completed) | (Timer::K, Completed) | (Timer::M, Accepted) => self.terminate(),
            _ => {}
        }
    }

    pub fn on_transport_error(&mut self, out: &mut Outputs) {
        if matches!(self.state, ClientState::Calling | ClientState::Trying | ClientState::Proceeding) {
            out.event(Event::TransportError { tx: self.id });
        }
        self.terminate();
    }

    pub fn is_invite(&self) -> bool {
        self.invite
    }
}
