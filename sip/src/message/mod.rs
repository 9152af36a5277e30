//! SIP messages: a zero-copy representation over one `Bytes` buffer.
//!
//! Parsing finds the start line and every header line and eagerly decodes only what the
//! transaction layer needs on every message (top `Via`, `CSeq`, `Call-ID`, the `From`/`To`
//! tags, `Max-Forwards`, `Content-Length`); everything else is kept as spans into the buffer
//! and decoded on demand into the typed headers of this module. Messages are immutable:
//! new ones are made with [`builder`], which prints and re-parses, so everything we send is
//! known to parse.

mod auth_value;
pub mod builder;
mod core;
mod error;
pub mod framing;
mod header_name;
mod host;
pub mod lex;
mod method;
mod name_addr;
mod params;
mod parse;
mod simple_headers;
pub mod status;
mod uri;
pub mod validate;
mod via;

use std::fmt;

use bytes::Bytes;

pub use self::auth_value::{AuthParam, AuthValue};
pub use self::builder::Builder;
pub use self::core::{HeaderProblem, ViaCore};
pub use self::error::ParseError;
pub use self::header_name::HeaderName;
pub use self::host::{Host, HostPort};
pub use self::method::Method;
pub use self::name_addr::NameAddr;
pub use self::params::{Param, Params};
pub use self::simple_headers::{CSeq, RAck, ValueParams, parse_number};
pub use self::uri::{SipUri, TelUri, Uri};
pub use self::via::{BRANCH_COOKIE, Transport, Via};

use self::core::Core;

/// A byte range of the message buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start: start as u32, end: end as u32 }
    }
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(Clone)]
enum StartLine {
    Request { method: Method, uri: Span },
    Response { code: u16, reason: Span },
}

/// A header name as found on the wire.
#[derive(Clone, Copy)]
enum EntryName {
    Known(HeaderName),
    Other(Span),
}

#[derive(Clone, Copy)]
struct HeaderEntry {
    name: EntryName,
    value: Span,
}

/// A parsed SIP request or response.
#[derive(Clone)]
pub struct Message {
    raw: Bytes,
    start: StartLine,
    headers: Vec<HeaderEntry>,
    body: Span,
    core: Core,
}

impl Message {
    /// Parses one UDP datagram: `Content-Length` is optional, octets after the body are
    /// ignored, leading CRLFs are skipped.
    pub fn parse_datagram(raw: Bytes) -> Result<Message, ParseError> {
        parse::parse(raw, parse::Framing::Datagram)
    }

    /// Parses one message cut from a stream by [`framing::StreamFramer`]: `Content-Length`
    /// is mandatory.
    pub fn parse_stream_message(raw: Bytes) -> Result<Message, ParseError> {
        parse::parse(raw, parse::Framing::Stream)
    }

    /// The exact bytes of the message.
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    fn str_at(&self, span: Span) -> &str {
        // Spans only ever cover the head, which was checked to be UTF-8 when parsed, and
        // start and end on ASCII delimiters.
        std::str::from_utf8(&self.raw[span.range()]).unwrap_or_default()
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method, or the `CSeq` method of a response.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => self.core.cseq.as_ref().map(|c| &c.1),
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase of a response (empty for requests).
    pub fn reason(&self) -> &str {
        match self.start {
            StartLine::Response { reason, .. } => self.str_at(reason),
            StartLine::Request { .. } => "",
        }
    }

    /// The Request-URI as written.
    pub fn request_uri_str(&self) -> Option<&str> {
        match self.start {
            StartLine::Request { uri, .. } => Some(self.str_at(uri)),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI, parsed.
    pub fn request_uri(&self) -> Result<Uri, ParseError> {
        Uri::parse(self.request_uri_str().ok_or(ParseError::BadUri)?)
    }

    pub fn call_id(&self) -> Option<&str> {
        self.core.call_id.map(|s| self.str_at(s))
    }

    /// `CSeq` number and method.
    pub fn cseq(&self) -> Option<(u32, &Method)> {
        self.core.cseq.as_ref().map(|(n, m)| (*n, m))
    }

    /// The topmost `Via`, decoded eagerly.
    pub fn top_via(&self) -> Option<&ViaCore> {
        self.core.via.as_ref()
    }

    /// The branch of the topmost `Via`.
    pub fn branch(&self) -> Option<&str> {
        self.core.via.as_ref().and_then(|v| v.branch).map(|s| self.str_at(s))
    }

    /// The `sent-by` of the topmost `Via` as written (`host[:port]`).
    pub fn via_sent_by(&self) -> Option<&str> {
        self.core.via.as_ref().map(|v| self.str_at(v.sent_by))
    }

    /// The host of the topmost `Via` sent-by, as written (IPv6 keeps its brackets).
    pub fn via_host(&self) -> Option<&str> {
        self.core.via.as_ref().map(|v| self.str_at(v.host))
    }

    pub fn from_tag(&self) -> Option<&str> {
        self.core.from_tag.map(|s| self.str_at(s))
    }

    pub fn to_tag(&self) -> Option<&str> {
        self.core.to_tag.map(|s| self.str_at(s))
    }

    pub fn max_forwards(&self) -> Option<u32> {
        self.core.max_forwards
    }

    /// The first problem found in a core header while parsing (malformed or duplicated).
    pub fn header_problem(&self) -> Option<HeaderProblem> {
        self.core.problem
    }

    /// The value of the first `name` header line.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.header_lines(name).next()
    }

    /// Every line of header `name`, in order (values are not split on commas).
    pub fn header_lines(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.headers.iter().filter(move |h| matches!(h.name, EntryName::Known(n) if n == name)).map(|h| self.str_at(h.value))
    }

    /// Every value of header `name`; list headers are split on commas (RFC 3261 §7.3.1).
    pub fn header_values(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        let split = name.is_list();
        self.header_lines(name).flat_map(move |line| {
            let mut whole = Some(line);
            let mut parts = split.then(|| lex::split_list(line));
            std::iter::from_fn(move || match parts.as_mut() {
                Some(p) => p.next(),
                None => whole.take(),
            })
        })
    }

    /// The first value of a header given by its name as a string (known or not).
    pub fn header_named(&self, name: &str) -> Option<&str> {
        if let Some(known) = HeaderName::from_bytes(name.as_bytes()) {
            return self.header(known);
        }
        self.headers.iter().find_map(|h| match h.name {
            EntryName::Other(n) if self.str_at(n).eq_ignore_ascii_case(name) => Some(self.str_at(h.value)),
            _ => None,
        })
    }

    /// Every header as `(name, value)`, names in canonical spelling when known.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|h| {
            let name = match h.name {
                EntryName::Known(n) => n.as_str(),
                EntryName::Other(s) => self.str_at(s),
            };
            (name, self.str_at(h.value))
        })
    }

    /// Tokens of a token-list header (`Require`, `Supported`, `Allow`…).
    pub fn tokens(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.header_values(name).map(lex::trim)
    }

    pub fn from(&self) -> Result<NameAddr, ParseError> {
        self.name_addr(HeaderName::From)
    }

    pub fn to(&self) -> Result<NameAddr, ParseError> {
        self.name_addr(HeaderName::To)
    }

    fn name_addr(&self, name: HeaderName) -> Result<NameAddr, ParseError> {
        NameAddr::parse_for(self.header(name).ok_or(ParseError::BadHeaderValue(name))?, name)
    }

    /// Every `Via`, top first.
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        self.header_values(HeaderName::Via).map(Via::parse).collect()
    }

    /// Every value of a name-addr list header (`Contact`, `Route`, `Record-Route`).
    /// A `Contact: *` is not a name-addr; check [`Message::is_contact_star`] first.
    pub fn name_addrs(&self, name: HeaderName) -> Result<Vec<NameAddr>, ParseError> {
        self.header_values(name).map(|v| NameAddr::parse_for(v, name)).collect()
    }

    /// True for `Contact: *` (REGISTER removing every binding).
    pub fn is_contact_star(&self) -> bool {
        self.header_values(HeaderName::Contact).any(|v| v == "*")
    }

    /// `Content-Type` value as written.
    pub fn content_type(&self) -> Option<&str> {
        self.header(HeaderName::ContentType)
    }

    pub fn body(&self) -> &[u8] {
        &self.raw[self.body.range()]
    }

    /// The body as a zero-copy slice of the message buffer.
    pub fn body_bytes(&self) -> Bytes {
        self.raw.slice(self.body.range())
    }

    /// The same message with `Via: <via>` inserted as its topmost header: how a transport
    /// element stamps a request another component built (re-parsed, so the result is
    /// valid or an error).
    pub fn with_top_via(&self, via: &Via) -> Result<Message, ParseError> {
        let line_end = memchr::memchr(b'\n', &self.raw).ok_or(ParseError::BadStartLine("no line end"))? + 1;
        let via_line = format!("Via: {via}\r\n");
        let mut out = Vec::with_capacity(self.raw.len() + via_line.len());
        out.extend_from_slice(&self.raw[..line_end]);
        out.extend_from_slice(via_line.as_bytes());
        out.extend_from_slice(&self.raw[line_end..]);
        Message::parse_stream_message(Bytes::from(out))
    }

    /// The head (start line and headers) as text.
    pub fn head(&self) -> &str {
        std::str::from_utf8(&self.raw[..self.body.start as usize]).unwrap_or_default()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.start {
            StartLine::Request { method, uri } => write!(f, "Request({method} {})", self.str_at(*uri))?,
            StartLine::Response { code, reason } => write!(f, "Response({code} {})", self.str_at(*reason))?,
        }
        write!(f, " call-id={:?} cseq={:?}", self.call_id(), self.cseq())
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.raw))
    }
}
