//! The RTP port pool: even ports for RTP, the odd port above each for RTCP, handed out
//! oldest-freed first so a port is not reused while late packets of its last call may still
//! arrive. A released pair keeps its bound sockets: the next call on that pair gets them
//! back (emptied of what arrived in between) instead of binding and closing two sockets per
//! leg, which was a tenth of the call path's CPU at thousands of calls per second.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use tokio::net::UdpSocket;

/// Why no port pair could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Every pair is in use, or could not be bound (another process holds the port, or
    /// the process is out of file descriptors: the last error says which).
    #[error("no free RTP port in {min}-{max}: {in_use} pairs in use, {unbindable} could not be bound{last_error}")]
    Exhausted { min: u16, max: u16, in_use: usize, unbindable: usize, last_error: String },
}

/// Free RTP ports (even; RTCP is the next odd port).
#[derive(Debug)]
pub struct PortPool {
    min: u16,
    max: u16,
    free: VecDeque<Free>,
    /// Whether each pair (by `(port - first) / 2`) is in `free`.
    pooled: Vec<bool>,
    first: u16,
}

/// A free pair, with its sockets (still registered with the runtime) when a call released
/// them.
#[derive(Debug)]
struct Free {
    port: u16,
    sockets: Option<[UdpSocket; 2]>,
}

/// The two sockets of one leg.
#[derive(Debug)]
pub struct PortPair {
    pub rtp_port: u16,
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

impl PortPool {
    /// Every even port in `min..=max` whose odd neighbour is in the range too.
    pub fn new(min: u16, max: u16) -> Self {
        let first = min + (min % 2);
        let free: VecDeque<Free> = (first..max).step_by(2).map(|port| Free { port, sockets: None }).collect();
        let pooled = vec![true; free.len()];
        PortPool { min, max, free, pooled, first }
    }

    pub fn free_pairs(&self) -> usize {
        self.free.len()
    }

    fn slot(&self, rtp_port: u16) -> Option<usize> {
        let in_range = (self.min..self.max).contains(&rtp_port) && rtp_port >= self.first && rtp_port.is_multiple_of(2);
        in_range.then(|| usize::from((rtp_port - self.first) / 2)).filter(|i| *i < self.pooled.len())
    }

    /// The next free pair on `ip`: its kept sockets, emptied, or newly bound ones. Ports
    /// another process holds are skipped (and kept for later).
    pub fn bind_pair(&mut self, ip: IpAddr) -> Result<PortPair, PortError> {
        let (mut unbindable, mut last_error) = (0, String::new());
        for _ in 0..self.free.len() {
            let Some(Free { port, sockets }) = self.free.pop_front() else { break };
            let pair = match sockets {
                Some([rtp, rtcp]) => Ok((emptied(rtp), emptied(rtcp))),
                None => bind(ip, port).and_then(|rtp| Ok((rtp, bind(ip, port + 1)?))),
            };
            match pair {
                Ok((rtp, rtcp)) => {
                    if let Some(i) = self.slot(port) {
                        self.pooled[i] = false;
                    }
                    return Ok(PortPair { rtp_port: port, rtp, rtcp });
                }
                Err(e) => {
                    (unbindable, last_error) = (unbindable + 1, format!(" ({e})"));
                    self.free.push_back(Free { port, sockets: None });
                }
            }
        }
        let in_use = self.pooled.iter().filter(|pooled| !**pooled).count();
        Err(PortError::Exhausted { min: self.min, max: self.max, in_use, unbindable, last_error })
    }

    /// Returns a pair to the pool with its sockets, to reuse.
    pub fn release(&mut self, pair: PortPair) {
        self.give_back(pair.rtp_port, Some([pair.rtp, pair.rtcp]));
    }

    /// Returns a pair's port to the pool, its sockets gone.
    pub fn release_port(&mut self, rtp_port: u16) {
        self.give_back(rtp_port, None);
    }

    fn give_back(&mut self, rtp_port: u16, sockets: Option<[UdpSocket; 2]>) {
        if let Some(i) = self.slot(rtp_port).filter(|i| !self.pooled[*i]) {
            self.pooled[i] = true;
            self.free.push_back(Free { port: rtp_port, sockets });
        }
    }
}

/// A kept socket for a new call: what arrived since its last call is discarded. Read
/// with plain non-blocking calls: the runtime's readiness flags of an idle socket are stale.
fn emptied(socket: UdpSocket) -> UdpSocket {
    let raw = socket2::SockRef::from(&socket);
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 64];
    while raw.recv_from(&mut buf).is_ok() {}
    socket
}

fn bind(ip: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let std = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
    std.set_nonblocking(true)?;
    UdpSocket::from_std(std)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pairs_are_even_odd_and_reused_oldest_first() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let base = 41_000;
        let mut pool = PortPool::new(base, base + 5);
        assert_eq!(pool.free_pairs(), 3, "{base}, {}, {}", base + 2, base + 4);
        let a = pool.bind_pair(ip).unwrap();
        let b = pool.bind_pair(ip).unwrap();
        let c = pool.bind_pair(ip).unwrap();
        assert_eq!((a.rtp_port % 2, a.rtcp.local_addr().unwrap().port()), (0, a.rtp_port + 1));
        let exhausted = PortError::Exhausted { min: base, max: base + 5, in_use: 3, unbindable: 0, last_error: String::new() };
        assert_eq!(pool.bind_pair(ip).unwrap_err(), exhausted);
        let (pa, pb) = (a.rtp_port, b.rtp_port);
        drop((a, c));
        pool.release(b);
        pool.release_port(pa);
        pool.release_port(pa);
        assert_eq!(pool.free_pairs(), 2, "a pair released twice is pooled once");
        assert_eq!(pool.bind_pair(ip).unwrap().rtp_port, pb);
        assert_eq!(pool.bind_pair(ip).unwrap().rtp_port, pa);
    }

    #[tokio::test]
    async fn a_reused_pair_keeps_its_sockets_and_drops_what_arrived_in_between() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let base = 41_100;
        let mut pool = PortPool::new(base, base + 1);
        let pair = pool.bind_pair(ip).unwrap();
        let addr = pair.rtp.local_addr().unwrap();
        pool.release(pair);
        // A late packet of the last call arrives while the pair is free.
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"late", addr).unwrap();
        // It is queued before the pair is reused (bounded wait for the loopback delivery).
        let probe = std::time::Instant::now();
        while queued(&pool) == 0 && probe.elapsed() < std::time::Duration::from_secs(2) {
            std::thread::yield_now();
        }
        let again = pool.bind_pair(ip).unwrap();
        assert_eq!(again.rtp.local_addr().unwrap(), addr, "the same socket");
        let mut raw = [std::mem::MaybeUninit::<u8>::uninit(); 16];
        let waiting = socket2::SockRef::from(&again.rtp).peek_from(&mut raw);
        assert_eq!(waiting.unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "the late packet was discarded");
        let mut buf = [0u8; 16];
        peer.send_to(b"new", addr).unwrap();
        again.rtp.readable().await.unwrap();
        assert_eq!(again.rtp.try_recv_from(&mut buf).unwrap().0, 3, "new packets arrive");
    }

    #[tokio::test]
    async fn a_port_another_process_holds_is_skipped_and_said_so() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let base = 41_200;
        let _held = std::net::UdpSocket::bind((ip, base + 1)).unwrap();
        let mut pool = PortPool::new(base, base + 3);
        let pair = pool.bind_pair(ip).unwrap();
        assert_eq!(pair.rtp_port, base + 2, "the pair whose RTCP port is held is skipped");
        let PortError::Exhausted { in_use, unbindable, last_error, .. } = pool.bind_pair(ip).unwrap_err();
        assert_eq!((in_use, unbindable), (1, 1));
        assert!(last_error.contains("in use"), "{last_error}");
    }

    /// Bytes waiting on the first pooled pair's RTP socket.
    fn queued(pool: &PortPool) -> usize {
        let Some(Some([rtp, _])) = pool.free.front().map(|f| f.sockets.as_ref()) else { return 0 };
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 16];
        socket2::SockRef::from(rtp).peek_from(&mut buf).map(|(n, _)| n).unwrap_or(0)
    }
}
