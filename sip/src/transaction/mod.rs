//! RFC 3261 §17 transactions, sans-IO, in the shape of quinn-proto.
//!
//! [`TransactionLayer`] owns every client and server transaction of an endpoint. It never
//! touches a socket or a clock: the driver feeds it what arrives and the current time, and
//! polls it for what to do. After any call that takes input, a driver should:
//!
//! 1. send everything [`TransactionLayer::poll_transmit`] returns;
//! 2. hand every [`TransactionLayer::poll_event`] to the transaction user;
//! 3. sleep until [`TransactionLayer::poll_timeout`] (or new input), then call
//!    [`TransactionLayer::handle_timeout`] with the time it woke.
//!
//! Inputs are [`TransactionLayer::handle_datagram`] / [`TransactionLayer::handle_stream_message`]
//! from the network and the transaction-user commands (`send_request`, `respond`,
//! `cancel`, `send_ack`). Tests drive the same calls with a virtual clock.

mod client;
mod config;
mod derived;
mod key;
mod layer;
mod server;
pub mod timer;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::message::Message;

pub use self::config::{Config, Stats, TxError};
pub use self::derived::{ack_for_failure, cancel_for};
pub use self::key::{new_branch, new_tag};
pub use self::layer::TransactionLayer;
pub use self::timer::{Timer, TimerConfig};

/// Identifies one transaction of a [`TransactionLayer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub(crate) u64);

impl TxId {
    /// The id as a number, to carry it across processes (an edge's transactions are
    /// addressed by the commands other nodes send it).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    pub fn from_u64(n: u64) -> TxId {
        TxId(n)
    }
}

impl std::fmt::Display for TxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tx{}", self.0)
    }
}

/// The transport of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Udp,
    Tcp,
}

impl TransportKind {
    pub fn is_reliable(self) -> bool {
        matches!(self, TransportKind::Tcp)
    }

    /// The `Via` transport token.
    pub fn via_name(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
        }
    }
}

/// The far end of a flow: where a message came from or goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: TransportKind,
    pub addr: SocketAddr,
}

impl Peer {
    pub fn udp(addr: SocketAddr) -> Peer {
        Peer { transport: TransportKind::Udp, addr }
    }
    pub fn tcp(addr: SocketAddr) -> Peer {
        Peer { transport: TransportKind::Tcp, addr }
    }
}

/// Bytes to send.
#[derive(Clone, Debug)]
pub struct Transmit {
    pub peer: Peer,
    pub payload: Bytes,
    /// The transaction that sent it, to report a transport failure back.
    pub tx: Option<TxId>,
}

/// Whether `response` is a 2xx to an INVITE (which a dialog takes, even with no
/// transaction left: RFC 3261 §13.2.2.4).
pub fn is_invite_2xx(response: &Message) -> bool {
    matches!(response.status(), Some(200..=299)) && response.method() == Some(&crate::message::Method::Invite)
}

/// What the transaction layer tells its user.
#[derive(Clone, Debug)]
pub enum Event {
    /// A new request created server transaction `tx` (not ACK, not CANCEL).
    Request { tx: TxId, request: Message, peer: Peer },
    /// The INVITE of server transaction `tx` was cancelled; the layer answered the CANCEL
    /// with 200. Unless a final response was sent already, answer the INVITE with 487.
    Cancelled { tx: TxId },
    /// An ACK that is not part of a non-2xx INVITE transaction: the ACK for a 2xx. `tx` is
    /// the INVITE transaction whose 2xx it acknowledges, when known.
    Ack { tx: Option<TxId>, request: Message, peer: Peer },
    /// A response on client transaction `tx` (2xx retransmissions included, see
    /// [`TransactionLayer::send_ack`]).
    Response { tx: TxId, response: Message },
    /// A response that matches no transaction: a 2xx from another fork after the INVITE
    /// transaction ended, or any response to a request another endpoint sharing our
    /// address sent (the kernel gives a peer's datagrams to one of the sockets of a
    /// `SO_REUSEPORT` address). Its user decides: [`is_invite_2xx`] ones are a dialog's.
    StrayResponse { response: Message, peer: Peer },
    /// Client: Timer B or F, no final response arrived. Server: Timer H, the ACK for a
    /// failure response never arrived.
    Timeout { tx: TxId },
    /// A 2xx we sent on `tx` was not acknowledged within 64·T1 (§13.3.1.4): the session
    /// should be ended with BYE.
    AckTimeout { tx: TxId },
    /// The transport could not deliver a message of `tx`.
    TransportError { tx: TxId },
}

/// Output queues shared by every transaction of a layer.
#[derive(Default)]
pub(crate) struct Outputs {
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<Event>,
    pub queue: BinaryHeap<Reverse<(Instant, TxId)>>,
    pub retransmissions: u64,
}

impl Outputs {
    pub fn send(&mut self, peer: Peer, payload: Bytes, tx: TxId) {
        self.transmits.push_back(Transmit { peer, payload, tx: Some(tx) });
    }

    pub fn resend(&mut self, peer: Peer, payload: Bytes, tx: TxId) {
        self.retransmissions += 1;
        self.send(peer, payload, tx);
    }

    pub fn event(&mut self, e: Event) {
        self.events.push_back(e);
    }

    /// Makes the layer look at `tx` again at `at`.
    pub fn wake(&mut self, at: Instant, tx: TxId) {
        self.queue.push(Reverse((at, tx)));
    }
}
