//! Anchoring: a B2BUA relays one side's session description to the other with the media
//! pointed at its own relay. The result is our description — our `o=` line (our username,
//! our session id, a version that increases whenever what we send changes, RFC 3264 §8) and
//! the relay's address and port for the audio stream — carrying the far side's codecs,
//! direction and attributes unchanged. Streams other than the first RTP audio one keep their
//! port (a rejected one stays rejected).

use std::net::SocketAddr;

use super::write::AfterOrigin;
use super::{Direction, SessionDescription};

/// Our `o=` line toward one leg: the session id stays, the version moves on every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorOrigin {
    pub username: String,
    pub session_id: u64,
    pub version: u64,
    /// What we last sent (without the origin), to tell a change from a repeat.
    last: Option<String>,
}

impl AnchorOrigin {
    pub fn new(username: &str, session_id: u64) -> Self {
        AnchorOrigin { username: username.to_owned(), session_id, version: 0, last: None }
    }

    /// Continues an origin from stored values (after a takeover); the next description that
    /// differs from `last` gets `version + 1`.
    pub fn resume(username: &str, session_id: u64, version: u64, last: Option<String>) -> Self {
        AnchorOrigin { username: username.to_owned(), session_id, version, last }
    }

    /// The description last sent with this origin (without its `o=` line), if any.
    pub fn last_sent(&self) -> Option<&str> {
        self.last.as_deref()
    }
}

/// `far` as we send it (SDP text): audio at `relay`, every connection address the relay's,
/// our origin.
pub fn anchor(far: &SessionDescription, relay: SocketAddr, origin: &mut AnchorOrigin) -> String {
    let mut ours = far.clone();
    ours.connection = Some(relay.ip());
    let audio = ours.audio().map(|(i, _)| i);
    for (i, media) in ours.media.iter_mut().enumerate() {
        if media.connection.is_some() {
            media.connection = Some(relay.ip());
        }
        if Some(i) == audio && media.port != 0 {
            media.port = relay.port();
            // The relay's RTCP is on the next port; a far end's own `a=rtcp` would mislead.
            media.rtcp_port = None;
        }
    }
    let rest = AfterOrigin(&ours).to_string();
    if origin.last.as_deref() != Some(rest.as_str()) {
        origin.version += 1;
        origin.last = Some(rest);
    }
    let family = if relay.is_ipv4() { "IP4" } else { "IP6" };
    let o = format!("v=0\r\no={} {} {} IN {family} {}\r\n", origin.username, origin.session_id, origin.version, relay.ip());
    o + origin.last.as_deref().unwrap_or_default()
}

/// A description a far end *answered* with, made an offer to someone new (a transfer
/// target): its `recvonly` only answered a hold by the party it talked to, so the new party
/// is offered `sendrecv`. A hold of its own (`sendonly`, `inactive`) stays.
pub fn as_new_offer(answered: &SessionDescription) -> SessionDescription {
    let mut offer = answered.clone();
    let unhold = |d: &mut Option<Direction>| {
        if *d == Some(Direction::RecvOnly) {
            *d = Some(Direction::SendRecv);
        }
    };
    unhold(&mut offer.direction);
    for media in &mut offer.media {
        unhold(&mut media.direction);
    }
    offer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_to_a_hold_is_offered_anew_as_sendrecv() {
        let held = SessionDescription::parse(OFFER.replace("a=sendrecv", "a=recvonly").as_bytes()).unwrap();
        assert_eq!(as_new_offer(&held).audio().unwrap().1.direction, Some(Direction::SendRecv));
        let holding = SessionDescription::parse(OFFER.replace("a=sendrecv", "a=sendonly").as_bytes()).unwrap();
        assert_eq!(as_new_offer(&holding).audio().unwrap().1.direction, Some(Direction::SendOnly), "its own hold stays");
    }

    const OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp:6009\r\na=sendrecv\r\n\
m=video 6002 RTP/AVP 31\r\n";

    fn parse(s: &str) -> SessionDescription {
        SessionDescription::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn audio_goes_to_the_relay_and_the_rest_is_kept() {
        let far = parse(OFFER);
        let mut origin = AnchorOrigin::new("callmesh", 42);
        let text = anchor(&far, "192.0.2.1:30000".parse().unwrap(), &mut origin);
        let ours = parse(&text);
        let (_, audio) = ours.audio().unwrap();
        assert_eq!(ours.rtp_addr(audio), Some("192.0.2.1:30000".parse().unwrap()));
        assert_eq!(audio.codecs, far.audio().unwrap().1.codecs);
        assert_eq!(audio.rtcp_port, None);
        assert_eq!(ours.media[1].port, 6002, "only the audio stream is anchored");
        assert!(text.contains("o=callmesh 42 1 IN IP4 192.0.2.1\r\n"), "{text}");
        // What we print is what the description prints.
        assert_eq!(ours.to_string(), text);
    }

    #[test]
    fn the_version_moves_only_when_the_description_changes() {
        let far = parse(OFFER);
        let relay = "192.0.2.1:30000".parse().unwrap();
        let mut origin = AnchorOrigin::new("callmesh", 7);
        let version = |text: String| parse(&text).origin.session_version;
        assert_eq!(version(anchor(&far, relay, &mut origin)), 1);
        // The far end sends the same description with a new version of its own: no change.
        let again = parse(&OFFER.replace("2353687637", "2353687638"));
        assert_eq!(version(anchor(&again, relay, &mut origin)), 1);
        let held = parse(&OFFER.replace("a=sendrecv", "a=sendonly"));
        assert_eq!(version(anchor(&held, relay, &mut origin)), 2);
        let mut resumed = AnchorOrigin::resume("callmesh", 7, 2, origin.last_sent().map(str::to_owned));
        assert_eq!(version(anchor(&held, relay, &mut resumed)), 2, "a takeover continues the version");
    }

    #[test]
    fn a_rejected_audio_stream_stays_rejected() {
        let far = parse(&OFFER.replace("m=audio 6000", "m=audio 0"));
        let ours = parse(&anchor(&far, "192.0.2.1:30000".parse().unwrap(), &mut AnchorOrigin::new("callmesh", 1)));
        assert_eq!(ours.media[0].port, 0);
    }
}
