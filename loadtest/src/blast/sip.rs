//! Calls set up through Callmesh for the blaster, by the smallest SIP that does it: the
//! caller side sends an INVITE whose SDP points at an A socket; Callmesh's INVITE to the
//! callee side (this process too) is answered with an SDP pointing at a B socket — in
//! the callee codec asked for, picked from Callmesh's offer — and the 200 OK's SDP tells
//! where A sends. One call at a time; the calls stay up until the process is stopped.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::Context;

/// A call's relay addresses: where A sends, and where B sends, and B's payload type.
pub struct Relayed {
    pub a_to: SocketAddr,
    pub b_to: SocketAddr,
    pub b_payload_type: u8,
}

/// The caller and callee user agents.
pub struct Agents {
    uac: UdpSocket,
    uas: UdpSocket,
    callmesh: SocketAddr,
}

impl Agents {
    pub fn new(callmesh: SocketAddr, uas: UdpSocket) -> anyhow::Result<Agents> {
        let uac = UdpSocket::bind("127.0.0.1:0")?;
        for s in [&uac, &uas] {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
        }
        Ok(Agents { uac, uas, callmesh })
    }

    /// Sets up call `i`: A's media at `a`, B's at `b`; B answers in `b_codec` (`PCMU`,
    /// `opus`).
    pub fn call(&self, i: usize, a: SocketAddr, b: SocketAddr, b_codec: &str) -> anyhow::Result<Relayed> {
        let me = self.uac.local_addr()?;
        let call_id = format!("blast-{i}-{}", std::process::id());
        let offer_sdp = sdp(a, "0 101", "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n");
        let invite = format!(
            "INVITE sip:{i}@{cm} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-b{i}\r\nMax-Forwards: 70\r\n\
             From: <sip:blast@{me}>;tag=a{i}\r\nTo: <sip:{i}@{cm}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:blast@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer_sdp}",
            offer_sdp.len(),
            cm = self.callmesh,
        );
        self.uac.send_to(invite.as_bytes(), self.callmesh)?;
        let (offer, from) = self.recv(&self.uas, |m| m.starts_with(&format!("INVITE sip:{i}@")))?;
        let (pt, rtpmap) = pick(body(&offer), b_codec).with_context(|| format!("Callmesh offered no {b_codec}"))?;
        let answer_sdp = sdp(b, &pt.to_string(), &rtpmap);
        let ok = response(&offer, &format!("Contact: <sip:b@{}>\r\n", self.uas.local_addr()?), &answer_sdp);
        self.uas.send_to(ok.as_bytes(), from)?;
        let (ok, _) = self.recv(&self.uac, |m| m.starts_with("SIP/2.0 200") && m.contains(&call_id))?;
        let to = header(&ok, "To").unwrap_or_default();
        let contact = header(&ok, "Contact").and_then(|c| c.split(['<', '>']).nth(1)).unwrap_or("sip:x@127.0.0.1").to_owned();
        let ack = format!(
            "ACK {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-k{i}\r\nMax-Forwards: 70\r\n\
             From: <sip:blast@{me}>;tag=a{i}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        self.uac.send_to(ack.as_bytes(), self.callmesh)?;
        Ok(Relayed { a_to: media_addr(body(&ok))?, b_to: media_addr(body(&offer))?, b_payload_type: pt })
    }

    /// The next message on `socket` that `wanted` accepts (others — provisional responses,
    /// retransmissions, ACKs — skipped), within 5 s.
    fn recv(&self, socket: &UdpSocket, wanted: impl Fn(&str) -> bool) -> anyhow::Result<(String, SocketAddr)> {
        let mut buf = vec![0u8; 65_535];
        loop {
            let (n, from) = socket.recv_from(&mut buf).context("waiting for Callmesh's SIP")?;
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if wanted(&text) {
                return Ok((text, from));
            }
        }
    }
}

pub fn sdp(at: SocketAddr, formats: &str, attributes: &str) -> String {
    format!(
        "v=0\r\no=blast 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {formats}\r\n{attributes}a=sendrecv\r\n",
        ip = at.ip(),
        port = at.port()
    )
}

/// A 200 OK to `request` with `extra` headers and an SDP body.
pub fn response(request: &str, extra: &str, body: &str) -> String {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for line in request.lines().skip(1).take_while(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        match name.as_str() {
            "via" | "from" | "call-id" | "cseq" => out.push_str(&format!("{line}\r\n")),
            "to" => out.push_str(&format!("{line};tag=b\r\n")),
            _ => {}
        }
    }
    out + &format!("{extra}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn body(message: &str) -> &str {
    message.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The payload type and `a=rtpmap` line of `codec` in an offer.
pub fn pick(sdp: &str, codec: &str) -> Option<(u8, String)> {
    sdp.lines()
        .find_map(|l| {
            let (pt, name) = l.strip_prefix("a=rtpmap:")?.split_once(' ')?;
            name.to_ascii_lowercase().starts_with(&codec.to_ascii_lowercase()).then(|| (pt.parse().ok(), format!("{l}\r\n")))
        })
        .and_then(|(pt, line)| Some((pt?, line)))
}

/// Where an SDP's audio goes: its `c=` address and `m=audio` port.
pub fn media_addr(sdp: &str) -> anyhow::Result<SocketAddr> {
    let ip = sdp.lines().find_map(|l| l.strip_prefix("c=IN IP4 ")).context("SDP without c=")?;
    let port = sdp.lines().find_map(|l| l.strip_prefix("m=audio ")?.split(' ').next()).context("SDP without m=audio")?;
    Ok(format!("{}:{}", ip.trim(), port).parse()?)
}
