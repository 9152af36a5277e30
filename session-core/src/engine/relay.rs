//! The relay of a call: where each slot sends, the descriptions anchored at it, and moving
//! it to another media node when its own is lost (`Command::Reanchor`): the engine asks
//! for a new relay (the caller's address with it, so the new relay sends to the caller at
//! once), then re-offers each leg that is up, one after the other, a description anchored
//! at its new slot (a re-INVITE, our SDP version moved on); each answer tells the relay
//! where that leg's far end wants RTP. Legs not up meanwhile (ringing, ending) are left
//! as they are.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::io::{LegId, MediaOutput, Output};
use super::sdp::{self, FarSdp};
use super::{CALLER, Engine};
use crate::leg::{LegInput, LegState};

/// A relay being moved: the legs still to re-offer, and the one being re-offered.
#[derive(Debug, Default)]
pub(super) struct Reanchor {
    pending: VecDeque<LegId>,
    current: Option<LegId>,
}

impl Engine {
    /// Tells the relay where leg `leg`'s far end wants RTP, when that changed.
    pub(super) fn connect_slot(&mut self, leg: LegId) {
        if self.is_local() {
            return;
        }
        let Some(far) = self.far_media(leg) else { return };
        let slot = self.leg(leg).slot;
        let now = (far.rtp, sdp::codecs_print(&far.codecs));
        if self.connected.insert(slot, now) != Some(now) {
            self.out.push_back(Output::Media(MediaOutput::Connect { slot, far }));
        }
    }

    /// The relay address of `slot`, once media is allocated.
    pub(super) fn relay(&self, slot: u32) -> Option<SocketAddr> {
        self.slots.get(slot as usize).copied()
    }

    /// `far` anchored for leg `toward`: what that leg's far end receives.
    pub(super) fn anchored_for(&mut self, toward: LegId, far: &FarSdp) -> Option<String> {
        let relay = self.relay(self.leg(toward).slot)?;
        let coded = self.codecs_for(toward, &far.parsed);
        let far = coded.as_ref().unwrap_or(&far.parsed);
        let adapted = self.events_for(toward, far);
        Some(media::sdp::anchor(adapted.as_ref().unwrap_or(far), relay, &mut self.leg_mut(toward).origin))
    }

    /// The relay's media node is gone: a new relay is asked for.
    pub(super) fn reanchor(&mut self) {
        if self.is_local() || self.ended || self.allocating || self.media_node.is_none() || self.reanchor.is_some() {
            return;
        }
        tracing::warn!(session = %self.config.session, node = ?self.media_node, "relay lost: moving the call to another media node");
        self.media_node = None;
        self.slots.clear();
        self.connected.clear();
        self.allocating = true;
        self.reanchor = Some(Reanchor::default());
        let caller = self.far_media(CALLER);
        self.out.push_back(Output::Media(MediaOutput::Allocate { slots: 2, caller }));
    }

    /// The new relay is there: every leg up is re-offered in turn.
    pub(super) fn reanchored(&mut self) {
        let Some(moving) = self.reanchor.as_mut() else { return };
        moving.pending = (0..self.legs.len() as u32).map(LegId).collect();
        self.next_reoffer();
    }

    /// No new relay could be had: without media the call ends. True when it was moving.
    pub(super) fn reanchor_failed(&mut self) -> bool {
        if self.reanchor.take().is_none() {
            return false;
        }
        tracing::warn!(session = %self.config.session, "no media node for the call's new relay: ending it");
        self.hangup_all();
        true
    }

    /// `leg`'s re-offer of the move was answered (or failed): on to the next leg. True when
    /// the re-offer was the move's (not to be carried across to the partner).
    pub(super) fn reoffered(&mut self, leg: LegId) -> bool {
        if self.reanchor.as_ref().is_none_or(|m| m.current != Some(leg)) {
            return false;
        }
        self.connect_slot(leg);
        self.next_reoffer();
        true
    }

    fn next_reoffer(&mut self) {
        while let Some(next) = self.reanchor.as_mut().map(|m| m.pending.pop_front()) {
            let Some(leg) = next else {
                self.reanchor = None;
                self.out.push_back(Output::Persist);
                return;
            };
            let (state, partner) = (self.leg(leg).state(), self.partner(leg));
            tracing::debug!(session = %self.config.session, leg = leg.0, ?state, ?partner, "relay moved: re-offering");
            if state == LegState::Confirmed && partner.is_some() {
                if let Some(moving) = self.reanchor.as_mut() {
                    moving.current = Some(leg);
                }
                self.work.push_back((leg, LegInput::Update));
                return;
            }
        }
    }
}
