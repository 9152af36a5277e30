//! The transaction layer: every transaction of an endpoint, the indexes that match incoming
//! messages to them (§17.1.3, §17.2.3), request validation with precise refusals, CANCEL
//! handling (§9.2), and the timer queue. See the module documentation for driving order.
//! The transaction user's commands are in `commands.rs`.

mod commands;

use std::cmp::Reverse;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::client::{AfterResponse, ClientState, ClientTx};
use super::config::{Config, Stats};
use super::key::{ClientKey, ServerKey, new_tag};
use super::server::{ServerState, ServerTx};
use super::{Event, Outputs, Peer, Transmit, TxId};
use crate::message::validate::{Rejection, validate_request, validate_response};
use crate::message::{Builder, Message, Method, ParseError};
use crate::shard_map::ShardedMap;

/// The identity an ACK for a 2xx carries: Call-ID, CSeq number and From tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct AckKey(Box<str>, u32, Box<str>);

impl AckKey {
    fn of(m: &Message) -> Option<AckKey> {
        Some(AckKey(m.call_id()?.into(), m.cseq()?.0, m.from_tag().unwrap_or_default().into()))
    }
}

pub(super) struct ServerEntry {
    key: ServerKey,
    tx: ServerTx,
    ack_key: Option<AckKey>,
    /// Our To tag, from the responses sent (reused in the 200 to a CANCEL).
    local_tag: Option<Box<str>>,
}

pub(super) struct ClientEntry {
    key: ClientKey,
    tx: ClientTx,
}

/// Every transaction of one endpoint.
pub struct TransactionLayer {
    config: Config,
    next_id: u64,
    // Hundreds of thousands live at once at high call rates (64·T1 each): entries are boxed
    // so growing a table moves pointers, and tables are sharded so it never stalls the loop.
    clients: ShardedMap<TxId, Box<ClientEntry>>,
    client_index: ShardedMap<ClientKey, TxId>,
    servers: ShardedMap<TxId, Box<ServerEntry>>,
    server_index: ShardedMap<ServerKey, TxId>,
    acks: ShardedMap<AckKey, TxId>,
    out: Outputs,
    stats: Stats,
}

/// Where responses to `request` go (§18.2.2, RFC 3581 `rport`).
fn response_peer(request: &Message, source: Peer) -> Peer {
    if source.transport.is_reliable() {
        return source;
    }
    let port = match request.top_via() {
        Some(v) if v.rport => source.addr.port(),
        Some(v) => v.port.unwrap_or(5060),
        None => source.addr.port(),
    };
    Peer { transport: source.transport, addr: SocketAddr::new(source.addr.ip(), port) }
}

fn rejection_response(request: &Message, rejection: &Rejection) -> Result<Message, ParseError> {
    let mut b = Builder::response_to(request, rejection.status, &rejection.reason, Some(&new_tag()));
    if let Some((name, value)) = &rejection.header {
        b = b.header(*name, value);
    }
    b.build()
}

impl TransactionLayer {
    pub fn new(config: Config) -> Self {
        TransactionLayer {
            config,
            next_id: 1,
            clients: ShardedMap::new(),
            client_index: ShardedMap::new(),
            servers: ShardedMap::new(),
            server_index: ShardedMap::new(),
            acks: ShardedMap::new(),
            out: Outputs::default(),
            stats: Stats::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn stats(&self) -> Stats {
        Stats {
            retransmissions_sent: self.out.retransmissions,
            client_transactions: self.clients.len(),
            server_transactions: self.servers.len(),
            ..self.stats
        }
    }

    fn new_id(&mut self) -> TxId {
        self.next_id += 1;
        TxId(self.next_id)
    }

    /// The next datagram or stream write to perform.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next event for the transaction user.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// When [`TransactionLayer::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.out.queue.peek().map(|Reverse((at, _))| *at)
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.out.queue.peek().copied() {
            if at > now {
                break;
            }
            self.out.queue.pop();
            let cfg = self.config.timers;
            if let Some(e) = self.clients.get_mut(&id) {
                while let Some(t) = e.tx.timers.pop_expired(now) {
                    e.tx.on_timer(t, now, &cfg, &mut self.out);
                }
            } else if let Some(e) = self.servers.get_mut(&id) {
                while let Some(t) = e.tx.timers.pop_expired(now) {
                    e.tx.on_timer(t, now, &cfg, &mut self.out);
                }
            }
            self.cleanup(id);
        }
    }

    /// A UDP datagram arrived from `source`.
    pub fn handle_datagram(&mut self, bytes: Bytes, source: Peer, now: Instant) {
        match Message::parse_datagram(bytes) {
            Ok(m) => self.handle_message(m, source, now),
            Err(e) => self.on_parse_error(e, source),
        }
    }

    /// A message cut from a stream by `StreamFramer` arrived from `source`.
    pub fn handle_stream_message(&mut self, bytes: Bytes, source: Peer, now: Instant) {
        match Message::parse_stream_message(bytes) {
            Ok(m) => self.handle_message(m, source, now),
            Err(e) => self.on_parse_error(e, source),
        }
    }

    /// The head of a stream message that cannot be framed (no Content-Length): a request is
    /// answered with 400 before the driver closes the connection.
    pub fn handle_unframeable(&mut self, head: Bytes, source: Peer) {
        match Message::parse_datagram(head) {
            Ok(m) => self.reject_stateless(&m, source, 400, "Missing Content-Length"),
            Err(e) => self.on_parse_error(e, source),
        }
    }

    fn on_parse_error(&mut self, error: ParseError, source: Peer) {
        match &error {
            ParseError::Truncated { partial, .. } | ParseError::MalformedHeaderLine { partial, .. } => {
                self.reject_stateless(partial, source, 400, &error.reason_phrase())
            }
            _ => self.stats.messages_dropped += 1,
        }
    }

    /// Answers a request outside any transaction (it could not be parsed whole).
    fn reject_stateless(&mut self, request: &Message, source: Peer, status: u16, reason: &str) {
        let answerable = request.is_request() && request.method() != Some(&Method::Ack) && request.top_via().is_some();
        let rejection = Rejection { status, reason: reason.into(), header: None };
        match rejection_response(request, &rejection) {
            Ok(resp) if answerable => {
                self.stats.requests_rejected += 1;
                let peer = response_peer(request, source);
                self.out.transmits.push_back(Transmit { peer, payload: resp.as_bytes().clone(), tx: None });
            }
            _ => self.stats.messages_dropped += 1,
        }
    }

    /// A parsed message arrived from `source`.
    pub fn handle_message(&mut self, message: Message, source: Peer, now: Instant) {
        if message.is_request() {
            self.stats.requests_received += 1;
            self.on_request(message, source, now);
        } else {
            self.stats.responses_received += 1;
            self.on_response(message, source, now);
        }
    }

    fn on_request(&mut self, request: Message, source: Peer, now: Instant) {
        let key = ServerKey::for_request(&request);
        if request.method() == Some(&Method::Ack) {
            return self.on_ack(request, key, source, now);
        }
        if let Some(id) = key.as_ref().and_then(|k| self.server_index.get(k)).copied()
            && let Some(e) = self.servers.get_mut(&id)
        {
            e.tx.on_retransmission(&mut self.out);
            self.stats.retransmissions_absorbed += 1;
            return;
        }
        let Some(key) = key else {
            return self.reject_stateless(&request, source, 400, "Missing or malformed Via, CSeq or Call-ID");
        };
        let peer = response_peer(&request, source);
        let method = request.method().cloned().unwrap_or(Method::Invite);
        let id = self.new_id();
        let tx = ServerTx::new(id, request.clone(), peer, method == Method::Invite);
        self.server_index.insert(key.clone(), id);
        self.servers.insert(id, Box::new(ServerEntry { key, tx, ack_key: None, local_tag: None }));
        if let Err(rejection) = validate_request(&request, &self.config.profile) {
            self.stats.requests_rejected += 1;
            if let Ok(resp) = rejection_response(&request, &rejection) {
                let _ = self.respond(id, resp, now);
            }
            return self.cleanup(id);
        }
        match method {
            Method::Cancel => self.on_cancel(id, &request, now),
            Method::Invite if self.config.send_trying => {
                if let Ok(trying) = Builder::response_to(&request, 100, "", None).build() {
                    let _ = self.respond(id, trying, now);
                }
                self.out.event(Event::Request { tx: id, request, peer: source });
            }
            _ => self.out.event(Event::Request { tx: id, request, peer: source }),
        }
    }

    fn on_ack(&mut self, ack: Message, key: Option<ServerKey>, source: Peer, now: Instant) {
        let cfg = self.config.timers;
        let by_branch = key.and_then(|k| self.server_index.get(&k)).copied();
        let by_dialog = || AckKey::of(&ack).and_then(|k| self.acks.get(&k)).copied();
        let target = by_branch.filter(|id| self.servers.get(id).is_some_and(|e| e.tx.is_invite())).or_else(by_dialog);
        let Some(id) = target else {
            return self.out.event(Event::Ack { tx: None, request: ack, peer: source });
        };
        let Some(e) = self.servers.get_mut(&id) else { return };
        let for_tu = if e.tx.state == ServerState::Accepted { e.tx.ack_2xx() } else { e.tx.on_ack(now, &cfg, &mut self.out) };
        if for_tu {
            self.out.event(Event::Ack { tx: Some(id), request: ack, peer: source });
        } else {
            self.stats.retransmissions_absorbed += 1;
        }
        self.cleanup(id);
    }

    fn on_cancel(&mut self, cancel_tx: TxId, cancel: &Message, now: Instant) {
        let invite = ServerKey::cancelled_invite(cancel)
            .and_then(|k| self.server_index.get(&k))
            .copied()
            .filter(|id| self.servers.get(id).is_some_and(|e| e.tx.is_invite()));
        let (status, tag, cancelled) = match invite.and_then(|id| self.servers.get(&id).map(|e| (id, e))) {
            Some((id, e)) => (200, e.local_tag.as_deref().map(str::to_owned), e.tx.is_pending().then_some(id)),
            None => (481, None, None),
        };
        let tag = tag.unwrap_or_else(new_tag);
        if let Ok(resp) = Builder::response_to(cancel, status, "", Some(&tag)).build() {
            let _ = self.respond(cancel_tx, resp, now);
        }
        if let Some(tx) = cancelled {
            self.out.event(Event::Cancelled { tx });
        }
    }

    fn on_response(&mut self, response: Message, source: Peer, now: Instant) {
        if validate_response(&response).is_err() {
            self.stats.messages_dropped += 1;
            return;
        }
        let id = ClientKey::for_response(&response).and_then(|k| self.client_index.get(&k)).copied();
        let Some(id) = id else {
            self.stats.stray_responses += 1;
            self.out.event(Event::StrayResponse { response, peer: source });
            return;
        };
        let cfg = self.config.timers;
        let Some(e) = self.clients.get_mut(&id) else { return };
        if e.tx.on_response(response, now, &cfg, &mut self.out) == AfterResponse::SendPendingCancel {
            let _ = self.send_cancel(id, now);
        }
        self.cleanup(id);
    }

    /// Removes `id` if it has terminated.
    fn cleanup(&mut self, id: TxId) {
        if self.clients.get(&id).is_some_and(|e| e.tx.state == ClientState::Terminated) {
            if let Some(e) = self.clients.remove(&id) {
                self.client_index.remove(&e.key);
            }
        } else if self.servers.get(&id).is_some_and(|e| e.tx.state == ServerState::Terminated)
            && let Some(e) = self.servers.remove(&id)
        {
            self.server_index.remove(&e.key);
            if let Some(k) = e.ack_key {
                self.acks.remove(&k);
            }
        }
    }

    /// The transport failed to deliver a message of `tx`.
    pub fn handle_transport_error(&mut self, tx: TxId) {
        if let Some(e) = self.clients.get_mut(&tx) {
            e.tx.on_transport_error(&mut self.out);
        } else if let Some(e) = self.servers.get_mut(&tx) {
            e.tx.on_transport_error(&mut self.out);
        }
        self.cleanup(tx);
    }

    /// The request of server transaction `tx`, until its final response is sent.
    pub fn server_request(&self, tx: TxId) -> Option<&Message> {
        self.servers.get(&tx).and_then(|e| e.tx.request.as_deref())
    }
}
