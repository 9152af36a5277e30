//! What one leg's events mean for the others: the targets ringing for the caller (first
//! answer wins, the others are cancelled; when all fail the caller gets the best failure, or
//! the next target is tried), bridging, hang-ups crossing to the partner, re-INVITEs carried
//! across, ring timeouts, and the end of the call.

use std::time::Instant;

use sip::endpoint::peer_for_uri;
use sip::message::Uri;
use sip::transaction::TransportKind;

use super::io::{CallEvent, LegId, MediaOutput, OnTimeout, Output, Route, Target};
use super::leg::LegRole;
use super::{CALLER, Engine, Timer};
use crate::leg::{LegEvent, LegInput, LegState};

impl Engine {
    pub(super) fn on_leg_event(&mut self, leg: LegId, event: LegEvent, now: Instant) {
        match event {
            LegEvent::Incoming => self.on_incoming(),
            LegEvent::Ringing => self.on_ringing(leg),
            LegEvent::Answered => self.on_answered(leg),
            LegEvent::Failed => self.on_failed(leg, now),
            LegEvent::Cancelled => {
                self.leg_mut(leg).failure.get_or_insert((487, "Request Terminated".into()));
                self.cancel_ringing_for(leg);
            }
            // The caller's ACK came: recorded, so a node taking the call over knows the
            // dialog confirmed (it re-offers it, takes its re-INVITEs; a call we answered
            // ourselves, a conference seat or a queue caller, answers again from its seat).
            LegEvent::Confirmed if self.is_local() => {
                if self.leg(leg).role == LegRole::Uas {
                    self.out.push_back(Output::Persist);
                }
                self.local_confirmed()
            }
            LegEvent::Confirmed if self.leg(leg).role == LegRole::Uas => self.out.push_back(Output::Persist),
            LegEvent::Confirmed => {}
            LegEvent::UpdateRequested if self.is_local() => self.local_reoffered(leg),
            LegEvent::UpdateRequested => match self.partner(leg) {
                Some(p) if self.leg(p).state() == LegState::Confirmed => self.work.push_back((p, LegInput::Update)),
                // The other side is busy with an offer of its own, or not acknowledged yet:
                // try again later (491). Nobody to ask (ringing, gone): refuse (488).
                other => {
                    let busy = other.is_some_and(|p| self.leg(p).is_up());
                    self.leg_mut(leg).refusal = Some(if busy { 491 } else { 488 });
                    self.work.push_back((leg, LegInput::RejectUpdate));
                }
            },
            LegEvent::UpdateDone if self.is_local() => self.local_updated(leg, 200),
            // A re-offer of the relay's move: nothing to carry across.
            LegEvent::UpdateDone | LegEvent::UpdateFailed if !self.leg(leg).glare && self.reoffered(leg) => {}
            LegEvent::UpdateDone => {
                if let Some(p) = self.partner(leg) {
                    self.work.push_back((p, LegInput::AcceptUpdate));
                }
            }
            // A 491 is retried (`glare`): the partner waits for the outcome of the retry.
            LegEvent::UpdateFailed if self.leg(leg).glare => {}
            LegEvent::UpdateFailed if self.is_local() => {
                let status = self.leg(leg).failure.as_ref().map_or(500, |(s, _)| *s);
                self.local_updated(leg, status);
            }
            LegEvent::UpdateFailed => {
                if let Some(p) = self.partner(leg) {
                    self.work.push_back((p, LegInput::RejectUpdate));
                }
            }
            LegEvent::Ending | LegEvent::Ended => self.on_gone(leg, event),
        }
    }

    /// The caller's INVITE is in: media first (the targets are offered its relay).
    fn on_incoming(&mut self) {
        if !self.unsupported_required(CALLER).is_empty() {
            return self.reject_caller(420, "Bad Extension");
        }
        if self.interval_too_small(CALLER) {
            return self.reject_caller(422, "Session Interval Too Small");
        }
        if self.is_local() {
            return self.local_incoming();
        }
        if self.leg(CALLER).invite.as_ref().is_some_and(|i| !i.body().is_empty()) && self.leg(CALLER).remote_sdp.is_none() {
            self.reject_caller(488, "Not Acceptable Here");
            return;
        }
        let caller = self.far_media(CALLER);
        self.allocating = true;
        self.out.push_back(Output::Media(MediaOutput::Allocate { slots: 2, caller }));
    }

    /// Calls the targets the plan holds, once media is there: all of them, or the next one.
    pub(super) fn dial_waiting(&mut self, now: Instant) {
        if self.slots.is_empty() || self.leg(CALLER).is_over() {
            return;
        }
        let Some(plan) = &mut self.plan else { return };
        let batch: Vec<Target> =
            if plan.parallel { plan.waiting.drain(..).collect() } else { plan.waiting.pop_front().into_iter().collect() };
        if batch.is_empty() && !self.ringing_for.values().any(|f| *f == CALLER) && !self.leg(CALLER).is_up() {
            self.reject_caller_with_best();
            return;
        }
        for target in batch {
            self.dial(target, CALLER, 1, now);
        }
    }

    /// Starts a leg calling `target` for leg `for_leg`, its far end sending RTP to `slot`.
    pub(super) fn dial(&mut self, target: Target, for_leg: LegId, slot: u32, now: Instant) -> Option<LegId> {
        let edge = self.leg(for_leg).route.edge.clone();
        let route = target.route.clone().or_else(|| {
            let peer = peer_for_uri(&Uri::parse(&target.uri).ok()?, TransportKind::Udp)?;
            Some(Route { edge, peer })
        });
        let Some(route) = route else {
            tracing::warn!(session = %self.config.session, target = %target.uri, "target not resolvable");
            self.note_failure(502, "Target Not Resolvable");
            if for_leg == CALLER && !self.ringing_for.values().any(|f| *f == CALLER) {
                self.dial_waiting(now);
            }
            return None;
        };
        let leg = self.new_leg(LegRole::Uac, route, slot);
        self.leg_mut(leg).target = target.uri;
        self.ringing_for.insert(leg, for_leg);
        self.work.push_back((leg, LegInput::Dial));
        Some(leg)
    }

    fn on_ringing(&mut self, leg: LegId) {
        self.out.push_back(Output::Event(CallEvent::Ringing { leg }));
        if let Some(referrer) = self.referred_by.get(&leg).copied() {
            self.notify_transfer(referrer, 180, "Ringing");
            return;
        }
        if let Some(for_leg) = self.ringing_for.get(&leg).copied()
            && matches!(self.leg(for_leg).state(), LegState::Incoming | LegState::Early)
        {
            self.leg_mut(for_leg).provisional = self.leg(leg).provisional.clone();
            self.work.push_back((for_leg, LegInput::Ring));
        }
    }

    fn on_answered(&mut self, leg: LegId) {
        self.out.push_back(Output::Event(CallEvent::Answered { leg }));
        let Some(for_leg) = self.ringing_for.remove(&leg) else { return };
        // First answer wins: the other targets ringing for the same leg are cancelled.
        let others: Vec<LegId> = self.ringing_for.iter().filter(|(_, f)| **f == for_leg).map(|(l, _)| *l).collect();
        for other in others {
            self.ringing_for.remove(&other);
            self.work.push_back((other, LegInput::Cancel));
        }
        self.timers.remove(&Timer::Ring);
        self.plan = None;
        let previous = self.partner.get(&for_leg).copied();
        self.bridge(for_leg, leg);
        if let Some(referrer) = self.referred_by.remove(&leg) {
            self.finish_transfer(referrer, for_leg, previous);
        } else if self.leg(for_leg).role == LegRole::Uas && !self.leg(for_leg).is_up() {
            self.work.push_back((for_leg, LegInput::Answer));
        } else if self.hears_something_new(for_leg) {
            // A caller we had answered ourselves (parked, queued) now hears the target.
            self.work.push_back((for_leg, LegInput::Update));
        }
        self.out.push_back(Output::Persist);
    }

    /// `a` and `b` talk: each is the other's partner; the relay sends `b`'s slot to it.
    pub(super) fn bridge(&mut self, a: LegId, b: LegId) {
        if let Some(old) = self.partner.remove(&a) {
            self.partner.remove(&old);
        }
        self.partner.insert(a, b);
        self.partner.insert(b, a);
        for leg in [a, b] {
            self.connect_slot(leg);
        }
        self.out.push_back(Output::Event(CallEvent::Bridged { a, b }));
    }

    fn on_failed(&mut self, leg: LegId, now: Instant) {
        let (status, reason) = self.leg(leg).failure.clone().unwrap_or((408, "Request Timeout".into()));
        self.out.push_back(Output::Event(CallEvent::LegEnded { leg, status }));
        let Some(for_leg) = self.ringing_for.remove(&leg) else { return };
        if let Some(referrer) = self.referred_by.remove(&leg) {
            self.fail_transfer(referrer, for_leg, status, &reason);
            return;
        }
        self.note_failure(status, &reason);
        let still_ringing = self.ringing_for.values().any(|f| *f == for_leg);
        if for_leg == CALLER && !still_ringing {
            // A decline (6xx) ends the search for a caller still waiting (RFC 3261 §16.7:
            // no more branches); a caller we answered (a queue) goes on to the next target.
            if (600..700).contains(&status) && !self.leg(CALLER).is_up() {
                self.plan = None;
            }
            self.dial_waiting(now);
        }
        // A relayed leg kept up for a target (an operator's transfer) that nobody is left
        // to answer: it is hung up, not left in silence.
        let alone = self.leg(for_leg).is_up() && self.partner(for_leg).is_none();
        if alone && !self.is_local() && !self.ringing_for.values().any(|f| *f == for_leg) {
            self.work.push_back((for_leg, LegInput::Hangup));
        }
    }

    /// Keeps the failure the caller should hear: the lowest class wins, 6xx above all.
    pub(super) fn note_failure(&mut self, status: u16, reason: &str) {
        let rank = |s: u16| if s >= 600 { 0 } else { s };
        if self.best_failure.as_ref().is_none_or(|(best, _)| rank(status) < rank(*best)) {
            self.best_failure = Some((status, reason.to_owned()));
        }
    }

    fn reject_caller_with_best(&mut self) {
        let (status, reason) = self.best_failure.clone().unwrap_or((480, "Temporarily Unavailable".into()));
        self.reject_caller(status, &reason);
    }

    /// Refuses the caller with `status` (when it still waits for an answer).
    pub(super) fn reject_caller(&mut self, status: u16, reason: &str) {
        self.leg_mut(CALLER).failure = Some((status, reason.to_owned()));
        self.work.push_back((CALLER, LegInput::Reject));
    }

    /// The caller gave up (CANCEL): so do the targets ringing for it.
    fn cancel_ringing_for(&mut self, leg: LegId) {
        let ringing: Vec<LegId> = self.ringing_for.iter().filter(|(_, f)| **f == leg).map(|(l, _)| *l).collect();
        for l in ringing {
            self.ringing_for.remove(&l);
            self.work.push_back((l, LegInput::Cancel));
        }
        self.plan = None;
        self.timers.remove(&Timer::Ring);
    }

    /// A leg is going away: its partner follows, unless a transfer will give it a new one.
    fn on_gone(&mut self, leg: LegId, event: LegEvent) {
        if event == LegEvent::Ended {
            let status = self.leg(leg).failure.as_ref().map_or(0, |(s, _)| *s);
            self.out.push_back(Output::Event(CallEvent::LegEnded { leg, status }));
        }
        self.cancel_ringing_for(leg);
        let Some(partner) = self.partner.remove(&leg) else { return };
        self.partner.remove(&partner);
        let transfer_pending = self.ringing_for.values().any(|f| *f == partner);
        if !transfer_pending && !self.leg(partner).is_over() {
            self.work.push_back((partner, LegInput::Hangup));
        }
    }

    pub(super) fn hangup_all(&mut self) {
        self.plan = None;
        for leg in self.legs.iter().filter(|l| !l.is_over()).map(|l| l.id).collect::<Vec<_>>() {
            self.work.push_back((leg, LegInput::Hangup));
        }
    }

    /// Nobody answered in time: cancel the targets, then what the plan says.
    pub(super) fn ring_timeout(&mut self, now: Instant) {
        let on_timeout = self.plan.as_ref().map(|p| p.ring.on_timeout.clone()).unwrap_or(OnTimeout::Reject);
        tracing::info!(session = %self.config.session, ?on_timeout, "ring timeout");
        self.cancel_ringing_for(CALLER);
        if self.leg(CALLER).is_over() || self.leg(CALLER).is_up() {
            return;
        }
        match on_timeout {
            OnTimeout::Accept => self.work.push_back((CALLER, LegInput::Answer)),
            OnTimeout::Divert(target) => {
                self.dial(target, CALLER, 1, now);
            }
            OnTimeout::Reject => self.reject_caller(480, "Temporarily Unavailable"),
        }
    }
}
