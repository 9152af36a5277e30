//! The blaster's RTP: every call has two sides (A, the caller, and B, the callee), each
//! sending a 20 ms packet every 20 ms toward the relay and receiving what the relay sends
//! back. Sides share a few sockets per direction (a relay sends to the source it latched,
//! so a socket both sends a group's packets and receives the replies); a packet is told
//! apart by its SSRC. At the receiver: packets, loss from sequence numbers (RFC 3550 A.3,
//! per stream), and inter-arrival jitter (A.8).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Sockets per side (A or B).
pub const SOCKETS: usize = 4;

/// What one side of one call sends: payload type, payload, and where to.
#[derive(Clone)]
pub struct Stream {
    pub to: SocketAddr,
    pub payload_type: u8,
    pub payload: Arc<Vec<u8>>,
    /// Timestamp units per 20 ms packet (160 for G.711, 960 for Opus).
    pub ts_step: u32,
}

/// The SSRC of call `call`'s side `side` (0: A, 1: B).
pub fn ssrc(call: usize, side: usize) -> u32 {
    0x4200_0000 | (call as u32) << 1 | side as u32
}

/// A side's sockets: 127.0.0.1, large receive buffers.
pub fn sockets() -> anyhow::Result<Vec<Arc<UdpSocket>>> {
    (0..SOCKETS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0")?;
            s.set_read_timeout(Some(Duration::from_millis(100)))?;
            set_buffers(&s);
            Ok(Arc::new(s))
        })
        .collect()
}

fn set_buffers(s: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 8 << 20;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: a valid socket and a pointer to an int of the size given.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Sends every stream's next packet every 20 ms until `stop`: stream `i` of `streams[side]`
/// from `sockets[side][i % SOCKETS]`.
pub fn send(sockets: [Vec<Arc<UdpSocket>>; 2], streams: [Vec<Stream>; 2], stop: Arc<AtomicBool>) -> u64 {
    let mut sent = 0u64;
    let mut packet = vec![0u8; 1500];
    let start = Instant::now();
    let mut tick = 0u32;
    while !stop.load(Ordering::Relaxed) {
        for side in 0..2 {
            for (call, s) in streams[side].iter().enumerate() {
                let n = 12 + s.payload.len();
                packet[0] = 0x80;
                packet[1] = s.payload_type;
                packet[2..4].copy_from_slice(&(tick as u16).to_be_bytes());
                packet[4..8].copy_from_slice(&tick.wrapping_mul(s.ts_step).to_be_bytes());
                packet[8..12].copy_from_slice(&ssrc(call, side).to_be_bytes());
                packet[12..n].copy_from_slice(&s.payload);
                if sockets[side][call % SOCKETS].send_to(&packet[..n], s.to).is_ok() {
                    sent += 1;
                }
            }
        }
        tick += 1;
        let next = start + Duration::from_millis(20) * tick;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    sent
}

/// What arrived on one stream.
#[derive(Debug, Default, Clone, Copy)]
struct Received {
    packets: u64,
    first_seq: Option<u16>,
    /// Extended highest sequence number.
    highest: u32,
    last_arrival: Option<(Instant, u32)>,
    jitter: f64,
}

/// Totals over every stream a receiver saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub packets: u64,
    pub expected: u64,
    pub jitter_ms_sum: f64,
    pub streams: u64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.packets += other.packets;
        self.expected += other.expected;
        self.jitter_ms_sum += other.jitter_ms_sum;
        self.streams += other.streams;
    }

    pub fn loss_percent(&self) -> f64 {
        if self.expected == 0 { 0.0 } else { 100.0 * self.expected.saturating_sub(self.packets) as f64 / self.expected as f64 }
    }

    pub fn mean_jitter_ms(&self) -> f64 {
        if self.streams == 0 { 0.0 } else { self.jitter_ms_sum / self.streams as f64 }
    }
}

/// Reads `socket` until `stop`; counts only while `counting` (the measured window).
pub fn receive(socket: Arc<UdpSocket>, clock_rate: u32, counting: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> Tally {
    let mut streams: HashMap<u32, Received> = HashMap::new();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, _)) = socket.recv_from(&mut buf) else { continue };
        if n < 12 || !counting.load(Ordering::Relaxed) {
            continue;
        }
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let now = Instant::now();
        let r = streams.entry(ssrc).or_default();
        r.packets += 1;
        let first = *r.first_seq.get_or_insert(seq);
        let offset = u32::from(seq.wrapping_sub(first));
        let cycles = r.highest & 0xffff_0000;
        let mut extended = cycles | offset;
        if extended + 0x8000 < r.highest {
            extended += 0x1_0000;
        }
        r.highest = r.highest.max(extended);
        if let Some((then, then_ts)) = r.last_arrival {
            let transit =
                now.duration_since(then).as_secs_f64() * f64::from(clock_rate) - f64::from(ts.wrapping_sub(then_ts) as i32);
            r.jitter += (transit.abs() - r.jitter) / 16.0;
        }
        r.last_arrival = Some((now, ts));
    }
    let mut tally = Tally::default();
    for r in streams.values() {
        tally.packets += r.packets;
        tally.expected += u64::from(r.highest) + 1;
        tally.jitter_ms_sum += r.jitter * 1000.0 / f64::from(clock_rate);
        tally.streams += 1;
    }
    tally
}
