//! Building messages: requests, responses, and responses to a received request (RFC 3261
//! §8.2.6: Via, From, To, Call-ID and CSeq copied). `build` adds `Content-Length` and parses
//! the result, so every message we send is one our own parser accepts.

use std::fmt::{self, Write};

use bytes::Bytes;

use super::status::reason_phrase;
use super::{HeaderName, Message, Method, ParseError, lex};

/// Writes a message head line by line.
#[derive(Debug, Clone)]
pub struct Builder {
    head: String,
    body: Bytes,
    invalid: Option<&'static str>,
}

impl Builder {
    /// `METHOD uri SIP/2.0`.
    pub fn request(method: &Method, uri: impl fmt::Display) -> Builder {
        let mut head = String::with_capacity(512);
        let _ = write!(head, "{method} {uri} SIP/2.0\r\n");
        Builder { head, body: Bytes::new(), invalid: None }
    }

    /// `SIP/2.0 code reason`; an empty reason uses the standard phrase.
    pub fn response(code: u16, reason: &str) -> Builder {
        let mut head = String::with_capacity(512);
        let reason = if reason.is_empty() { reason_phrase(code) } else { reason };
        let _ = write!(head, "SIP/2.0 {code} {reason}\r\n");
        let invalid = reason.contains(['\r', '\n']).then_some("line break in reason phrase");
        Builder { head, body: Bytes::new(), invalid }
    }

    /// A response to `request` with its Via, From, To, Call-ID and CSeq (and Record-Route
    /// for a dialog-creating response). `to_tag` is added to `To` unless it has one.
    pub fn response_to(request: &Message, code: u16, reason: &str, to_tag: Option<&str>) -> Builder {
        let mut b = Builder::response(code, reason);
        for via in request.header_lines(HeaderName::Via) {
            b = b.header(HeaderName::Via, via);
        }
        if let Some(from) = request.header(HeaderName::From) {
            b = b.header(HeaderName::From, from);
        }
        if let Some(to) = request.header(HeaderName::To) {
            match to_tag {
                Some(tag) if request.to_tag().is_none() && code != 100 => {
                    b = b.header(HeaderName::To, format_args!("{to};tag={tag}"));
                }
                _ => b = b.header(HeaderName::To, to),
            }
        }
        if let Some(call_id) = request.call_id() {
            b = b.header(HeaderName::CallId, call_id);
        }
        if let Some(cseq) = request.header(HeaderName::CSeq) {
            b = b.header(HeaderName::CSeq, cseq);
        }
        let creates_dialog = matches!(request.method(), Some(Method::Invite | Method::Subscribe | Method::Refer));
        if creates_dialog && (101..300).contains(&code) {
            for rr in request.header_lines(HeaderName::RecordRoute) {
                b = b.header(HeaderName::RecordRoute, rr);
            }
        }
        b
    }

    /// Appends a header line. Values must not contain line breaks.
    pub fn header(mut self, name: HeaderName, value: impl fmt::Display) -> Builder {
        self.push_line(name.as_str(), value);
        self
    }

    /// Appends a header that has no [`HeaderName`] (e.g. `X-Session`).
    pub fn header_named(mut self, name: &str, value: impl fmt::Display) -> Builder {
        if !lex::is_token(name) {
            self.invalid.get_or_insert("invalid header name");
        }
        self.push_line(name, value);
        self
    }

    fn push_line(&mut self, name: &str, value: impl fmt::Display) {
        let start = self.head.len();
        let _ = write!(self.head, "{name}: {value}");
        if self.head[start..].contains(['\r', '\n']) {
            self.invalid.get_or_insert("line break in header value");
        }
        self.head.push_str("\r\n");
    }

    /// Sets the body and its `Content-Type`.
    pub fn body(self, content_type: &str, body: impl Into<Bytes>) -> Builder {
        let mut b = self.header(HeaderName::ContentType, content_type);
        b.body = body.into();
        b
    }

    /// Finishes the message: adds `Content-Length` and parses it.
    pub fn build(mut self) -> Result<Message, ParseError> {
        if let Some(why) = self.invalid {
            return Err(ParseError::BadHeaderLine(why));
        }
        let _ = write!(self.head, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut bytes = Vec::with_capacity(self.head.len() + self.body.len());
        bytes.extend_from_slice(self.head.as_bytes());
        bytes.extend_from_slice(&self.body);
        Message::parse_stream_message(Bytes::from(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n\
Via: SIP/2.0/UDP proxy.atlanta.com;branch=z9hG4bK1\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n\
CSeq: 314159 INVITE\r\n\
Record-Route: <sip:p1.example.com;lr>\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn response_copies_the_request_identity() {
        let req = Message::parse_datagram(Bytes::from_static(INVITE.as_bytes())).unwrap();
        let resp = Builder::response_to(&req, 180, "", Some("abc")).build().unwrap();
        assert_eq!(resp.status(), Some(180));
        assert_eq!(resp.reason(), "Ringing");
        assert_eq!(resp.header_lines(HeaderName::Via).count(), 2);
        assert_eq!(resp.branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(resp.to_tag(), Some("abc"));
        assert_eq!(resp.from_tag(), Some("1928301774"));
        assert_eq!(resp.cseq(), Some((314159, &Method::Invite)));
        assert_eq!(resp.header(HeaderName::RecordRoute), Some("<sip:p1.example.com;lr>"));
        let trying = Builder::response_to(&req, 100, "", Some("abc")).build().unwrap();
        assert_eq!(trying.to_tag(), None, "100 Trying carries no To tag");
    }

    #[test]
    fn injection_is_refused() {
        let b = Builder::request(&Method::Options, "sip:a@b").header(HeaderName::Subject, "x\r\nEvil: 1");
        assert!(b.build().is_err());
        assert!(Builder::request(&Method::Options, "sip:a@b").header_named("Bad Name", "x").build().is_err());
    }
}
