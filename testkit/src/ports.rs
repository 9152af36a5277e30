//! Free ports for servers a test starts. A port is free on both UDP and TCP when handed
//! out, and never handed out twice by one test process.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Mutex;

static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// An address on `ip` whose port is free for UDP and TCP.
pub fn free_addr(ip: &str) -> SocketAddr {
    let ip: IpAddr = ip.parse().expect("an IP address");
    for _ in 0..200 {
        let Ok(udp) = UdpSocket::bind((ip, 0)) else { continue };
        let Ok(addr) = udp.local_addr() else { continue };
        if TcpListener::bind(addr).is_err() {
            continue;
        }
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.get_or_insert_with(HashSet::new).insert(addr.port()) {
            return addr;
        }
    }
    panic!("no free port on {ip}");
}

/// An address on 127.0.0.1 whose port and the `n - 1` after it are all free for UDP and
/// TCP: for a program that binds a run of ports from one it is given (SIPp's `-mp` takes
/// four: audio RTP and RTCP, video RTP and RTCP).
pub fn free_local_block(n: u16) -> SocketAddr {
    let ip = IpAddr::from([127, 0, 0, 1]);
    for _ in 0..500 {
        let Ok(first) = UdpSocket::bind((ip, 0)).and_then(|s| s.local_addr()) else { continue };
        let Some(ports) = first.port().checked_add(n - 1).map(|last| first.port()..=last) else { continue };
        // Held together while checking, so none of them is counted free twice.
        let held: Vec<_> = ports.clone().map(|p| (UdpSocket::bind((ip, p)), TcpListener::bind((ip, p)))).collect();
        if !held.iter().all(|(u, t)| u.is_ok() && t.is_ok()) {
            continue;
        }
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        let given = given.get_or_insert_with(HashSet::new);
        if ports.clone().all(|p| !given.contains(&p)) {
            given.extend(ports);
            return first;
        }
    }
    panic!("no {n} consecutive free ports on {ip}");
}

/// A free port on 127.0.0.1.
pub fn free_local_addr() -> SocketAddr {
    free_addr("127.0.0.1")
}

/// Waits until some process has bound `addr`: a UDP socket, or a listening TCP socket when
/// `tcp` (a server that prints nothing when ready, like SIPp). It reads the kernel's socket
/// tables: probing with a bind of our own would steal the port. Returns false if it did not
/// happen within `timeout`.
pub fn wait_until_bound(addr: SocketAddr, tcp: bool, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let port = format!(":{:04X}", addr.port());
    let tables: &[&str] = if tcp { &["/proc/net/tcp", "/proc/net/tcp6"] } else { &["/proc/net/udp", "/proc/net/udp6"] };
    let matches = |line: &str| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // TCP sockets must be listening (state 0A); UDP sockets have no listen state.
        cols.len() > 3 && cols[1].ends_with(&port) && (!tcp || cols[3] == "0A")
    };
    while std::time::Instant::now() < deadline {
        let bound = tables.iter().any(|t| std::fs::read_to_string(t).is_ok_and(|text| text.lines().skip(1).any(matches)));
        if bound {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_free_and_never_handed_out_again() {
        let first = free_local_block(4);
        let block: Vec<u16> = (first.port()..first.port() + 4).collect();
        for p in &block {
            UdpSocket::bind(("127.0.0.1", *p)).expect("every port of the block binds");
        }
        for _ in 0..50 {
            assert!(!block.contains(&free_local_addr().port()), "a port of the block handed out again");
        }
    }
}
