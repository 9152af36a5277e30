//! The `Via` header (RFC 3261 §20.42, RFC 3581 `rport`): the transport, the sent-by address
//! responses return to, and the `branch` that names the transaction.

use std::fmt;

use super::ParseError;
use super::host::HostPort;
use super::lex;
use super::params::Params;

/// The magic cookie that marks an RFC 3261 branch (§8.1.1.7).
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// A transport protocol as named in `Via` and the `transport` URI parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
    Other(String),
}

impl Transport {
    pub fn parse(s: &str) -> Transport {
        let eq = |name: &str| s.eq_ignore_ascii_case(name);
        if eq("UDP") {
            Transport::Udp
        } else if eq("TCP") {
            Transport::Tcp
        } else if eq("TLS") {
            Transport::Tls
        } else if eq("SCTP") {
            Transport::Sctp
        } else if eq("WS") {
            Transport::Ws
        } else if eq("WSS") {
            Transport::Wss
        } else {
            Transport::Other(s.to_ascii_uppercase())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(s) => s,
        }
    }

    /// Reliable transports need no retransmissions and zero-length wait timers.
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `Via` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Via {
    pub transport: Transport,
    pub sent_by: HostPort,
    pub params: Params,
}

/// The three textual parts of a `Via` value, borrowed from the message.
pub(crate) struct ViaParts<'a> {
    pub transport: &'a str,
    pub sent_by: &'a str,
    /// Parameters after the first `;`, or empty.
    pub params: &'a str,
}

/// Splits `SIP/2.0/UDP host:port;params` (white space allowed around `/`).
pub(crate) fn split_via(s: &str) -> Result<ViaParts<'_>, ParseError> {
    let bad = ParseError::BadHeaderValue(super::HeaderName::Via);
    let s = lex::trim(s);
    let (name, rest) = s.split_once('/').ok_or(bad.clone())?;
    let (version, rest) = rest.split_once('/').ok_or(bad.clone())?;
    if !lex::trim(name).eq_ignore_ascii_case("SIP") || lex::trim(version) != "2.0" {
        return Err(bad);
    }
    let rest = rest.trim_start_matches([' ', '\t', '\r', '\n']);
    let transport_len = rest.bytes().take_while(|b| lex::is_token_byte(*b)).count();
    let (transport, rest) = rest.split_at(transport_len);
    if transport.is_empty() || !rest.starts_with(|c: char| c.is_ascii() && lex::is_lws(c as u8)) {
        return Err(bad);
    }
    let (sent_by, params) = match rest.find(';') {
        Some(i) => (lex::trim(&rest[..i]), &rest[i + 1..]),
        None => (lex::trim(rest), ""),
    };
    if sent_by.is_empty() {
        return Err(bad);
    }
    Ok(ViaParts { transport, sent_by, params })
}

impl Via {
    /// A Via for a request we send, with a fresh RFC 3261 branch and `rport`.
    pub fn new(transport: Transport, sent_by: HostPort, branch: &str) -> Via {
        let mut params = Params::new();
        params.set("branch", Some(branch));
        params.set("rport", None);
        Via { transport, sent_by, params }
    }

    pub fn parse(s: &str) -> Result<Via, ParseError> {
        let parts = split_via(s)?;
        let sent_by = HostPort::parse(parts.sent_by)?;
        let params = Params::parse(parts.params)?;
        Ok(Via { transport: Transport::parse(parts.transport), sent_by, params })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// `Some(None)` when `rport` is present without a value (a request asking for it).
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}{}", self.transport, self.sent_by, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in [
            "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds",
            "SIP/2.0/TCP [2001:db8::9:1]:5070;branch=z9hG4bKx;rport=5070;received=192.0.2.1",
            "SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK1",
        ] {
            let v = Via::parse(s).unwrap();
            assert_eq!(v.to_string(), s);
            assert_eq!(Via::parse(&v.to_string()).unwrap(), v);
        }
    }

    #[test]
    fn lenient_spacing_and_errors() {
        let v = Via::parse(" SIP / 2.0 / udp  host.example:5060 ; branch = z9hG4bKabc ").unwrap();
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!(v.branch(), Some("z9hG4bKabc"));
        assert_eq!(v.rport(), None);
        for bad in ["SIP/2.0/UDP", "SIP/3.0/UDP h", "HTTP/2.0/UDP h", "SIP/2.0/UDPh", "SIP/2.0/UDP ;branch=x"] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
    }
}
