//! Transaction matching keys: servers per RFC 3261 §17.2.3 (branch with the `z9hG4bK`
//! cookie, sent-by and method, ACK matching its INVITE) with the RFC 2543 fallback for
//! branches without the cookie; clients per §17.1.3 (branch and CSeq method).

use crate::message::{BRANCH_COOKIE, Message, Method};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    Rfc3261 {
        branch: Box<str>,
        sent_by: Box<str>,
        method: Method,
    },
    /// Request-URI, From tag, Call-ID, CSeq number, top Via sent-by and method.
    Rfc2543 {
        request_uri: Box<str>,
        from_tag: Box<str>,
        call_id: Box<str>,
        cseq: u32,
        sent_by: Box<str>,
        method: Method,
    },
}

impl ServerKey {
    /// The key of the server transaction `request` belongs to (an ACK maps to its INVITE).
    pub fn for_request(request: &Message) -> Option<ServerKey> {
        let method = match request.method()? {
            Method::Ack => Method::Invite,
            m => m.clone(),
        };
        Self::with_method(request, method)
    }

    /// The key of the INVITE transaction a CANCEL targets (§9.2).
    pub fn cancelled_invite(cancel: &Message) -> Option<ServerKey> {
        Self::with_method(cancel, Method::Invite)
    }

    fn with_method(request: &Message, method: Method) -> Option<ServerKey> {
        let sent_by = request.via_sent_by()?.to_ascii_lowercase().into_boxed_str();
        match request.branch() {
            Some(branch) if branch.starts_with(BRANCH_COOKIE) => {
                Some(ServerKey::Rfc3261 { branch: branch.into(), sent_by, method })
            }
            _ => Some(ServerKey::Rfc2543 {
                request_uri: request.request_uri_str()?.into(),
                from_tag: request.from_tag().unwrap_or_default().into(),
                call_id: request.call_id()?.into(),
                cseq: request.cseq()?.0,
                sent_by,
                method,
            }),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    branch: Box<str>,
    method: Method,
}

impl ClientKey {
    /// The key of a request we send (its branch must be unique, with the cookie).
    pub fn for_request(request: &Message) -> Option<ClientKey> {
        Some(ClientKey { branch: request.branch()?.into(), method: request.method()?.clone() })
    }

    /// The key a response matches: its top Via branch and its CSeq method.
    pub fn for_response(response: &Message) -> Option<ClientKey> {
        Some(ClientKey { branch: response.branch()?.into(), method: response.cseq()?.1.clone() })
    }
}

/// A new RFC 3261 branch: the cookie and 64 random bits.
pub fn new_branch() -> String {
    format!("{BRANCH_COOKIE}{:016x}", rand::random::<u64>())
}

/// A new tag for From/To (§19.3): 64 random bits.
pub fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(s: &str) -> Message {
        Message::parse_datagram(Bytes::from(s.replace('\n', "\r\n"))).unwrap()
    }

    #[test]
    fn ack_matches_its_invite_and_cancel_its_own() {
        let head = "Via: SIP/2.0/UDP Host.example:5060;branch=z9hG4bKabc\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c\n";
        let invite = msg(&format!("INVITE sip:b@h SIP/2.0\n{head}CSeq: 1 INVITE\n\n"));
        let ack = msg(&format!("ACK sip:b@h SIP/2.0\n{head}CSeq: 1 ACK\n\n").replace("Host.example", "host.EXAMPLE"));
        let cancel = msg(&format!("CANCEL sip:b@h SIP/2.0\n{head}CSeq: 1 CANCEL\n\n"));
        assert_eq!(ServerKey::for_request(&invite), ServerKey::for_request(&ack));
        assert_ne!(ServerKey::for_request(&invite), ServerKey::for_request(&cancel));
        assert_eq!(ServerKey::for_request(&invite), ServerKey::cancelled_invite(&cancel));
    }

    #[test]
    fn rfc2543_fallback_without_cookie() {
        let invite = msg(
            "INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.15\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c\nCSeq: 7 INVITE\n\n",
        );
        let ack = msg(
            "ACK sip:b@h SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.15\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>;tag=x\nCall-ID: c\nCSeq: 7 ACK\n\n",
        );
        let other = msg(
            "INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.15\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c\nCSeq: 8 INVITE\n\n",
        );
        assert!(matches!(ServerKey::for_request(&invite), Some(ServerKey::Rfc2543 { .. })));
        assert_eq!(ServerKey::for_request(&invite), ServerKey::for_request(&ack));
        assert_ne!(ServerKey::for_request(&invite), ServerKey::for_request(&other));
    }

    #[test]
    fn branches_and_tags_are_unique() {
        assert!(new_branch().starts_with(BRANCH_COOKIE));
        assert_ne!(new_branch(), new_branch());
        assert_ne!(new_tag(), new_tag());
    }
}
