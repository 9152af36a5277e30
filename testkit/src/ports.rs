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

/// A free port on 127.0.0.1.
pub fn free_local_addr() -> SocketAddr {
    free_addr("127.0.0.1")
}

/// Waits until some process has bound UDP `addr` (a server that prints nothing when
/// ready, like SIPp), by reading the kernel's socket table (probing with a bind of our own
/// would steal the port). Returns false if it did not happen within `timeout`.
pub fn wait_until_udp_bound(addr: SocketAddr, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let needle = format!(":{:04X} ", addr.port());
    while std::time::Instant::now() < deadline {
        let bound = ["/proc/net/udp", "/proc/net/udp6"].iter().any(|table| {
            std::fs::read_to_string(table)
                .map(|t| t.lines().skip(1).any(|l| l.split_whitespace().nth(1).is_some_and(|local| format!("{local} ").ends_with(&needle))))
                .unwrap_or(false)
        });
        if bound {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}
