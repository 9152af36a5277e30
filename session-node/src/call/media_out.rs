//! The engine's requests to the media plane, carried out: a relay on the media node with
//! the most headroom (in the route's zone), its legs connected to their far ends, DTMF
//! written, released at the end; or a seat's stream in its conference room.

use std::time::Instant;

use session_core::engine::{MediaInput, MediaOutput};

use super::{Call, conference};

impl Call {
    /// Carries out a request of the engine to the media plane: a relay allocated (and
    /// recorded, when the route says so), connected, written DTMF into, released; a
    /// conference seat's negotiated stream.
    pub(super) async fn media(&mut self, request: MediaOutput) {
        match request {
            MediaOutput::Allocate { caller, .. } => {
                let zone = Some(self.media_zone.as_str()).filter(|z| !z.is_empty());
                let input = match self.ctx.media.allocate(&self.id, caller, zone).await {
                    Ok(a) => {
                        if self.record {
                            // A relay after the first (its node died): the recording goes on
                            // in the next segment.
                            self.segment += 1;
                            if let Err(e) = self.ctx.media.record(&a.node, &self.id, true, "stereo", self.segment).await {
                                tracing::warn!(session = %self.id, error = %e, "recording not started");
                            }
                        }
                        let input = MediaInput::Allocated { node: a.node.to_string(), slots: a.legs.to_vec() };
                        self.media_node = Some(a.node);
                        input
                    }
                    Err(e) => MediaInput::Unavailable { reason: e.to_string() },
                };
                self.engine.handle_media(input, Instant::now());
            }
            MediaOutput::Dtmf { slot, digit, duration_ms } => {
                if let Some(node) = &self.media_node
                    && let Err(e) = self.ctx.media.dtmf(node, &self.id, slot, digit, duration_ms).await
                {
                    tracing::warn!(session = %self.id, error = %e, "DTMF not written");
                }
            }
            MediaOutput::Connect { slot, far } => {
                if let Some(node) = &self.media_node
                    && let Err(e) = self.ctx.media.connect(node, &self.id, slot, far).await
                {
                    tracing::warn!(session = %self.id, error = %e, "media not connected");
                }
            }
            MediaOutput::Release => {
                if let Some(node) = self.media_node.take()
                    && let Err(e) = self.ctx.media.release(&node, &self.id).await
                {
                    tracing::warn!(session = %self.id, error = %e, "media not released");
                }
            }
            // A conference seat's stream, as offer/answer agreed it.
            MediaOutput::Local(negotiated) => {
                if let Some(seated) = &mut self.seat {
                    let seat = &seated.seat;
                    if let Err(e) = self.ctx.media.seat_stream(seat, &self.id, &negotiated, Some(self.caller_ip)).await {
                        tracing::warn!(session = %self.id, error = %e, "conference seat not connected");
                    }
                    if let Some(route) = self.seat_options.take() {
                        let recording = conference::apply_route(&self.ctx, seat, &self.id, &route).await;
                        seated.music = route.music_on_hold;
                        (self.record, self.segment) = (recording, u32::from(recording));
                    } else if std::mem::take(&mut seated.moved) && self.record {
                        // A seat that recorded its room moved to another media node: the
                        // recording goes on there, in the next segment.
                        self.segment += 1;
                        if let Err(e) = self.ctx.media.record(&seat.node, &self.id, true, "stereo", self.segment).await {
                            tracing::warn!(session = %self.id, error = %e, "moved seat's recording not started");
                        }
                    }
                    self.join_queue().await;
                }
            }
        }
    }
}
