//! The peer's SIP agent: one task owns the endpoint's events and sends each where it
//! belongs — a request or ACK to the call whose Call-ID it carries, a response to whoever
//! started the transaction, a new INVITE to the peer as a new call. Client transactions are
//! started from this task too, so a response can never arrive before its sender is known.

use std::collections::HashMap;
use std::net::SocketAddr;

use sip::endpoint::{Endpoint, EndpointError, EndpointHandle};
use sip::message::{Builder, HeaderName, Message, Method};
use sip::transaction::{Event, Peer, TransportKind, TxId};
use tokio::sync::{mpsc, oneshot};

/// The methods a peer handles: its calls run on the call engine.
pub(crate) use crate::engine::ALLOW;

/// What became of a client transaction.
#[allow(clippy::large_enum_variant)] // moved once through a channel; boxing buys nothing
#[derive(Debug, Clone)]
pub(crate) enum TxReply {
    Response(Message),
    Timeout,
    TransportError,
}

/// What the agent hands a call (or a registration).
#[derive(Debug)]
pub(crate) enum DialogInput {
    Request {
        tx: TxId,
        request: Message,
        peer: Peer,
    },
    Ack(Message),
    Cancelled(TxId),
    AckTimeout,
    Reply {
        tx: TxId,
        reply: TxReply,
    },
    /// A response no transaction matches (a 2xx retransmitted after ours ended).
    Stray(Message),
}

pub(crate) type Inbox = mpsc::UnboundedSender<DialogInput>;

/// A new INVITE: the call it starts gets `inbox`.
pub(crate) struct NewInvite {
    pub tx: TxId,
    pub request: Message,
    pub peer: Peer,
    pub inbox: mpsc::UnboundedReceiver<DialogInput>,
    pub inbox_tx: Inbox,
}

#[allow(clippy::large_enum_variant)] // moved once through a channel
enum Command {
    Attach { call_id: String, inbox: Inbox },
    Detach { call_id: String },
    Send { request: Message, peer: Peer, reply_to: Inbox, sent: oneshot::Sender<Result<TxId, EndpointError>> },
}

/// Sends through the agent. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AgentHandle {
    commands: mpsc::UnboundedSender<Command>,
    pub endpoint: EndpointHandle,
}

impl AgentHandle {
    /// The UDP address SIP is bound to.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr(TransportKind::Udp).expect("a peer always binds UDP")
    }

    /// Requests and ACKs carrying `call_id` go to `inbox` from now on.
    pub(crate) fn attach(&self, call_id: &str, inbox: Inbox) {
        let _ = self.commands.send(Command::Attach { call_id: call_id.to_owned(), inbox });
    }

    pub(crate) fn detach(&self, call_id: &str) {
        let _ = self.commands.send(Command::Detach { call_id: call_id.to_owned() });
    }

    /// Starts a client transaction whose replies go to `reply_to`.
    pub(crate) async fn send(&self, request: Message, peer: Peer, reply_to: Inbox) -> Result<TxId, EndpointError> {
        let (sent, rx) = oneshot::channel();
        self.commands.send(Command::Send { request, peer, reply_to, sent }).map_err(|_| EndpointError::Closed)?;
        rx.await.map_err(|_| EndpointError::Closed)?
    }
}

struct Agent {
    endpoint: EndpointHandle,
    events: mpsc::Receiver<Event>,
    commands: mpsc::UnboundedReceiver<Command>,
    dialogs: HashMap<String, Inbox>,
    pending: HashMap<TxId, Inbox>,
    server_invites: HashMap<TxId, String>,
    incoming: mpsc::UnboundedSender<NewInvite>,
}

/// Starts the agent on a bound endpoint; new INVITEs come out of the returned receiver.
pub(crate) fn start(endpoint: Endpoint) -> (AgentHandle, mpsc::UnboundedReceiver<NewInvite>) {
    let (handle, events) = endpoint.into_parts();
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (incoming, incoming_rx) = mpsc::unbounded_channel();
    let agent = Agent {
        endpoint: handle.clone(),
        events,
        commands,
        dialogs: HashMap::new(),
        pending: HashMap::new(),
        server_invites: HashMap::new(),
        incoming,
    };
    tokio::spawn(agent.run());
    (AgentHandle { commands: commands_tx, endpoint: handle }, incoming_rx)
}

impl Agent {
    async fn run(mut self) {
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(c) => self.command(c).await,
                    None => return,
                },
                event = self.events.recv() => match event {
                    Some(e) => self.event(e),
                    None => return,
                },
            }
        }
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Attach { call_id, inbox } => {
                self.dialogs.insert(call_id, inbox);
            }
            Command::Detach { call_id } => {
                self.dialogs.remove(&call_id);
                self.server_invites.retain(|_, c| *c != call_id);
                self.pending.retain(|_, inbox| !inbox.is_closed());
            }
            Command::Send { request, peer, reply_to, sent } => {
                let result = self.endpoint.send_request(request, peer).await;
                if let Ok(tx) = result {
                    self.pending.insert(tx, reply_to);
                }
                let _ = sent.send(result);
            }
        }
    }

    fn to_dialog(&self, message: &Message, input: DialogInput) -> bool {
        match message.call_id().and_then(|id| self.dialogs.get(id)) {
            Some(inbox) => inbox.send(input).is_ok(),
            None => false,
        }
    }

    fn reply(&mut self, tx: TxId, reply: TxReply) {
        let done =
            !matches!(&reply, TxReply::Response(r) if r.status().unwrap_or(0) < 200 || r.method() == Some(&Method::Invite));
        let Some(inbox) = self.pending.get(&tx) else { return };
        let delivered = inbox.send(DialogInput::Reply { tx, reply }).is_ok();
        if done || !delivered {
            self.pending.remove(&tx);
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Request { tx, request, peer } => self.request(tx, request, peer),
            Event::Ack { request, .. } => {
                let m = request.clone();
                self.to_dialog(&m, DialogInput::Ack(request));
            }
            Event::Cancelled { tx } => {
                if let Some(inbox) = self.server_invites.get(&tx).and_then(|c| self.dialogs.get(c)) {
                    let _ = inbox.send(DialogInput::Cancelled(tx));
                }
            }
            Event::AckTimeout { tx } => {
                if let Some(inbox) = self.server_invites.get(&tx).and_then(|c| self.dialogs.get(c)) {
                    let _ = inbox.send(DialogInput::AckTimeout);
                }
            }
            Event::Response { tx, response } => self.reply(tx, TxReply::Response(response)),
            Event::Timeout { tx } => self.reply(tx, TxReply::Timeout),
            Event::TransportError { tx } => self.reply(tx, TxReply::TransportError),
            Event::StrayResponse { response, .. } if sip::transaction::is_invite_2xx(&response) => {
                let m = response.clone();
                self.to_dialog(&m, DialogInput::Stray(response));
            }
            Event::StrayResponse { .. } => {}
        }
    }

    fn request(&mut self, tx: TxId, request: Message, peer: Peer) {
        let call_id = request.call_id().unwrap_or_default().to_owned();
        let method = request.method().cloned();
        if let Some(inbox) = self.dialogs.get(&call_id).filter(|i| !i.is_closed()) {
            if method == Some(Method::Invite) {
                self.server_invites.insert(tx, call_id);
            }
            let _ = inbox.send(DialogInput::Request { tx, request, peer });
            return;
        }
        let respond = |status: u16, extra: Option<(HeaderName, &str)>| {
            let mut b = Builder::response_to(&request, status, "", Some(&sip::transaction::new_tag()));
            if let Some((name, value)) = extra {
                b = b.header(name, value);
            }
            if let Ok(r) = b.build() {
                let _ = self.endpoint.respond(tx, r);
            }
        };
        match method {
            Some(Method::Invite) if request.to_tag().is_none() => {
                let (inbox, inbox_rx) = mpsc::unbounded_channel();
                self.dialogs.insert(call_id.clone(), inbox.clone());
                self.server_invites.insert(tx, call_id.clone());
                if self.incoming.send(NewInvite { tx, request, peer, inbox: inbox_rx, inbox_tx: inbox }).is_err() {
                    self.dialogs.remove(&call_id);
                }
            }
            Some(Method::Options) => respond(200, Some((HeaderName::Allow, ALLOW))),
            _ if request.to_tag().is_some() => respond(481, None),
            _ => respond(405, Some((HeaderName::Allow, ALLOW))),
        }
    }
}
