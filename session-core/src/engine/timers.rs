//! Session timers (RFC 4028), per leg, so that a far end that has silently gone away is
//! found out. Each leg negotiates its own interval and who refreshes it: toward the caller,
//! the caller's `Session-Expires` (or ours, 1800 s) with the caller as refresher when it
//! supports timers and us otherwise; toward a callee, our offer of 1800 s and whatever its
//! 2xx says. When we refresh, an UPDATE (or a re-INVITE with the same description, when the
//! far end does not allow UPDATE) goes out at half the interval; when the far end refreshes
//! and nothing comes by the interval less min(32 s, a third), the leg is hung up (BYE) and
//! its partner with it. Every re-INVITE and UPDATE of the leg, and every 2xx we send to one,
//! carries the interval, so the far end never believes the timer off.

use std::time::Duration;

use sip::message::{HeaderName, Message, Method};

use super::io::LegId;
use super::leg::{LegRole, Pending};
use super::{Engine, Timer};
use crate::leg::{LegInput, LegState};

/// The interval we ask for and give when none is asked, in seconds.
pub(super) const DEFAULT_SE: u32 = 1800;
/// The shortest interval we accept (RFC 4028's minimum).
pub(super) const MIN_SE: u32 = 90;

/// `Session-Expires: <delta>[;refresher=uac|uas]`: the interval and the refresher named.
fn session_expires(message: &Message) -> Option<(u32, Option<String>)> {
    let value = message.header(HeaderName::SessionExpires)?;
    let mut parts = value.split(';').map(str::trim);
    let delta = parts.next()?.parse::<u32>().ok()?;
    let refresher = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("refresher"))
        .map(|(_, v)| v.trim().to_ascii_lowercase());
    Some((delta, refresher))
}

fn supports_timer(message: &Message) -> bool {
    message.tokens(HeaderName::Supported).chain(message.tokens(HeaderName::Require)).any(|t| t.eq_ignore_ascii_case("timer"))
}

impl Engine {
    /// The caller asks for an interval below our minimum: refused with 422 and `Min-SE`.
    pub(super) fn interval_too_small(&self, leg: LegId) -> bool {
        self.leg(leg).invite.as_ref().and_then(session_expires).is_some_and(|(delta, _)| delta < MIN_SE)
    }

    /// Answering the leg's INVITE: its interval, and who refreshes.
    pub(super) fn negotiate_as_uas(&mut self, leg: LegId) {
        let Some(invite) = &self.leg(leg).invite else { return };
        let asked = session_expires(invite);
        let supported = supports_timer(invite);
        let interval = asked.as_ref().map_or(DEFAULT_SE, |(d, _)| (*d).max(MIN_SE));
        let they_refresh = match asked.and_then(|(_, r)| r) {
            Some(r) => r == "uac",
            None => supported,
        };
        let l = self.leg_mut(leg);
        l.session_expires = interval;
        l.we_refresh = !they_refresh;
        self.session_refreshed(leg);
    }

    /// Our INVITE was answered: the interval its 2xx gives, if any.
    pub(super) fn negotiate_as_uac(&mut self, leg: LegId, response: &Message) {
        let Some((delta, refresher)) = session_expires(response) else { return };
        let l = self.leg_mut(leg);
        l.session_expires = delta.max(MIN_SE);
        l.we_refresh = refresher.as_deref() != Some("uas");
        self.session_refreshed(leg);
    }

    /// The headers saying the leg's interval: on our own requests (`ours`: we are the
    /// transaction's client) and on our 2xx to the far end's.
    pub(super) fn timer_headers(&self, leg: LegId, ours: bool) -> Vec<(HeaderName, String)> {
        let l = self.leg(leg);
        if l.session_expires == 0 {
            return Vec::new();
        }
        let refresher = if l.we_refresh == ours { "uac" } else { "uas" };
        let mut headers = vec![(HeaderName::SessionExpires, format!("{};refresher={refresher}", l.session_expires))];
        if !ours && !l.we_refresh {
            // The far end must refresh: it has to know (RFC 4028 §9).
            headers.push((HeaderName::Require, "timer".into()));
        }
        headers
    }

    /// The session was refreshed (or just started): the next refresh or expiry from now.
    pub(super) fn session_refreshed(&mut self, leg: LegId) {
        let l = self.leg(leg);
        let interval = l.session_expires;
        if interval == 0 {
            return;
        }
        let (timer, after) = if l.we_refresh {
            (Timer::Refresh(leg), interval / 2)
        } else {
            (Timer::Expire(leg), interval - (interval / 3).min(32))
        };
        self.timers.remove(&Timer::Refresh(leg));
        self.timers.remove(&Timer::Expire(leg));
        self.timers.insert(timer, self.now + Duration::from_secs(u64::from(after)));
    }

    /// Time to refresh: an UPDATE when the far end allows it, else a re-INVITE.
    pub(super) fn refresh_session(&mut self, leg: LegId) {
        if !self.leg(leg).is_up() {
            return;
        }
        let allows_update = self.far_allows(leg, "UPDATE");
        if allows_update {
            self.send_in_dialog(leg, Method::Update, Pending::Refresh, None, &[]);
        } else if self.leg(leg).state() == LegState::Confirmed {
            self.local_refresh_offer();
            self.work.push_back((leg, LegInput::Update));
        } else {
            // A re-INVITE is under way: it refreshes the session itself.
            self.session_refreshed(leg);
        }
    }

    /// Our refresh was answered: a 481 or 408 means the far end is gone.
    pub(super) fn refresh_answered(&mut self, leg: LegId, status: u16) {
        if matches!(status, 408 | 481) {
            self.session_expired(leg);
        } else {
            self.session_refreshed(leg);
        }
    }

    /// Nothing refreshed the session in time: the far end is gone; so is the leg.
    pub(super) fn session_expired(&mut self, leg: LegId) {
        if self.leg(leg).is_over() {
            return;
        }
        tracing::info!(session = %self.config.session, leg = leg.0, "session timer expired: hanging up");
        self.leg_mut(leg).failure = Some((408, "Session Expired".into()));
        self.work.push_back((leg, LegInput::Hangup));
        // Its partner is not left waiting for the BYE to a vanished far end to time out.
        if let Some(partner) = self.partner(leg).filter(|p| !self.leg(*p).is_over()) {
            self.work.push_back((partner, LegInput::Hangup));
        }
    }

    /// Whether the far end of `leg` listed `method` in its Allow (its INVITE, or its 2xx).
    fn far_allows(&self, leg: LegId, method: &str) -> bool {
        let l = self.leg(leg);
        let theirs = match l.role {
            LegRole::Uas => l.invite.as_ref(),
            LegRole::Uac => l.answer.as_ref(),
        };
        theirs.is_some_and(|m| m.tokens(HeaderName::Allow).any(|t| t.eq_ignore_ascii_case(method)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_expires_with_and_without_refresher() {
        let m = |v: &str| {
            sip::message::Builder::request(&Method::Invite, "sip:a@b").header(HeaderName::SessionExpires, v).build().unwrap()
        };
        assert_eq!(session_expires(&m("1800")), Some((1800, None)));
        assert_eq!(session_expires(&m("90 ; Refresher=UAS")), Some((90, Some("uas".into()))));
        assert_eq!(session_expires(&m("soon")), None);
    }
}
