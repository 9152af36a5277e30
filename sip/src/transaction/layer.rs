//! The transaction layer: every transaction of an endpoint, the indexes that match incoming
//! messages to them (§17.1.3, §17.2.3), request validation with precise refusals, CANCEL
//! handling (§9.2), and the timer queue. See the module documentation for driving order.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::client::{AfterResponse, ClientState, ClientTx};
use super::key::{new_tag, ClientKey, ServerKey};
use super::server::{RespondError, ServerState, ServerTx};
use super::timer::TimerConfig;
use super::{cancel_for, Event, Outputs, Peer, Transmit, TxId};
use crate::message::validate::{validate_request, validate_response, Rejection, ServerProfile};
use crate::message::{Builder, Message, Method, ParseError};

/// Configuration of a transaction layer.
#[derive(Debug, Clone)]
pub struct Config {
    pub timers: TimerConfig,
    /// Decides 405/420/501 answers to new requests.
    pub profile: ServerProfile,
    /// Answer every new INVITE with `100 Trying` at once (§17.2.1).
    pub send_trying: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { timers: TimerConfig::default(), profile: ServerProfile::default(), send_trying: true }
    }
}

/// Counters, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub requests_received: u64,
    pub responses_received: u64,
    pub retransmissions_sent: u64,
    /// Retransmitted requests and responses absorbed by a transaction.
    pub retransmissions_absorbed: u64,
    /// Requests the layer refused itself (validation), with a status.
    pub requests_rejected: u64,
    /// Messages that could not be parsed or answered, and malformed responses.
    pub messages_dropped: u64,
    pub stray_responses: u64,
    pub client_transactions: usize,
    pub server_transactions: usize,
}

/// Why a transaction-user command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("no such transaction")]
    Unknown,
    #[error("a final response was already sent")]
    FinalAlreadySent,
    #[error("not a response")]
    NotAResponse,
    #[error("not a request")]
    NotARequest,
    #[error("the request has no Via branch with the RFC 3261 cookie")]
    NoBranch,
    #[error("a transaction with this branch and method exists")]
    DuplicateBranch,
    #[error("ACK is not sent in a transaction; use send_ack")]
    AckInTransaction,
    #[error("only an INVITE client transaction without a final response can be cancelled")]
    NotCancellable,
    #[error("could not build the request: {0}")]
    Build(&'static str),
}

/// The identity an ACK for a 2xx carries: Call-ID, CSeq number and From tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct AckKey(Box<str>, u32, Box<str>);

impl AckKey {
    fn of(m: &Message) -> Option<AckKey> {
        Some(AckKey(m.call_id()?.into(), m.cseq()?.0, m.from_tag().unwrap_or_default().into()))
    }
}

struct ServerEntry {
    key: ServerKey,
    tx: ServerTx,
    ack_key: Option<AckKey>,
    /// Our To tag, from the responses sent (reused in the 200 to a CANCEL).
    local_tag: Option<Box<str>>,
}

struct ClientEntry {
    key: ClientKey,
    tx: ClientTx,
}

/// Every transaction of one endpoint.
pub struct TransactionLayer {
    config: Config,
    next_id: u64,
    // Entries are boxed so that growing a map moves pointers, not whole transactions:
    // hundreds of thousands live at once at high call rates (64·T1 each).
    clients: HashMap<TxId, Box<ClientEntry>>,
    client_index: HashMap<ClientKey, TxId>,
    servers: HashMap<TxId, Box<ServerEntry>>,
    server_index: HashMap<ServerKey, TxId>,
    acks: HashMap<AckKey, TxId>,
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
            clients: HashMap::new(),
            client_index: HashMap::new(),
            servers: HashMap::new(),
            server_index: HashMap::new(),
            acks: HashMap::new(),
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
            ParseError::Truncated { partial, .. } => self.reject_stateless(partial, source, 400, &error.reason_phrase()),
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
        if let Some(id) = key.as_ref().and_then(|k| self.server_index.get(k)).copied() {
            if let Some(e) = self.servers.get_mut(&id) {
                e.tx.on_retransmission(&mut self.out);
                self.stats.retransmissions_absorbed += 1;
                return;
            }
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
            let is_invite_2xx = matches!(response.status(), Some(200..=299)) && response.method() == Some(&Method::Invite);
            if is_invite_2xx {
                self.out.event(Event::StrayResponse { response, peer: source });
            }
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
        } else if self.servers.get(&id).is_some_and(|e| e.tx.state == ServerState::Terminated) {
            if let Some(e) = self.servers.remove(&id) {
                self.server_index.remove(&e.key);
                if let Some(k) = e.ack_key {
                    self.acks.remove(&k);
                }
            }
        }
    }

    /// Starts a client transaction sending `request` to `peer`. The request's top Via must
    /// carry a unique branch with the `z9hG4bK` cookie (see [`super::new_branch`]).
    pub fn send_request(&mut self, request: Message, peer: Peer, now: Instant) -> Result<TxId, TxError> {
        let method = request.method().filter(|_| request.is_request()).ok_or(TxError::NotARequest)?;
        if *method == Method::Ack {
            return Err(TxError::AckInTransaction);
        }
        let invite = *method == Method::Invite;
        let key = ClientKey::for_request(&request)
            .filter(|_| request.branch().is_some_and(|b| b.starts_with(crate::message::BRANCH_COOKIE)))
            .ok_or(TxError::NoBranch)?;
        if self.client_index.contains_key(&key) {
            return Err(TxError::DuplicateBranch);
        }
        let id = self.new_id();
        let tx = ClientTx::start(id, request, peer, invite, now, &self.config.timers, &mut self.out);
        self.client_index.insert(key.clone(), id);
        self.clients.insert(id, Box::new(ClientEntry { key, tx }));
        Ok(id)
    }

    /// Sends `response` on server transaction `tx`.
    pub fn respond(&mut self, tx: TxId, response: Message, now: Instant) -> Result<(), TxError> {
        let cfg = self.config.timers;
        let e = self.servers.get_mut(&tx).ok_or(TxError::Unknown)?;
        e.tx.respond(&response, now, &cfg, &mut self.out).map_err(|err| match err {
            RespondError::FinalAlreadySent => TxError::FinalAlreadySent,
            RespondError::NotAResponse => TxError::NotAResponse,
        })?;
        if let Some(tag) = response.to_tag() {
            e.local_tag.get_or_insert_with(|| tag.into());
        }
        if e.tx.awaiting_ack && e.ack_key.is_none() {
            if let Some(k) = AckKey::of(&response) {
                self.acks.insert(k.clone(), tx);
                e.ack_key = Some(k);
            }
        }
        self.cleanup(tx);
        Ok(())
    }

    /// Cancels INVITE client transaction `tx` (§9.1). The CANCEL goes out at once if a
    /// provisional response arrived (its transaction id is returned), else as soon as one
    /// does.
    pub fn cancel(&mut self, tx: TxId, now: Instant) -> Result<Option<TxId>, TxError> {
        let e = self.clients.get_mut(&tx).ok_or(TxError::Unknown)?;
        if !e.tx.is_invite() {
            return Err(TxError::NotCancellable);
        }
        match e.tx.state {
            ClientState::Calling => {
                e.tx.cancel_pending = true;
                Ok(None)
            }
            ClientState::Proceeding => self.send_cancel(tx, now).map(Some),
            _ => Err(TxError::NotCancellable),
        }
    }

    fn send_cancel(&mut self, invite_tx: TxId, now: Instant) -> Result<TxId, TxError> {
        let e = self.clients.get(&invite_tx).ok_or(TxError::Unknown)?;
        let peer = e.tx.peer;
        let invite = e.tx.request.as_ref().ok_or(TxError::NotCancellable)?;
        let cancel = cancel_for(invite).map_err(|_| TxError::Build("CANCEL"))?;
        self.send_request(cancel, peer, now)
    }

    /// Sends the ACK for a 2xx (outside any transaction, §13.2.2.4). With the INVITE
    /// transaction id, later retransmissions of that 2xx are answered with this ACK
    /// without bothering the transaction user.
    pub fn send_ack(&mut self, invite_tx: Option<TxId>, ack: &Message, peer: Peer) {
        let bytes = ack.as_bytes().clone();
        if let (Some(id), Some(tag)) = (invite_tx, ack.to_tag()) {
            if let Some(e) = self.clients.get_mut(&id) {
                e.tx.remember_ack(tag, bytes.clone());
            }
        }
        self.out.transmits.push_back(Transmit { peer, payload: bytes, tx: None });
    }

    /// Sends a message outside any transaction.
    pub fn send_stateless(&mut self, message: &Message, peer: Peer) {
        self.out.transmits.push_back(Transmit { peer, payload: message.as_bytes().clone(), tx: None });
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
