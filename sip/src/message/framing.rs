//! Framing of SIP messages on stream transports (RFC 3261 §18.3): the head ends at the first
//! empty line, the body is exactly `Content-Length` octets, and a message without
//! `Content-Length` cannot be framed. Leading CRLFs are keep-alives (RFC 5626 §3.5.1: a
//! double CRLF "ping" is answered with a single CRLF "pong").

use bytes::{Bytes, BytesMut};
use memchr::{memchr, memmem};

use super::parse::MAX_MESSAGE_SIZE;

/// One unit cut from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete message (head and body), ready for `Message::parse_stream_message`.
    Message(Bytes),
    /// A CRLFCRLF keep-alive ping; answer with a CRLF.
    Ping,
}

/// Why the stream cannot be framed any more; the connection should be closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FramingError {
    /// The head has no `Content-Length`. The head is returned so a request can still be
    /// answered with `400` before closing.
    #[error("message without Content-Length on a stream transport")]
    MissingContentLength { head: Bytes },
    #[error("malformed Content-Length")]
    BadContentLength,
    #[error("message larger than {MAX_MESSAGE_SIZE} bytes")]
    TooLarge,
}

/// Accumulates bytes read from a stream and cuts them into frames.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: BytesMut,
}

impl StreamFramer {
    pub fn new() -> Self {
        StreamFramer { buf: BytesMut::with_capacity(8192) }
    }

    /// The buffer to read into (append only).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes buffered but not yet framed.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if self.buf.starts_with(b"\r\n\r\n") {
            let _ = self.buf.split_to(4);
            return Ok(Some(Frame::Ping));
        }
        let leading = self.buf.iter().take_while(|b| **b == b'\r' || **b == b'\n').count();
        if leading == self.buf.len() {
            // Only line ends so far: maybe the first half of a ping, maybe a pong.
            if leading >= 4 {
                self.buf.clear();
            }
            return Ok(None);
        }
        if leading > 0 {
            let _ = self.buf.split_to(leading);
        }
        let Some(head_len) = head_length(&self.buf) else {
            if self.buf.len() > MAX_MESSAGE_SIZE {
                return Err(FramingError::TooLarge);
            }
            return Ok(None);
        };
        let body_len = match content_length(&self.buf[..head_len])? {
            Some(n) => n,
            None => return Err(FramingError::MissingContentLength { head: self.buf.split_to(head_len).freeze() }),
        };
        let total = head_len + body_len;
        if total > MAX_MESSAGE_SIZE {
            return Err(FramingError::TooLarge);
        }
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        // Copied out, so a message kept for long does not pin the connection's buffer.
        let message = Bytes::copy_from_slice(&self.buf[..total]);
        bytes::Buf::advance(&mut self.buf, total);
        Ok(Some(Frame::Message(message)))
    }
}

/// Length of the head including the empty line, when it is complete.
fn head_length(buf: &[u8]) -> Option<usize> {
    let crlf = memmem::find(buf, b"\n\r\n").map(|i| i + 3);
    let lf = memmem::find(buf, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The `Content-Length` (or compact `l`) of a head.
fn content_length(head: &[u8]) -> Result<Option<usize>, FramingError> {
    for line in head.split(|b| *b == b'\n').skip(1) {
        let Some(colon) = memchr(b':', line) else { continue };
        let name = line[..colon].trim_ascii_end();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let value = line[colon + 1..].trim_ascii();
            if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
                return Err(FramingError::BadContentLength);
            }
            return Ok(std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(f: &mut StreamFramer, s: &[u8]) {
        f.buffer_mut().extend_from_slice(s);
    }

    #[test]
    fn frames_across_reads_with_keepalives() {
        let msg = b"OPTIONS sip:a@b SIP/2.0\r\nl: 5\r\n\r\nhello";
        let mut f = StreamFramer::new();
        feed(&mut f, b"\r\n\r\n");
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Ping));
        feed(&mut f, &msg[..10]);
        assert_eq!(f.next_frame().unwrap(), None);
        feed(&mut f, &msg[10..msg.len() - 2]);
        assert_eq!(f.next_frame().unwrap(), None);
        feed(&mut f, &msg[msg.len() - 2..]);
        feed(&mut f, b"\r\n");
        feed(&mut f, msg);
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Message(Bytes::from_static(msg))));
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Message(Bytes::from_static(msg))));
        assert_eq!(f.next_frame().unwrap(), None);
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn refuses_what_cannot_be_framed() {
        let mut f = StreamFramer::new();
        feed(&mut f, b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n");
        assert!(matches!(f.next_frame(), Err(FramingError::MissingContentLength { .. })));
        let mut f = StreamFramer::new();
        feed(&mut f, b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::BadContentLength));
        let mut f = StreamFramer::new();
        feed(&mut f, &vec![b'a'; MAX_MESSAGE_SIZE + 1]);
        assert_eq!(f.next_frame(), Err(FramingError::TooLarge));
    }
}
