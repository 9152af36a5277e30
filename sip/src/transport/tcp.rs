//! The TCP transport: accepted and outgoing connections, each with a reader that frames
//! messages (answering CRLFCRLF keep-alives) and closes after an idle period, and a writer
//! fed by a bounded queue, so a peer that stops reading fills only its own queue and is
//! disconnected instead of slowing anyone else down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};

use crate::message::framing::{Frame, FramingError, StreamFramer};

/// TCP settings.
#[derive(Debug, Clone, Copy)]
pub struct TcpConfig {
    /// Close a connection on which nothing arrived for this long.
    pub idle_timeout: Duration,
    /// Messages queued for one connection before it counts as stuck and is closed.
    pub write_queue: usize,
    pub connect_timeout: Duration,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig { idle_timeout: Duration::from_secs(300), write_queue: 1024, connect_timeout: Duration::from_secs(5) }
    }
}

/// A connection as the driver holds it.
#[derive(Clone)]
pub struct Connection {
    pub writer: mpsc::Sender<Bytes>,
    close: Arc<Notify>,
}

impl Connection {
    /// Asks the connection's tasks to stop.
    pub fn close(&self) {
        self.close.notify_one();
    }
}

/// What the TCP tasks tell the driver.
pub enum TcpEvent {
    Connected {
        peer: SocketAddr,
        connection: Connection,
    },
    Message {
        peer: SocketAddr,
        bytes: Bytes,
    },
    /// A message without Content-Length: its head, before the connection closes.
    Unframeable {
        peer: SocketAddr,
        head: Bytes,
    },
    Closed {
        peer: SocketAddr,
    },
    ConnectFailed {
        peer: SocketAddr,
    },
}

/// Accepts connections until the listener fails or the driver goes away.
/// A listening socket on `addr` (shared with other processes: `reuse_port`).
pub fn listen(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

pub async fn accept_loop(listener: TcpListener, events: mpsc::Sender<TcpEvent>, cfg: TcpConfig) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(run_connection(stream, peer, events.clone(), cfg));
            }
            Err(e) => {
                tracing::warn!(error = %e, "TCP accept failed");
                if events.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Opens a connection to `peer` in the background.
pub fn connect(peer: SocketAddr, events: mpsc::Sender<TcpEvent>, cfg: TcpConfig) {
    tokio::spawn(async move {
        match tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(peer)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                run_connection(stream, peer, events, cfg).await;
            }
            _ => {
                let _ = events.send(TcpEvent::ConnectFailed { peer }).await;
            }
        }
    });
}

async fn run_connection(stream: TcpStream, peer: SocketAddr, events: mpsc::Sender<TcpEvent>, cfg: TcpConfig) {
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(cfg.write_queue);
    let close = Arc::new(Notify::new());
    let connection = Connection { writer: tx.clone(), close: close.clone() };
    if events.send(TcpEvent::Connected { peer, connection }).await.is_err() {
        return;
    }
    let write_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut framer = StreamFramer::new();
    'read: loop {
        framer.buffer_mut().reserve(16 * 1024);
        let read = tokio::select! {
            r = tokio::time::timeout(cfg.idle_timeout, reader.read_buf(framer.buffer_mut())) => r,
            _ = close.notified() => break 'read,
        };
        match read {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => break 'read,
            Err(_) => {
                tracing::debug!(%peer, "closing idle TCP connection");
                break 'read;
            }
        }
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(bytes))) => {
                    if events.send(TcpEvent::Message { peer, bytes }).await.is_err() {
                        break 'read;
                    }
                }
                Ok(Some(Frame::Ping)) => {
                    let _ = tx.try_send(Bytes::from_static(b"\r\n"));
                }
                Ok(None) => break,
                Err(FramingError::MissingContentLength { head }) => {
                    let _ = events.send(TcpEvent::Unframeable { peer, head }).await;
                    break 'read;
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "closing TCP connection");
                    break 'read;
                }
            }
        }
    }
    drop(tx);
    let _ = events.send(TcpEvent::Closed { peer }).await;
    // Let queued answers (a 400 to an unframeable message) go out, then stop.
    let _ = tokio::time::timeout(Duration::from_secs(1), write_task).await;
}
