//! The endpoint driver: one task that owns the sans-IO [`TransactionLayer`], reads the UDP
//! socket in batches, receives framed TCP messages from the connection tasks, executes the
//! transaction user's commands, sends what the layer asks, hands its events on, and sleeps
//! until the layer's next timeout. It never waits on a network peer: UDP sends do not
//! block in practice and TCP writes go to per-connection bounded queues.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::EndpointStats;
use crate::message::Message;
use crate::transaction::{Event, Peer, TransactionLayer, Transmit, TransportKind, TxError, TxId};
use crate::transport::tcp::{self, Connection, TcpConfig, TcpEvent};
use crate::transport::udp;

/// What the transaction user asks of the driver.
pub(crate) enum Command {
    SendRequest { request: Message, peer: Peer, reply: oneshot::Sender<Result<TxId, TxError>> },
    Respond { tx: TxId, response: Message },
    Cancel { tx: TxId, reply: oneshot::Sender<Result<Option<TxId>, TxError>> },
    SendAck { invite_tx: Option<TxId>, ack: Message, peer: Peer },
    SendStateless { message: Message, peer: Peer },
    Inject { datagram: Bytes, peer: Peer },
    Stats { reply: oneshot::Sender<EndpointStats> },
}

pub(crate) struct Driver {
    pub layer: TransactionLayer,
    pub udp: Option<UdpSocket>,
    pub tcp_events: mpsc::Receiver<TcpEvent>,
    pub tcp_events_tx: mpsc::Sender<TcpEvent>,
    pub tcp_cfg: TcpConfig,
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub events: mpsc::Sender<Event>,
    pub connections: HashMap<SocketAddr, Connection>,
    /// Messages waiting for an outgoing connection to open.
    pub connecting: HashMap<SocketAddr, Vec<(Bytes, Option<TxId>)>>,
    pub stats: EndpointStats,
    pub listener_task: Option<tokio::task::JoinHandle<()>>,
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

async fn readable(socket: &Option<UdpSocket>) -> std::io::Result<()> {
    match socket {
        Some(s) => s.readable().await,
        None => std::future::pending().await,
    }
}

impl Driver {
    pub async fn run(mut self) {
        let mut buf = BytesMut::new();
        let mut batch = Vec::with_capacity(64);
        loop {
            let deadline = self.layer.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                cmd = self.commands.recv() => {
                    let Some(cmd) = cmd else { break };
                    self.on_command(cmd);
                    while let Ok(cmd) = self.commands.try_recv() {
                        self.on_command(cmd);
                    }
                }
                ready = readable(&self.udp) => {
                    if ready.is_ok() {
                        if let Some(socket) = &self.udp
                            && let Err(e) = udp::read_batch(socket, &mut buf, 64, &mut batch) {
                                tracing::warn!(error = %e, "UDP receive failed");
                            }
                        let t = now();
                        for (bytes, from) in batch.drain(..) {
                            self.stats.udp_received += 1;
                            self.layer.handle_datagram(bytes, Peer::udp(from), t);
                        }
                    }
                }
                Some(ev) = self.tcp_events.recv() => self.on_tcp(ev),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                    self.layer.handle_timeout(now());
                }
            }
            self.flush().await;
        }
        if let Some(t) = &self.listener_task {
            t.abort();
        }
        for c in self.connections.values() {
            c.close();
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let t = now();
        match cmd {
            Command::SendRequest { request, peer, reply } => {
                let _ = reply.send(self.layer.send_request(request, peer, t));
            }
            Command::Respond { tx, response } => {
                if let Err(e) = self.layer.respond(tx, response, t) {
                    self.stats.command_errors += 1;
                    tracing::debug!(%tx, error = %e, "response not sent");
                }
            }
            Command::Cancel { tx, reply } => {
                let _ = reply.send(self.layer.cancel(tx, t));
            }
            Command::SendAck { invite_tx, ack, peer } => self.layer.send_ack(invite_tx, &ack, peer),
            Command::SendStateless { message, peer } => self.layer.send_stateless(&message, peer),
            Command::Inject { datagram, peer } => self.layer.handle_datagram(datagram, peer, t),
            Command::Stats { reply } => {
                let _ = reply.send(EndpointStats {
                    transactions: self.layer.stats(),
                    tcp_connections: self.connections.len(),
                    ..self.stats
                });
            }
        }
    }

    fn on_tcp(&mut self, ev: TcpEvent) {
        match ev {
            TcpEvent::Connected { peer, connection } => {
                for (bytes, tx) in self.connecting.remove(&peer).unwrap_or_default() {
                    self.write_tcp(&connection, peer, bytes, tx);
                }
                self.connections.insert(peer, connection);
            }
            TcpEvent::Message { peer, bytes } => {
                self.stats.tcp_received += 1;
                self.layer.handle_stream_message(bytes, Peer::tcp(peer), now());
            }
            TcpEvent::Unframeable { peer, head } => self.layer.handle_unframeable(head, Peer::tcp(peer)),
            TcpEvent::Closed { peer } => {
                self.connections.remove(&peer);
            }
            TcpEvent::ConnectFailed { peer } => {
                for (_, tx) in self.connecting.remove(&peer).unwrap_or_default() {
                    self.stats.send_errors += 1;
                    if let Some(tx) = tx {
                        self.layer.handle_transport_error(tx);
                    }
                }
            }
        }
    }

    /// Sends every transmit and delivers every event, until the layer has nothing left
    /// (a transport error can produce more of both).
    async fn flush(&mut self) {
        loop {
            let mut idle = true;
            while let Some(t) = self.layer.poll_transmit() {
                idle = false;
                self.transmit(t).await;
            }
            while let Some(e) = self.layer.poll_event() {
                idle = false;
                if self.events.send(e).await.is_err() {
                    tracing::debug!("event dropped: the transaction user is gone");
                }
            }
            if idle {
                return;
            }
        }
    }

    async fn transmit(&mut self, t: Transmit) {
        match t.peer.transport {
            TransportKind::Udp => {
                let Some(socket) = &self.udp else {
                    return self.send_failed(t.tx);
                };
                let sent = match socket.try_send_to(&t.payload, t.peer.addr) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => socket.send_to(&t.payload, t.peer.addr).await,
                    other => other,
                };
                match sent {
                    Ok(_) => self.stats.udp_sent += 1,
                    Err(e) => {
                        tracing::debug!(peer = %t.peer.addr, error = %e, "UDP send failed");
                        self.send_failed(t.tx);
                    }
                }
            }
            TransportKind::Tcp => match self.connections.get(&t.peer.addr).cloned() {
                Some(c) => self.write_tcp(&c, t.peer.addr, t.payload, t.tx),
                None => {
                    let queue = self.connecting.entry(t.peer.addr).or_default();
                    if queue.is_empty() {
                        tcp::connect(t.peer.addr, self.tcp_events_tx.clone(), self.tcp_cfg);
                    }
                    queue.push((t.payload, t.tx));
                }
            },
        }
    }

    fn write_tcp(&mut self, c: &Connection, peer: SocketAddr, bytes: Bytes, tx: Option<TxId>) {
        match c.writer.try_send(bytes) {
            Ok(()) => self.stats.tcp_sent += 1,
            Err(e) => {
                if matches!(e, mpsc::error::TrySendError::Full(_)) {
                    tracing::warn!(%peer, "TCP peer is not reading: closing the connection");
                    c.close();
                }
                self.connections.remove(&peer);
                self.send_failed(tx);
            }
        }
    }

    fn send_failed(&mut self, tx: Option<TxId>) {
        self.stats.send_errors += 1;
        if let Some(tx) = tx {
            self.layer.handle_transport_error(tx);
        }
    }
}
