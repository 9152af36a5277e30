//! A seat whose media node died: the call takes a seat in the same room on another media
//! node — the first of the room's callers to get there opens the room again, the others
//! sit in it (`conference::take_seat`) — sets it as it was (an agent's leg still ringing
//! muted and deaf, a caller muted by `*6` muted, the route's music playing) and offers the
//! far end its new address in a re-INVITE (`Command::MoveMedia`); the answer connects the
//! seat's stream, and a recorded seat's recording goes on there in a new segment
//! (`media_out.rs`). Without any media node left, the call ends.

use std::time::Instant;

use session_core::engine::Command;

use super::{Call, conference, queue};

impl Call {
    pub(super) async fn reseat(&mut self) {
        let Some(room) = self.seat.as_ref().map(|s| s.room.clone()) else { return };
        let zone = Some(self.media_zone.as_str()).filter(|z| !z.is_empty());
        let seat = match conference::take_seat(&self.ctx, &self.id, &room, zone).await {
            Ok(seat) => seat,
            Err(e) => {
                tracing::warn!(session = %self.id, %room, error = %e, "no seat on another media node: the call ends");
                self.engine.handle_command(Command::Hangup, Instant::now());
                return;
            }
        };
        tracing::info!(session = %self.id, %room, node = %seat.node, "seat moved to another media node");
        let ringing_agent = matches!(&self.acd, Some(queue::Role::Agent(a)) if !a.bridged);
        let Some(seated) = self.seat.as_mut() else { return };
        let (muted, deaf) = (ringing_agent || seated.muted, ringing_agent);
        if (muted || deaf)
            && let Err(e) = self.ctx.media.seat_control(&seat, &self.id, muted, deaf).await
        {
            tracing::warn!(session = %self.id, error = %e, "moved seat's controls not set");
        }
        if !seated.music.is_empty()
            && let Err(e) = self.ctx.media.seat_hold_music(&seat, &self.id, &seated.music).await
        {
            tracing::warn!(session = %self.id, error = %e, "moved room's music not started");
        }
        seated.seat = seat.clone();
        seated.moved = true;
        self.engine.handle_command(Command::MoveMedia { rtp: seat.rtp }, Instant::now());
        self.persist().await;
    }

    /// A call taken over whose seat's media node died while it had no owner: it moves now.
    pub(crate) async fn move_lost_seat(&mut self) {
        if self.seat.as_ref().is_some_and(|s| self.ctx.media_gone.contains(s.seat.node.as_str())) {
            self.reseat().await;
        }
    }
}
