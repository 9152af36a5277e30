//! Session ids in SIP tags. The B2BUA's tags carry the session id (`<session>-a` toward the
//! caller, `<session>-b` toward the callee), so any edge can send an in-dialog request or a
//! response to the session it belongs to, reading only the message.

use crate::subjects::SessionId;

/// Which side of a B2BUA call a tag was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSide {
    Caller,
    Callee,
}

/// Our tag for a session's side.
pub fn tag(session: &SessionId, side: TagSide) -> String {
    let suffix = match side {
        TagSide::Caller => 'a',
        TagSide::Callee => 'b',
    };
    format!("{session}-{suffix}")
}

/// The session and side a tag of ours names; `None` for tags we did not make.
pub fn session_of(tag: &str) -> Option<(SessionId, TagSide)> {
    let (session, side) = tag.rsplit_once('-')?;
    let side = match side {
        "a" => TagSide::Caller,
        "b" => TagSide::Callee,
        _ => return None,
    };
    SessionId::new(session).ok().map(|s| (s, side))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_tags() {
        let s = SessionId::random();
        assert_eq!(session_of(&tag(&s, TagSide::Callee)), Some((s.clone(), TagSide::Callee)));
        assert_eq!(session_of(&tag(&s, TagSide::Caller)), Some((s, TagSide::Caller)));
        for foreign in ["1928301774", "abc-c", "-a", "a.b-a", ""] {
            assert_eq!(session_of(foreign), None, "{foreign}");
        }
    }
}
