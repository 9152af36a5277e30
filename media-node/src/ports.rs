//! The RTP port pool: even ports for RTP, the odd port above each for RTCP, handed out
//! oldest-freed first so a port is not reused while late packets of its last call may still
//! arrive.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use tokio::net::UdpSocket;

/// Why no port pair could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("no free RTP port in {min}-{max}")]
    Exhausted { min: u16, max: u16 },
}

/// Free RTP ports (even; RTCP is the next odd port).
#[derive(Debug)]
pub struct PortPool {
    min: u16,
    max: u16,
    free: VecDeque<u16>,
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
        let free = (first..max).step_by(2).collect();
        PortPool { min, max, free }
    }

    pub fn free_pairs(&self) -> usize {
        self.free.len()
    }

    /// Binds the next free pair on `ip`. Ports another process holds are skipped (and
    /// kept for later).
    pub fn bind_pair(&mut self, ip: IpAddr) -> Result<PortPair, PortError> {
        for _ in 0..self.free.len() {
            let Some(port) = self.free.pop_front() else { break };
            match (bind(ip, port), bind(ip, port + 1)) {
                (Ok(rtp), Ok(rtcp)) => return Ok(PortPair { rtp_port: port, rtp, rtcp }),
                _ => self.free.push_back(port),
            }
        }
        Err(PortError::Exhausted { min: self.min, max: self.max })
    }

    /// Returns a pair to the pool (its sockets must be dropped).
    pub fn release(&mut self, rtp_port: u16) {
        if (self.min..self.max).contains(&rtp_port) && !self.free.contains(&rtp_port) {
            self.free.push_back(rtp_port);
        }
    }
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
        assert_eq!(pool.bind_pair(ip).unwrap_err(), PortError::Exhausted { min: base, max: base + 5 });
        let (pa, pb) = (a.rtp_port, b.rtp_port);
        drop((a, b, c));
        pool.release(pb);
        pool.release(pa);
        assert_eq!(pool.bind_pair(ip).unwrap().rtp_port, pb);
    }
}
