//! Where to send a request for a URI, without DNS: an IP host, the port (5060, or 5061
//! for `sips:`), and the transport from the `transport` parameter. Host names need a
//! resolver (RFC 3263), which is not part of this stack yet.

use std::net::SocketAddr;

use crate::message::Uri;
use crate::transaction::{Peer, TransportKind};

/// The peer for `uri`, if its host is an IP address. `default` applies when the URI has no
/// `transport` parameter.
pub fn peer_for_uri(uri: &Uri, default: TransportKind) -> Option<Peer> {
    let sip = uri.as_sip()?;
    let ip = sip.host_port.host.ip()?;
    let port = sip.host_port.port.unwrap_or(if sip.secure { 5061 } else { 5060 });
    let transport = match sip.params.value("transport") {
        Some(t) if t.eq_ignore_ascii_case("tcp") => TransportKind::Tcp,
        Some(t) if t.eq_ignore_ascii_case("udp") => TransportKind::Udp,
        _ => default,
    };
    Some(Peer { transport, addr: SocketAddr::new(ip, port) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_hosts_resolve_with_transport_and_default_port() {
        let p = |s: &str| peer_for_uri(&Uri::parse(s).unwrap(), TransportKind::Udp);
        assert_eq!(p("sip:a@127.0.0.1:5070;transport=TCP"), Some(Peer::tcp("127.0.0.1:5070".parse().unwrap())));
        assert_eq!(p("sip:[::1]"), Some(Peer::udp("[::1]:5060".parse().unwrap())));
        assert_eq!(p("sip:a@example.com"), None);
        assert_eq!(p("tel:+123"), None);
    }
}
