//! Hosts and `host[:port]` pairs as they appear in URIs and `Via` sent-by: IPv4, bracketed
//! IPv6 references, and domain names.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::ParseError;

/// A host: an IP address or a domain name (kept as written, compared case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Domain(String),
}

impl Host {
    /// Parses a host; IPv6 must be in brackets (`[::1]`).
    pub fn parse(s: &str) -> Result<Host, ParseError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(ParseError::BadHost)?;
            return inner.parse().map(Host::Ipv6).map_err(|_| ParseError::BadHost);
        }
        if s.is_empty() || s.len() > 255 {
            return Err(ParseError::BadHost);
        }
        let looks_numeric = s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if looks_numeric {
            return s.parse().map(Host::Ipv4).map_err(|_| ParseError::BadHost);
        }
        let valid = s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid || s.starts_with('.') || s.starts_with('-') {
            return Err(ParseError::BadHost);
        }
        Ok(Host::Domain(s.to_owned()))
    }

    /// The IP address, when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(a) => Some(IpAddr::V6(*a)),
            Host::Domain(_) => None,
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Host {
        match ip {
            IpAddr::V4(a) => Host::Ipv4(a),
            IpAddr::V6(a) => Host::Ipv6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
            Host::Domain(d) => f.write_str(d),
        }
    }
}

/// `host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: Host,
    pub port: Option<u16>,
}

impl HostPort {
    pub fn new(host: Host, port: Option<u16>) -> Self {
        HostPort { host, port }
    }

    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`.
    pub fn parse(s: &str) -> Result<HostPort, ParseError> {
        let (host, port) = split_host_port(s)?;
        let port = match port {
            Some(p) => Some(p.parse::<u16>().map_err(|_| ParseError::BadHost)?),
            None => None,
        };
        Ok(HostPort { host: Host::parse(host)?, port })
    }

    /// The socket address when the host is an IP, with `default_port` if none is given.
    pub fn socket_addr(&self, default_port: u16) -> Option<SocketAddr> {
        self.host.ip().map(|ip| SocketAddr::new(ip, self.port.unwrap_or(default_port)))
    }
}

impl From<SocketAddr> for HostPort {
    fn from(a: SocketAddr) -> HostPort {
        HostPort { host: a.ip().into(), port: Some(a.port()) }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// Splits `host[:port]` text without interpreting either part.
pub fn split_host_port(s: &str) -> Result<(&str, Option<&str>), ParseError> {
    if s.starts_with('[') {
        let close = s.find(']').ok_or(ParseError::BadHost)?;
        let rest = &s[close + 1..];
        return match rest.strip_prefix(':') {
            Some(port) => Ok((&s[..=close], Some(port))),
            None if rest.is_empty() => Ok((s, None)),
            None => Err(ParseError::BadHost),
        };
    }
    match s.rfind(':') {
        Some(i) => Ok((&s[..i], Some(&s[i + 1..]))),
        None => Ok((s, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_host_kind() {
        let cases = ["127.0.0.1:5060", "[2001:db8::1]:5061", "[::1]", "example.com", "a-b.example.com:1"];
        for c in cases {
            let hp = HostPort::parse(c).unwrap();
            assert_eq!(hp.to_string(), c);
        }
        assert!(HostPort::parse("[::1").is_err());
        assert!(HostPort::parse("host:99999").is_err());
        assert!(HostPort::parse("").is_err());
        assert!(HostPort::parse("bad host").is_err());
        assert!(HostPort::parse("1.2.3.999").is_err());
    }
}
