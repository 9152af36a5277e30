//! rtpengine's control protocol ("ng": a cookie, then a bencoded dictionary over UDP), as
//! Kamailio's rtpengine module speaks it: an `offer` with the caller's SDP returns the SDP
//! the callee gets (where B sends), an `answer` with the callee's returns the caller's
//! (where A sends).

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::Context;

/// A value to bencode.
pub enum Value<'a> {
    Str(&'a str),
    List(Vec<Value<'a>>),
    Dict(Vec<(&'a str, Value<'a>)>),
}

fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Str(s) => {
            out.extend_from_slice(format!("{}:", s.len()).as_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::List(items) => {
            out.push(b'l');
            items.iter().for_each(|i| encode(i, out));
            out.push(b'e');
        }
        Value::Dict(entries) => {
            out.push(b'd');
            for (k, v) in entries {
                encode(&Value::Str(k), out);
                encode(v, out);
            }
            out.push(b'e');
        }
    }
}

/// The string value of `key` in a bencoded reply (the first occurrence: replies are flat
/// where it matters).
fn string_of(reply: &[u8], key: &str) -> Option<String> {
    let needle = format!("{}:{key}", key.len());
    let at = reply.windows(needle.len()).position(|w| w == needle.as_bytes())? + needle.len();
    let rest = &reply[at..];
    let colon = rest.iter().position(|b| *b == b':')?;
    let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    Some(String::from_utf8_lossy(rest.get(colon + 1..colon + 1 + len)?).into_owned())
}

/// A control connection to one rtpengine.
pub struct Ng {
    socket: UdpSocket,
    to: SocketAddr,
    cookie: u64,
}

impl Ng {
    pub fn new(to: SocketAddr) -> anyhow::Result<Ng> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(Ng { socket, to, cookie: 0 })
    }

    /// Sends a command and returns the SDP of its reply.
    pub fn command(&mut self, entries: Vec<(&str, Value)>) -> anyhow::Result<String> {
        self.cookie += 1;
        let mut message = format!("{} ", self.cookie).into_bytes();
        encode(&Value::Dict(entries), &mut message);
        self.socket.send_to(&message, self.to)?;
        let mut buf = vec![0u8; 65_535];
        loop {
            let n = self.socket.recv(&mut buf).context("waiting for rtpengine")?;
            let reply = &buf[..n];
            if !reply.starts_with(format!("{} ", self.cookie).as_bytes()) {
                continue;
            }
            if string_of(reply, "result").as_deref() != Some("ok") {
                anyhow::bail!("rtpengine: {}", String::from_utf8_lossy(reply));
            }
            return string_of(reply, "sdp").context("rtpengine's reply has no SDP");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionaries_encode_and_replies_are_read() {
        let mut out = Vec::new();
        encode(&Value::Dict(vec![("command", Value::Str("offer")), ("flags", Value::List(vec![Value::Str("a")]))]), &mut out);
        assert_eq!(out, b"d7:command5:offer5:flagsl1:aee");
        let reply = b"7 d6:result2:ok3:sdp5:v=0\r\ne";
        assert_eq!(string_of(reply, "sdp").as_deref(), Some("v=0\r\n"));
        assert_eq!(string_of(reply, "result").as_deref(), Some("ok"));
    }
}
