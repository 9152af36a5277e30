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
