//! The rooms of a media node and who sits in them: a room starts with its first seat and
//! ends with its last. Commands for a seat are addressed by its session.

use crate::ports::PortPair;
use crate::room::{self, ReleasePort, RoomCommand, RoomHandle, SeatEvents};
use std::collections::HashMap;

/// Room names are carried in subjects and registry keys: letters, digits, `-`, `_`, `.`.
pub fn valid_room(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[derive(Default)]
pub struct Rooms {
    rooms: HashMap<String, RoomHandle>,
    /// Each seated session's room.
    seats: HashMap<String, String>,
    /// The seat each recorded room's recording is of (its first asker).
    recorders: HashMap<String, String>,
}

impl Rooms {
    /// Seats `session` in `room` on `pair` (starting the room with `start` if it is new).
    pub fn join(&mut self, room: &str, session: &str, pair: PortPair, start: impl FnOnce() -> (SeatEvents, ReleasePort)) {
        if let Some(previous) = self.seats.get(session).filter(|r| r.as_str() != room).cloned() {
            self.leave(session);
            tracing::debug!(%session, %previous, %room, "seat moved to another room");
        }
        let handle = self.rooms.entry(room.to_owned()).or_insert_with(|| {
            let (events, release) = start();
            room::start(room.to_owned(), events, release)
        });
        handle.send(RoomCommand::Join { session: session.to_owned(), pair });
        self.seats.insert(session.to_owned(), room.to_owned());
    }

    fn handle_of(&self, session: &str) -> Option<&RoomHandle> {
        self.rooms.get(self.seats.get(session)?)
    }

    /// Whether `session` has a seat here.
    pub fn is_seated(&self, session: &str) -> bool {
        self.seats.contains_key(session)
    }

    /// Sends `command` to `session`'s room; false if it has no seat.
    pub fn send(&self, session: &str, command: RoomCommand) -> bool {
        self.handle_of(session).is_some_and(|h| h.send(command))
    }

    /// The room `session` sits in.
    pub fn room_of(&self, session: &str) -> Option<&str> {
        self.seats.get(session).map(String::as_str)
    }

    /// `session` leaves its room: `Some(true)` when the room is empty (and ended) now, `None`
    /// when it had no seat.
    pub fn leave(&mut self, session: &str) -> Option<bool> {
        let room = self.seats.remove(session)?;
        if let Some(handle) = self.rooms.get(&room) {
            handle.send(RoomCommand::Leave { session: session.to_owned() });
        }
        let empty = !self.seats.values().any(|r| *r == room);
        if empty {
            self.rooms.remove(&room);
            self.recorders.remove(&room);
        }
        Some(empty)
    }

    /// `session`'s room, and whether `session` records it: the first seat to ask does, the
    /// others' asks change nothing. `None` when it has no seat.
    pub fn recorder(&mut self, session: &str) -> Option<(String, bool)> {
        let room = self.seats.get(session)?.clone();
        let recorder = self.recorders.entry(room.clone()).or_insert_with(|| session.to_owned());
        let owner = recorder == session;
        Some((room, owner))
    }

    /// `session`'s room is recorded no more.
    pub fn stop_recording(&mut self, session: &str) {
        if let Some(room) = self.seats.get(session) {
            self.recorders.remove(room);
        }
    }

    /// Rooms open, and seats taken.
    pub fn counts(&self) -> (usize, usize) {
        (self.rooms.len(), self.seats.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_that_fit_subjects_and_keys() {
        for good in ["sales", "1000", "team-a_b.c"] {
            assert!(valid_room(good), "{good}");
        }
        for bad in ["", "a b", "a*", "a>", "é", &"x".repeat(65)] {
            assert!(!valid_room(bad), "{bad:?}");
        }
    }
}
