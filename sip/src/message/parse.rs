//! The message parser: start line, header lines (compact names, `Name  :` spacing, folded
//! continuation lines, CRLF or bare LF), then the body framed by `Content-Length`.
//! One pass with `memchr` over the head; header values become spans, not copies.

use bytes::{Bytes, BytesMut};
use memchr::memchr;

use super::core;
use super::lex;
use super::{EntryName, HeaderEntry, HeaderName, Message, Method, ParseError, Span, StartLine};

/// How the message was delimited by its transport.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// One UDP datagram: `Content-Length` optional, trailing octets ignored.
    Datagram,
    /// Cut from a stream: `Content-Length` mandatory.
    Stream,
}

/// Largest message accepted (a UDP datagram cannot be larger either).
pub const MAX_MESSAGE_SIZE: usize = 65_535;

struct Line {
    start: usize,
    /// End of content, without CR/LF.
    end: usize,
    /// Start of the next line.
    next: usize,
    terminated: bool,
}

fn next_line(buf: &[u8], pos: usize) -> Line {
    match memchr(b'\n', &buf[pos..]) {
        Some(i) => {
            let nl = pos + i;
            let end = if nl > pos && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
            Line { start: pos, end, next: nl + 1, terminated: true }
        }
        None => Line { start: pos, end: buf.len(), next: buf.len(), terminated: false },
    }
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_span(buf: &[u8], mut start: usize, mut end: usize) -> Span {
    while start < end && is_wsp(buf[start]) {
        start += 1;
    }
    while end > start && is_wsp(buf[end - 1]) {
        end -= 1;
    }
    Span::new(start, end)
}

pub(crate) fn parse(mut raw: Bytes, framing: Framing) -> Result<Message, ParseError> {
    if raw.len() > MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLarge);
    }
    let buf = &raw[..];
    let mut pos = 0;
    while pos < buf.len() && (buf[pos] == b'\r' || buf[pos] == b'\n') {
        pos += 1;
    }
    if pos == buf.len() {
        return Err(ParseError::Empty);
    }
    let first = next_line(buf, pos);
    if !first.terminated {
        return Err(ParseError::BadStartLine("no line end"));
    }
    let (start, version_ok) = parse_start_line(buf, first.start, first.end)?;

    let mut headers: Vec<HeaderEntry> = Vec::with_capacity(16);
    let mut folded: Vec<usize> = Vec::new();
    let mut pos = first.next;
    let mut head_complete = false;
    let mut bad_line = None;
    while pos < buf.len() {
        let line = next_line(buf, pos);
        pos = line.next;
        if line.start == line.end && line.terminated {
            head_complete = true;
            break;
        }
        if !line.terminated {
            break;
        }
        if is_wsp(buf[line.start]) {
            let last = headers.last_mut().ok_or(ParseError::BadHeaderLine("continuation before the first header"))?;
            let cont = trim_span(buf, line.start, line.end);
            if cont.start < cont.end {
                last.value.end = cont.end;
                if last.value.start == last.value.end {
                    last.value.start = cont.start;
                }
            }
            if folded.last() != Some(&(headers.len() - 1)) {
                folded.push(headers.len() - 1);
            }
            continue;
        }
        let Some(colon) = memchr(b':', &buf[line.start..line.end]).map(|c| c + line.start) else {
            // Skipped, so the rest of the head can still be read to answer the request.
            bad_line.get_or_insert("no colon");
            continue;
        };
        let mut name_end = colon;
        while name_end > line.start && is_wsp(buf[name_end - 1]) {
            name_end -= 1;
        }
        let name = &buf[line.start..name_end];
        if name.is_empty() || !name.iter().all(|b| lex::is_token_byte(*b)) {
            bad_line.get_or_insert("invalid header name");
            continue;
        }
        let name = match HeaderName::from_bytes(name) {
            Some(known) => EntryName::Known(known),
            None => EntryName::Other(Span::new(line.start, name_end)),
        };
        headers.push(HeaderEntry { name, value: trim_span(buf, colon + 1, line.end) });
    }
    let head_end = pos;
    if !folded.is_empty() {
        raw = unfold(&raw, &headers, &folded);
    }
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| ParseError::NotUtf8)?;
    let mut core = core::decode(head, &headers);
    core.unsupported_version = !version_ok;

    let body_start = head_end;
    let available = raw.len() - body_start;
    let mut message = Message { raw, start, headers, body: Span::new(body_start, body_start), core };
    if let Some(reason) = bad_line {
        return Err(ParseError::MalformedHeaderLine { reason, partial: Box::new(message) });
    }
    if !head_complete {
        return Err(ParseError::Truncated { reason: "no empty line after the headers", partial: Box::new(message) });
    }
    let body_len = match (message.core.content_length, framing) {
        (Some(n), _) => n as usize,
        (None, Framing::Datagram) => available,
        (None, Framing::Stream) => return Err(ParseError::MissingContentLength),
    };
    if body_len > available {
        return Err(ParseError::Truncated { reason: "body shorter than Content-Length", partial: Box::new(message) });
    }
    message.body = Span::new(body_start, body_start + body_len);
    Ok(message)
}

/// Replaces the line breaks inside folded header values by spaces (RFC 3261 §7.3.1: a fold
/// is equivalent to one space). Lengths do not change, so spans stay valid.
fn unfold(raw: &Bytes, headers: &[HeaderEntry], folded: &[usize]) -> Bytes {
    let mut copy = BytesMut::from(&raw[..]);
    for &i in folded {
        let v = headers[i].value;
        for b in &mut copy[v.start as usize..v.end as usize] {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
    }
    copy.freeze()
}

/// Parses the start line; the flag is false for a request with a SIP version other than
/// 2.0, which a server answers with `505`.
fn parse_start_line(buf: &[u8], start: usize, end: usize) -> Result<(StartLine, bool), ParseError> {
    let line = &buf[start..end];
    if line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"SIP/2.0 ") {
        let rest = &line[8..];
        if rest.len() < 3 || !rest[..3].iter().all(u8::is_ascii_digit) || (rest.len() > 3 && rest[3] != b' ') {
            return Err(ParseError::BadStartLine("bad status code"));
        }
        let code = (rest[0] - b'0') as u16 * 100 + (rest[1] - b'0') as u16 * 10 + (rest[2] - b'0') as u16;
        if !(100..=699).contains(&code) {
            return Err(ParseError::BadStartLine("status code out of range"));
        }
        let reason_start = (start + 8 + 4).min(end);
        return Ok((StartLine::Response { code, reason: Span::new(reason_start, end) }, true));
    }
    let sp1 = memchr(b' ', line).ok_or(ParseError::BadStartLine("no Request-URI"))?;
    let method = Method::parse(&line[..sp1]).ok_or(ParseError::BadStartLine("invalid method"))?;
    let rest = &line[sp1 + 1..];
    let sp2 = memchr(b' ', rest).ok_or(ParseError::BadStartLine("no SIP version"))?;
    let uri = &rest[..sp2];
    if uri.is_empty() || memchr(b':', uri).is_none() || uri.iter().any(|b| *b < 0x21 || *b > 0x7e) {
        return Err(ParseError::BadStartLine("invalid Request-URI"));
    }
    let version = &rest[sp2 + 1..];
    let version_ok = version.eq_ignore_ascii_case(b"SIP/2.0");
    if !version_ok && !is_sip_version(version) {
        return Err(ParseError::BadStartLine("invalid SIP version"));
    }
    let uri_start = start + sp1 + 1;
    Ok((StartLine::Request { method, uri: Span::new(uri_start, uri_start + sp2) }, version_ok))
}

/// `SIP/1*DIGIT.1*DIGIT`.
fn is_sip_version(v: &[u8]) -> bool {
    let Some(num) = v.get(4..).filter(|_| v[..4].eq_ignore_ascii_case(b"SIP/")) else { return false };
    let mut parts = num.split(|b| *b == b'.');
    let ok = |p: Option<&[u8]>| p.is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}
