//! The address to put on the wire when a socket is bound to the unspecified address
//! (`0.0.0.0` or `::`): such an address means "every interface" to the kernel and "nowhere"
//! to a peer, so it must never appear in a Via, a Contact or an SDP `c=` line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// `ip` itself when it is a specific address; otherwise this host's address of the same
/// family: the source address of the default route, else the first non-loopback address of
/// an interface that is up, else loopback.
pub fn advertised_ip(ip: IpAddr) -> IpAddr {
    if !ip.is_unspecified() {
        return ip;
    }
    let v6 = ip.is_ipv6();
    default_route_source(v6).or_else(|| first_interface_address(v6)).unwrap_or(if v6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    })
}

/// The source address the kernel would pick toward a documentation address (RFC 5737 /
/// RFC 3849). `connect` on a UDP socket sends nothing; it only chooses the route.
fn default_route_source(v6: bool) -> Option<IpAddr> {
    let (bind, probe): (SocketAddr, SocketAddr) = if v6 {
        ((Ipv6Addr::UNSPECIFIED, 0).into(), (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9).into())
    } else {
        ((Ipv4Addr::UNSPECIFIED, 0).into(), (Ipv4Addr::new(192, 0, 2, 1), 9).into())
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(probe).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// The first address of the family on an interface that is up and not loopback.
fn first_interface_address(v6: bool) -> Option<IpAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cursor = list;
    while !cursor.is_null() && found.is_none() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, not yet freed.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        let up = entry.ifa_flags & libc::IFF_UP as u32 != 0;
        let loopback = entry.ifa_flags & libc::IFF_LOOPBACK as u32 != 0;
        if !up || loopback || entry.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says which struct it is.
        found = unsafe {
            match i32::from((*entry.ifa_addr).sa_family) {
                libc::AF_INET if !v6 => {
                    let sin = &*(entry.ifa_addr as *const libc::sockaddr_in);
                    Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
                }
                libc::AF_INET6 if v6 => {
                    let sin6 = &*(entry.ifa_addr as *const libc::sockaddr_in6);
                    let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                    // A link-local address needs a scope a peer cannot know.
                    (!ip.is_unicast_link_local()).then_some(IpAddr::V6(ip))
                }
                _ => None,
            }
        };
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_addresses_are_kept() {
        for ip in ["127.0.0.1", "10.1.2.3", "::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(advertised_ip(ip), ip);
        }
    }

    #[test]
    fn the_unspecified_address_becomes_a_real_one_of_its_family() {
        let v4 = advertised_ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(v4.is_ipv4() && !v4.is_unspecified(), "{v4}");
        let v6 = advertised_ip(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert!(v6.is_ipv6() && !v6.is_unspecified(), "{v6}");
        // Whatever it chose is an address of this host: a socket binds to it.
        assert!(UdpSocket::bind((v4, 0)).is_ok(), "{v4}");
    }
}
