//! The UDP transport: one socket for every transaction, with large kernel buffers so a
//! burst does not overflow them, and batch reads into one shared buffer (each datagram
//! becomes a zero-copy `Bytes` slice of it).

use std::io;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

/// Kernel buffer size requested for SIP sockets (the kernel may cap it at `rmem_max`).
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// Largest datagram.
const MAX_DATAGRAM: usize = 65_535;

/// Binds a UDP socket for SIP on `addr`.
pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Reads datagrams without waiting, appending them to `out`, until the socket is empty or
/// `max` were read. The datagrams share `buf`'s allocation.
pub fn read_batch(socket: &UdpSocket, buf: &mut BytesMut, max: usize, out: &mut Vec<(Bytes, SocketAddr)>) -> io::Result<()> {
    for _ in 0..max {
        if buf.capacity() - buf.len() < MAX_DATAGRAM {
            *buf = BytesMut::with_capacity(MAX_DATAGRAM * 8);
        }
        match socket.try_recv_buf_from(buf) {
            Ok((n, from)) => out.push((buf.split_to(n).freeze(), from)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            // ICMP errors surface as ConnectionRefused on some systems: not fatal for a server socket.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
