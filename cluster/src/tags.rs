//! Session ids in SIP tags. The call engine's tags carry the session id and the leg
//! (`<session>-<leg>`: `-0` toward the caller, `-1`, `-2`… toward the legs it places; see
//! `session_core::engine::leg_tag`), so any edge can send an in-dialog request or a response
//! to the session it belongs to, reading only the message.

use crate::subjects::SessionId;

/// The session and leg a tag of ours names; `None` for tags we did not make.
pub fn session_of(tag: &str) -> Option<(SessionId, u32)> {
    let (session, leg) = tag.rsplit_once('-')?;
    let leg = leg.parse::<u32>().ok().filter(|_| !leg.starts_with('+'))?;
    SessionId::new(session).ok().map(|s| (s, leg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_tags_and_foreign_ones() {
        let s = SessionId::random();
        assert_eq!(session_of(&format!("{s}-0")), Some((s.clone(), 0)));
        assert_eq!(session_of(&format!("{s}-12")), Some((s, 12)));
        for foreign in ["1928301774", "abc-c", "-1", "a.b-1", "", "abc-+1", "abc-"] {
            assert_eq!(session_of(foreign), None, "{foreign}");
        }
    }
}
