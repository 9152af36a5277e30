//! Requests the transaction layer derives from an INVITE it sent: the ACK for a non-2xx
//! final response (RFC 3261 §17.1.1.3) and CANCEL (§9.1). Both reuse the INVITE's top Via,
//! so they match the same transaction at the far end.

use crate::message::{Builder, HeaderName, Message, Method, ParseError};

fn derived(invite: &Message, method: Method, to: &str) -> Result<Message, ParseError> {
    let uri = invite.request_uri_str().ok_or(ParseError::BadUri)?;
    let via = invite.header_values(HeaderName::Via).next().ok_or(ParseError::BadHeaderValue(HeaderName::Via))?;
    let (seq, _) = invite.cseq().ok_or(ParseError::BadHeaderValue(HeaderName::CSeq))?;
    let mut b = Builder::request(&method, uri).header(HeaderName::Via, via);
    for route in invite.header_lines(HeaderName::Route) {
        b = b.header(HeaderName::Route, route);
    }
    b.header(HeaderName::MaxForwards, 70)
        .header(HeaderName::From, invite.header(HeaderName::From).unwrap_or_default())
        .header(HeaderName::To, to)
        .header(HeaderName::CallId, invite.call_id().unwrap_or_default())
        .header(HeaderName::CSeq, format_args!("{seq} {method}"))
        .build()
}

/// The ACK for a 300–699 response to `invite`; `To` comes from the response (with its tag).
pub fn ack_for_failure(invite: &Message, response: &Message) -> Result<Message, ParseError> {
    let to = response.header(HeaderName::To).ok_or(ParseError::BadHeaderValue(HeaderName::To))?;
    derived(invite, Method::Ack, to)
}

/// The CANCEL for `invite`.
pub fn cancel_for(invite: &Message) -> Result<Message, ParseError> {
    let to = invite.header(HeaderName::To).ok_or(ParseError::BadHeaderValue(HeaderName::To))?;
    derived(invite, Method::Cancel, to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const INVITE: &str = "INVITE sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK74\r\n\
Route: <sip:p1.example;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:alice@a.example>;tag=9\r\nTo: <sip:bob@b.example>\r\n\
Call-ID: 3848276298220188511@a.example\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn ack_and_cancel_reuse_the_invite_identity() {
        let invite = Message::parse_datagram(Bytes::from_static(INVITE.as_bytes())).unwrap();
        let busy = Builder::response_to(&invite, 486, "", Some("xyz")).build().unwrap();
        let ack = ack_for_failure(&invite, &busy).unwrap();
        assert_eq!(ack.method(), Some(&Method::Ack));
        assert_eq!(ack.branch(), invite.branch());
        assert_eq!(ack.to_tag(), Some("xyz"));
        assert_eq!(ack.cseq(), Some((2, &Method::Ack)));
        assert_eq!(ack.header(HeaderName::Route), Some("<sip:p1.example;lr>"));
        let cancel = cancel_for(&invite).unwrap();
        assert_eq!(cancel.method(), Some(&Method::Cancel));
        assert_eq!(cancel.branch(), invite.branch());
        assert_eq!(cancel.to_tag(), None);
        assert_eq!(cancel.request_uri_str(), invite.request_uri_str());
        assert_eq!(cancel.cseq(), Some((2, &Method::Cancel)));
    }
}
