//! Safe latching: which source address a leg's media is taken from, and so where the media
//! toward that leg goes. A leg latches to the first source whose IP is one its far end
//! signalled — the address in its SDP, or the address its SIP came from (a phone behind NAT
//! puts a private address in SDP; its RTP comes from the NAT's, like its SIP). Afterwards
//! it moves only to a source from one of those IPs, and only once the latched source has
//! been silent for [`RELATCH_AFTER`] (a NAT rebinding a port, a phone restarting its
//! stream): rtpengine's strict source with a learning window. Packets from anyone else are
//! refused, so spraying RTP at the port range ("RTP bleed") never turns a call's audio
//! toward the sprayer. Sans-IO: the caller passes the time.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

/// How long a latched source must be silent before another source from a signalled IP may
/// take its place.
pub const RELATCH_AFTER: Duration = Duration::from_millis(500);

/// What to do with a packet from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// From the latched source.
    Accept,
    /// From a new source, now latched (the first one, or a replacement).
    Latched,
    /// From a source the leg does not take media from: drop it.
    Refuse,
    /// Nothing is signalled yet (the far end's answer is on its way): the caller may hold
    /// the packet and ask again once it is.
    Unsignalled,
}

/// The latch of one socket (a leg's RTP, or its RTCP).
#[derive(Debug, Clone, Default)]
pub struct Latch {
    /// Where the far end said to send (its SDP), until a source is latched.
    expected: Option<SocketAddr>,
    /// Where its SIP comes from or goes to.
    signal: Option<IpAddr>,
    latched: Option<SocketAddr>,
    last_heard: Option<Instant>,
}

impl Latch {
    /// A far end (new, or changed by a re-INVITE or a transfer): it expects media at
    /// `expected` and signals from `signal`. A new address forgets the latched source; the
    /// same one, or an unspecified one (`c=0.0.0.0`, an old-style hold), keeps it.
    pub fn expect(&mut self, expected: SocketAddr, signal: Option<IpAddr>) {
        if expected.ip().is_unspecified() || self.expected == Some(expected) {
            self.signal = signal.or(self.signal);
            return;
        }
        *self = Latch { expected: Some(expected), signal, latched: None, last_heard: None };
    }

    /// Where media toward this far end goes: the latched source, else where it asked.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.expected)
    }

    /// The latched source, if any.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    fn signalled(&self, ip: IpAddr) -> bool {
        self.expected.is_some_and(|e| e.ip() == ip) || self.signal == Some(ip)
    }

    /// Whether a packet from `source` arriving at `now` is taken.
    pub fn check(&mut self, source: SocketAddr, now: Instant) -> Verdict {
        if self.expected.is_none() && self.signal.is_none() {
            return Verdict::Unsignalled;
        }
        let verdict = match self.latched {
            Some(latched) if latched == source => Verdict::Accept,
            _ if !self.signalled(source.ip()) => return Verdict::Refuse,
            None => Verdict::Latched,
            Some(_) if self.last_heard.is_some_and(|t| now.duration_since(t) >= RELATCH_AFTER) => Verdict::Latched,
            Some(_) => return Verdict::Refuse,
        };
        self.latched = Some(source);
        self.last_heard = Some(now);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn latch(expected: &str, signal: Option<&str>) -> Latch {
        let mut l = Latch::default();
        l.expect(addr(expected), signal.map(|s| s.parse().unwrap()));
        l
    }

    #[test]
    fn latches_to_the_signalled_address_or_its_ip_and_refuses_strangers() {
        let t = Instant::now();
        let mut l = latch("192.0.2.10:4000", None);
        assert_eq!(l.destination(), Some(addr("192.0.2.10:4000")));
        assert_eq!(l.check(addr("198.51.100.66:4000"), t), Verdict::Refuse, "another host");
        assert_eq!(l.check(addr("192.0.2.10:4444"), t), Verdict::Latched, "the signalled IP, another port (NAT)");
        assert_eq!(l.destination(), Some(addr("192.0.2.10:4444")));
        assert_eq!(l.check(addr("192.0.2.10:4444"), t + Duration::from_millis(20)), Verdict::Accept);
    }

    #[test]
    fn a_phone_behind_nat_latches_from_its_sip_address() {
        let t = Instant::now();
        let mut l = latch("10.0.0.5:4000", Some("203.0.113.9"));
        assert_eq!(l.check(addr("203.0.113.9:61000"), t), Verdict::Latched);
        assert_eq!(l.destination(), Some(addr("203.0.113.9:61000")));
        assert_eq!(Latch::default().check(addr("203.0.113.9:61000"), t), Verdict::Unsignalled, "nothing signalled yet");
    }

    #[test]
    fn relatches_only_after_the_latched_source_falls_silent() {
        let t = Instant::now();
        let mut l = latch("192.0.2.10:4000", None);
        assert_eq!(l.check(addr("192.0.2.10:4000"), t), Verdict::Latched);
        let soon = t + RELATCH_AFTER - Duration::from_millis(1);
        assert_eq!(l.check(addr("192.0.2.10:5000"), soon), Verdict::Refuse, "the latched source still talks");
        assert_eq!(l.check(addr("192.0.2.10:4000"), soon), Verdict::Accept);
        let later = soon + RELATCH_AFTER;
        assert_eq!(l.check(addr("198.51.100.66:5000"), later), Verdict::Refuse, "silence does not open the door to strangers");
        assert_eq!(l.check(addr("192.0.2.10:5000"), later), Verdict::Latched, "a rebinding from the same IP");
        assert_eq!(l.destination(), Some(addr("192.0.2.10:5000")));
    }

    #[test]
    fn a_new_far_end_resets_the_latch_and_a_hold_address_keeps_it() {
        let t = Instant::now();
        let mut l = latch("192.0.2.10:4000", None);
        l.check(addr("192.0.2.10:4000"), t);
        l.expect(addr("0.0.0.0:4000"), None);
        assert_eq!(l.latched(), Some(addr("192.0.2.10:4000")), "c=0.0.0.0 keeps the source");
        l.expect(addr("192.0.2.10:4000"), None);
        assert_eq!(l.latched(), Some(addr("192.0.2.10:4000")), "the same address keeps it");
        l.expect(addr("198.51.100.7:6000"), None);
        assert_eq!((l.latched(), l.destination()), (None, Some(addr("198.51.100.7:6000"))), "a transfer's new far end");
        assert_eq!(l.check(addr("192.0.2.10:4000"), t), Verdict::Refuse, "the old far end is a stranger now");
        assert_eq!(l.check(addr("198.51.100.7:6000"), t), Verdict::Latched);
    }
}
