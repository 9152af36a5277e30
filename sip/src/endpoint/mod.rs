//! A SIP endpoint on tokio: UDP and/or TCP transports, the transaction layer, and a handle
//! through which a transaction user sends requests and responses while it reads events.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use sip::endpoint::{Endpoint, EndpointConfig};
//! use sip::message::Builder;
//! use sip::transaction::Event;
//!
//! let mut endpoint = Endpoint::bind(EndpointConfig::udp("127.0.0.1:5060".parse().unwrap())).await?;
//! let handle = endpoint.handle();
//! while let Some(event) = endpoint.next_event().await {
//!     if let Event::Request { tx, request, .. } = event {
//!         let ok = Builder::response_to(&request, 200, "", Some("tag1")).build().unwrap();
//!         handle.respond(tx, ok);
//!     }
//! }
//! # Ok(()) }
//! ```

mod driver;
mod resolve;

pub use self::resolve::peer_for_uri;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};

use self::driver::{Command, Driver};
use crate::message::{Host, HostPort, Message, Transport, Via};
use crate::transaction::{self, Event, Peer, TransactionLayer, TransportKind, TxError, TxId, new_branch};
use crate::transport::{TcpConfig, advertised_ip, tcp, udp};

/// What to bind and how to behave.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub udp: Option<SocketAddr>,
    /// With port 0 and UDP configured, TCP takes the port UDP got.
    pub tcp: Option<SocketAddr>,
    pub transactions: transaction::Config,
    pub tcp_settings: TcpConfig,
    /// Events buffered for a transaction user that falls behind.
    pub event_capacity: usize,
    /// The host put in Via sent-by (and offered for Contact): an address or a name peers
    /// reach us at. When `None`, the bound address — or, bound to `0.0.0.0` / `::`, this
    /// host's interface address ([`advertised_ip`]): never the unspecified address.
    pub advertise: Option<Host>,
    /// Bind with `SO_REUSEPORT`: several processes share one address (the kernel spreads
    /// peers among their sockets, and moves a dead one's peers to the others).
    pub reuse_port: bool,
}

impl EndpointConfig {
    pub fn udp(addr: SocketAddr) -> Self {
        EndpointConfig { udp: Some(addr), tcp: None, ..Self::default() }
    }

    pub fn udp_and_tcp(addr: SocketAddr) -> Self {
        EndpointConfig { udp: Some(addr), tcp: Some(addr), ..Self::default() }
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            udp: None,
            tcp: None,
            transactions: transaction::Config::default(),
            tcp_settings: TcpConfig::default(),
            event_capacity: 16 * 1024,
            advertise: None,
            reuse_port: false,
        }
    }
}

/// Counters of an endpoint.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EndpointStats {
    pub transactions: transaction::Stats,
    pub udp_received: u64,
    pub udp_sent: u64,
    pub tcp_received: u64,
    pub tcp_sent: u64,
    pub tcp_connections: usize,
    pub send_errors: u64,
    /// Responses the transaction layer refused (e.g. a second final response).
    pub command_errors: u64,
}

/// The endpoint's driver task is gone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("the endpoint has shut down")]
    Closed,
    #[error(transparent)]
    Transaction(#[from] TxError),
}

/// Sends requests and responses through an endpoint. Cheap to clone.
#[derive(Clone)]
pub struct EndpointHandle {
    commands: mpsc::UnboundedSender<Command>,
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    /// The host of our sent-by and Contact addresses.
    advertise: Host,
}

/// A running endpoint: its handle and its stream of events. The endpoint shuts down when
/// the last handle (this one's included) is dropped.
pub struct Endpoint {
    handle: EndpointHandle,
    events: mpsc::Receiver<Event>,
}

impl Endpoint {
    /// Binds the transports and starts the driver.
    pub async fn bind(config: EndpointConfig) -> io::Result<Endpoint> {
        let (udp_socket, listener) = bind_sockets(&config).await?;
        let udp_addr = udp_socket.as_ref().map(|s| s.local_addr()).transpose()?;
        let tcp_addr = listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let (tcp_events_tx, tcp_events) = mpsc::channel(4096);
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::channel(config.event_capacity);
        let listener_task = listener.map(|l| tokio::spawn(tcp::accept_loop(l, tcp_events_tx.clone(), config.tcp_settings)));
        let driver = Driver {
            layer: TransactionLayer::new(config.transactions),
            udp: udp_socket,
            tcp_events,
            tcp_events_tx,
            tcp_cfg: config.tcp_settings,
            commands,
            events: events_tx,
            connections: HashMap::new(),
            connecting: HashMap::new(),
            stats: EndpointStats::default(),
            listener_task,
        };
        tokio::spawn(driver.run());
        let bound = udp_addr.or(tcp_addr).map(|a| a.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let advertise = config.advertise.unwrap_or_else(|| advertised_ip(bound).into());
        let handle = EndpointHandle { commands: commands_tx, udp: udp_addr, tcp: tcp_addr, advertise };
        Ok(Endpoint { handle, events })
    }

    pub fn handle(&self) -> EndpointHandle {
        self.handle.clone()
    }

    /// The next event; `None` once the endpoint has shut down.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// The next event, waiting at most `timeout`.
    pub async fn next_event_within(&mut self, timeout: Duration) -> Option<Event> {
        tokio::time::timeout(timeout, self.events.recv()).await.ok().flatten()
    }

    /// Splits into the handle and the event receiver.
    pub fn into_parts(self) -> (EndpointHandle, mpsc::Receiver<Event>) {
        (self.handle, self.events)
    }
}

/// Binds UDP, then TCP. When both ask for any port (0), TCP takes the port UDP got; if that
/// port is taken for TCP, UDP tries another one (a few times) rather than failing.
async fn bind_sockets(config: &EndpointConfig) -> io::Result<(Option<UdpSocket>, Option<TcpListener>)> {
    const ATTEMPTS: usize = 8;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp_socket = config.udp.map(|a| udp::bind(a, config.reuse_port)).transpose()?;
        let udp_addr = udp_socket.as_ref().map(|s| s.local_addr()).transpose()?;
        let Some(mut addr) = config.tcp else { return Ok((udp_socket, None)) };
        let shared_port = addr.port() == 0 && config.udp.is_some_and(|u| u.port() == 0);
        if let (0, Some(u)) = (addr.port(), udp_addr) {
            addr.set_port(u.port());
        }
        match tcp::listen(addr, config.reuse_port) {
            Ok(listener) => return Ok((udp_socket, Some(listener))),
            Err(e) if shared_port && e.kind() == io::ErrorKind::AddrInUse && attempt < ATTEMPTS => {}
            Err(e) => return Err(e),
        }
    }
}

impl EndpointHandle {
    /// The bound address of a transport.
    pub fn local_addr(&self, transport: TransportKind) -> Option<SocketAddr> {
        match transport {
            TransportKind::Udp => self.udp,
            TransportKind::Tcp => self.tcp,
        }
    }

    /// Where peers reach us on `transport`: the advertised host and the bound port. What
    /// Via sent-by and Contact carry.
    pub fn sent_by(&self, transport: TransportKind) -> HostPort {
        let port = self.local_addr(transport).or(self.udp).or(self.tcp).map_or(5060, |a| a.port());
        HostPort::new(self.advertise.clone(), Some(port))
    }

    /// A `Via` for a new request on `transport`, with a fresh branch and `rport`.
    pub fn via(&self, transport: TransportKind) -> Via {
        self.via_with_branch(transport, &new_branch())
    }

    /// [`EndpointHandle::via`] with a fresh branch that ends in `.{mark}` (processes
    /// sharing one address tell their requests' responses apart by it).
    pub fn via_marked(&self, transport: TransportKind, mark: &str) -> Via {
        self.via_with_branch(transport, &format!("{}.{mark}", new_branch()))
    }

    fn via_with_branch(&self, transport: TransportKind, branch: &str) -> Via {
        let t = match transport {
            TransportKind::Udp => Transport::Udp,
            TransportKind::Tcp => Transport::Tcp,
        };
        Via::new(t, self.sent_by(transport), branch)
    }

    fn send(&self, cmd: Command) -> Result<(), EndpointError> {
        self.commands.send(cmd).map_err(|_| EndpointError::Closed)
    }

    /// Starts a client transaction.
    pub async fn send_request(&self, request: Message, peer: Peer) -> Result<TxId, EndpointError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::SendRequest { request, peer, reply })?;
        Ok(rx.await.map_err(|_| EndpointError::Closed)??)
    }

    /// Sends a response on a server transaction (errors are counted in the stats).
    pub fn respond(&self, tx: TxId, response: Message) -> Result<(), EndpointError> {
        self.send(Command::Respond { tx, response })
    }

    /// Cancels an INVITE client transaction (§9.1).
    pub async fn cancel(&self, tx: TxId) -> Result<Option<TxId>, EndpointError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Cancel { tx, reply })?;
        Ok(rx.await.map_err(|_| EndpointError::Closed)??)
    }

    /// Sends the ACK for a 2xx; see [`TransactionLayer::send_ack`].
    pub fn send_ack(&self, invite_tx: Option<TxId>, ack: Message, peer: Peer) -> Result<(), EndpointError> {
        self.send(Command::SendAck { invite_tx, ack, peer })
    }

    /// Takes `datagram` as if it had arrived from `peer` over UDP (another process sharing
    /// our address received a response to a request we sent).
    pub fn inject(&self, datagram: bytes::Bytes, peer: Peer) -> Result<(), EndpointError> {
        self.send(Command::Inject { datagram, peer })
    }

    /// Sends a message outside any transaction.
    pub fn send_stateless(&self, message: Message, peer: Peer) -> Result<(), EndpointError> {
        self.send(Command::SendStateless { message, peer })
    }

    pub async fn stats(&self) -> Result<EndpointStats, EndpointError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Stats { reply })?;
        rx.await.map_err(|_| EndpointError::Closed)
    }
}
