//! A call to a conference room (dial-plan target `conference:<room>`): the call engine
//! answers the caller itself (its local mode), with a seat in the room on a media node as
//! its media. Every seat of a room is on the node that opened it: the registry says which
//! (`room.<name>` in the sessions bucket), the first caller opens it on any media node, and
//! whoever leaves it last removes the entry.

use std::time::Instant;

use bytes::Bytes;
use cluster::contracts::{RoomPlay, RoutedCall};
use cluster::registry::{Bucket, RegistryError};
use cluster::subjects::{NodeId, SessionId};
use media::sdp::{LocalMedia, NegotiationOptions};
use media_node::{MediaError, Seat};
use session_core::engine::{Engine, EngineConfig, LocalEnd, Route, ServerTx};
use sip::message::Message;

use crate::node::Ctx;

/// The target prefix that names a room.
pub const PREFIX: &str = "conference:";

fn room_key(room: &str) -> String {
    format!("room.{room}")
}

async fn room_node(ctx: &Ctx, room: &str) -> Option<NodeId> {
    let entry = ctx.registry.get(Bucket::Sessions, &room_key(room)).await.ok()??;
    NodeId::new(String::from_utf8_lossy(&entry.value).into_owned()).ok()
}

/// A seat for `session` in `room`, on the node that has the room (or a new room on a node of
/// `zone`, or anywhere).
pub async fn take_seat(ctx: &Ctx, session: &SessionId, room: &str, zone: Option<&str>) -> Result<Seat, MediaError> {
    if let Some(node) = room_node(ctx, room).await {
        match ctx.media.seat(session, room, Some(&node), None).await {
            Ok(seat) => return Ok(seat),
            // The node that had it is gone: the room opens again elsewhere.
            Err(e) => {
                tracing::warn!(%room, %node, error = %e, "room's media node does not answer: reopening the room");
                let _ = ctx.registry.delete(Bucket::Sessions, &room_key(room), None).await;
            }
        }
    }
    let seat = ctx.media.seat(session, room, None, zone).await?;
    let value = Bytes::from(seat.node.to_string());
    match ctx.registry.create(Bucket::Sessions, &room_key(room), value).await {
        Ok(_) => Ok(seat),
        // Someone opened it meanwhile on another node: sit there instead.
        Err(RegistryError::AlreadyExists(_)) => match room_node(ctx, room).await {
            Some(node) if node != seat.node => {
                let _ = ctx.media.leave_seat(&seat, session).await;
                ctx.media.seat(session, room, Some(&node), None).await
            }
            _ => Ok(seat),
        },
        Err(e) => {
            tracing::warn!(%room, error = %e, "room not recorded: later callers may open another");
            Ok(seat)
        }
    }
}

/// `session` leaves its seat; the last one out forgets the room.
pub async fn leave_seat(ctx: &Ctx, seat: &Seat, session: &SessionId, room: &str) {
    match ctx.media.leave_seat(seat, session).await {
        Ok(true) => {
            let _ = ctx.registry.delete(Bucket::Sessions, &room_key(room), None).await;
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(%session, %room, error = %e, "seat not released"),
    }
}

/// What the route asks of a seat that has its stream: music while alone, a greeting to the
/// caller only, recording (stereo: the caller on the left, the room on the right; a room
/// has one recording, the first seat's to ask). Whether this seat records its room.
pub async fn apply_route(ctx: &Ctx, seat: &Seat, session: &SessionId, route: &RoutedCall) -> bool {
    let mut results = Vec::new();
    if !route.music_on_hold.is_empty() {
        results.push(("music on hold", ctx.media.seat_hold_music(seat, session, &route.music_on_hold).await));
    }
    if !route.greeting.is_empty() {
        let play = RoomPlay { id: GREETING, file: route.greeting.clone(), looped: false, own_seat_only: true, then: Vec::new() };
        results.push(("greeting", ctx.media.seat_play(seat, session, play).await));
    }
    for (what, result) in results {
        if let Err(e) = result {
            tracing::warn!(%session, error = %e, "{what} not started");
        }
    }
    if !route.record {
        return false;
    }
    ctx.media.record(&seat.node, session, true, "stereo", 1).await.unwrap_or_else(|e| {
        tracing::warn!(%session, error = %e, "recording not started");
        false
    })
}

/// A call's place in a room, and the keys its caller pressed there.
pub struct Seated {
    pub seat: Seat,
    pub room: String,
    /// The music the route plays in the room while the caller is alone (empty: none).
    pub music: String,
    keys: String,
    pub(super) muted: bool,
    /// Moved to another media node, its stream not connected there yet.
    pub(super) moved: bool,
}

impl Seated {
    pub fn new(seat: Seat, room: &str) -> Seated {
        Seated { seat, room: room.to_owned(), music: String::new(), keys: String::new(), muted: false, moved: false }
    }

    /// A key the caller pressed: `*6` mutes and unmutes them, as conference bridges do.
    pub async fn key(&mut self, ctx: &Ctx, session: &SessionId, digit: char) {
        self.keys.push(digit);
        if self.keys.len() > 2 {
            self.keys.remove(0);
        }
        if self.keys == "*6" {
            self.keys.clear();
            match ctx.media.seat_control(&self.seat, session, !self.muted, false).await {
                Ok(()) => self.muted = !self.muted,
                Err(e) => tracing::warn!(%session, error = %e, "mute not changed"),
            }
            tracing::info!(%session, room = %self.room, muted = self.muted, "*6");
        }
    }
}

/// The prompt id of a route's greeting.
pub const GREETING: u32 = 1;

/// Our end of a call whose media is `seat`.
pub fn local_end(seat: &Seat) -> LocalEnd {
    LocalEnd {
        media: LocalMedia::new(seat.rtp.ip(), seat.rtp.port()),
        negotiation: NegotiationOptions::default(),
        identity: String::new(),
        credentials: None,
        reinvite_retries: 0,
        user_agent: "callmesh".into(),
    }
}

/// The engine answering `invite` with the seat as its media.
pub fn engine(config: EngineConfig, seat: &Seat, invite: Message, tx: ServerTx, route: Route) -> Engine {
    Engine::answering(config, local_end(seat), invite, tx, route, Instant::now())
}
