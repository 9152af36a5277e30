//! SIP by hand over a UDP socket, for tests that must see exactly what Callmesh puts on the
//! wire (Via, Contact, SDP) or answer in a way SIPp's scenarios cannot.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// A UDP socket on loopback that sends and receives whole SIP messages.
pub struct RawSip {
    pub socket: UdpSocket,
    pub addr: SocketAddr,
}

impl RawSip {
    pub fn bind() -> RawSip {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let addr = socket.local_addr().unwrap();
        RawSip { socket, addr }
    }

    pub fn send(&self, to: SocketAddr, message: &str) {
        self.socket.send_to(message.as_bytes(), to).unwrap();
    }

    /// The next message (within 5 s) and where it came from; `None` on timeout.
    pub fn recv(&self) -> Option<(String, SocketAddr)> {
        let mut buf = [0u8; 65535];
        let (n, from) = self.socket.recv_from(&mut buf).ok()?;
        Some((String::from_utf8_lossy(&buf[..n]).into_owned(), from))
    }

    /// The next message that is not a `100 Trying`.
    pub fn recv_final(&self) -> Option<(String, SocketAddr)> {
        loop {
            let (m, from) = self.recv()?;
            if !m.starts_with("SIP/2.0 100") {
                return Some((m, from));
            }
        }
    }

    /// An INVITE from this socket to `user` at `to`, offering PCMU on `rtp`.
    pub fn invite(&self, to: SocketAddr, user: &str, call_id: &str, rtp: SocketAddr) -> String {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
            ip = rtp.ip(),
            port = rtp.port()
        );
        format!(
            "INVITE sip:{user}@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{call_id}\r\nMax-Forwards: 70\r\n\
             From: <sip:caller@{me}>;tag=caller-{call_id}\r\nTo: <sip:{user}@{to}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:caller@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len(),
            me = self.addr
        )
    }

    /// An OPTIONS from this socket to `to`.
    pub fn options(&self, to: SocketAddr, call_id: &str) -> String {
        format!(
            "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{call_id}\r\nMax-Forwards: 70\r\n\
             From: <sip:probe@{me}>;tag=probe-{call_id}\r\nTo: <sip:{to}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n",
            me = self.addr
        )
    }
}

/// The value of the first header `name` (case-insensitive).
pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.split("\r\n\r\n").next()?.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The status code of a response.
pub fn status(message: &str) -> u16 {
    message.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// A response to `request` with `status`, echoing its Via, From, Call-ID and CSeq.
pub fn reply(request: &str, status: u16, reason: &str, to_tag: &str) -> String {
    let h = |n| header(request, n).unwrap_or_default();
    format!(
        "SIP/2.0 {status} {reason}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag={to_tag}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("To"),
        h("Call-ID"),
        h("CSeq")
    )
}

/// The ACK for a non-2xx final `response` to our INVITE (same branch, RFC 3261 §17.1.1.3).
pub fn ack_for(invite: &str, response: &str) -> String {
    let h = |m, n| header(m, n).unwrap_or_default();
    let uri = invite.split_whitespace().nth(1).unwrap_or_default();
    let cseq = h(invite, "CSeq").split_whitespace().next().unwrap_or("1");
    format!(
        "ACK {uri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
        h(invite, "Via"),
        h(invite, "From"),
        h(response, "To"),
        h(invite, "Call-ID")
    )
}

/// A request within the dialog `response` (a 2xx to our `invite`) set up: `method` (ACK,
/// BYE) to the response's Contact, on branch `branch`, with CSeq `seq`.
pub fn in_dialog(invite: &str, response: &str, method: &str, seq: u32, branch: &str) -> String {
    let h = |m, n| header(m, n).unwrap_or_default();
    let contact = h(response, "Contact");
    let uri = contact.trim_start_matches('<').split('>').next().unwrap_or(contact);
    let via = h(invite, "Via").split(";branch=").next().unwrap_or_default();
    format!(
        "{method} {uri} SIP/2.0\r\nVia: {via};branch={branch}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\n\
         CSeq: {seq} {method}\r\nContent-Length: 0\r\n\r\n",
        h(invite, "From"),
        h(response, "To"),
        h(invite, "Call-ID")
    )
}
