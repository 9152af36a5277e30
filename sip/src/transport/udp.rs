//! The UDP transport: one socket for every transaction, with large kernel buffers so a
//! burst does not overflow them, and batch reads through one scratch buffer. Each datagram
//! is copied out into its own exact-size `Bytes` (parsed zero-copy from there): a slice of
//! a shared buffer would keep the whole buffer alive for as long as any transaction keeps
//! one message of it (up to 32 s), which at thousands of calls per second pinned hundreds
//! of megabytes.

use std::io;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

/// Kernel buffer size requested for SIP sockets (the kernel may cap it at `rmem_max`).
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// Largest datagram.
const MAX_DATAGRAM: usize = 65_535;

/// Binds a UDP socket for SIP on `addr` (shared with other processes: `reuse_port`).
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Reads datagrams without waiting, appending them to `out`, until the socket is empty or
/// `max` were read. `buf` is scratch space, reused.
pub fn read_batch(socket: &UdpSocket, buf: &mut BytesMut, max: usize, out: &mut Vec<(Bytes, SocketAddr)>) -> io::Result<()> {
    for _ in 0..max {
        buf.clear();
        buf.reserve(MAX_DATAGRAM);
        match socket.try_recv_buf_from(buf) {
            Ok((n, from)) => out.push((Bytes::copy_from_slice(&buf[..n]), from)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            // ICMP errors surface as ConnectionRefused on some systems: not fatal for a server socket.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
