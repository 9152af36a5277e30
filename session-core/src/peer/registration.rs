//! Registration with a registrar (RFC 3261 §10): REGISTER with digest authentication,
//! refreshed before it expires (or at once when asked), removed with `Expires: 0`. Each
//! registration is a task; its progress is reported as `Registration` events and kept in
//! the peer's table of registrations (seed 002's lookups, refresh and expiry clean-up).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sip::auth::{Credentials, answer_challenge};
use sip::endpoint::peer_for_uri;
use sip::message::{Builder, HeaderName, Message, Method, Uri};
use sip::transaction::{Peer, TransportKind};
use tokio::sync::{mpsc, oneshot};

use super::agent::{DialogInput, TxReply};
use super::context::PeerContext;
use super::error::{PeerError, Result};
use super::events::{PeerEvent, RegistrationEvent};
use super::policies::NetworkErrorPolicy;

/// How long a REGISTER transaction may take before it counts as a network error.
const ANSWER_LIMIT: Duration = Duration::from_secs(40);

/// A live registration. Dropping it leaves the registration to expire; `unregister` removes it.
pub struct Registration {
    registrar: String,
    expires: u32,
    stop: Option<oneshot::Sender<oneshot::Sender<Result<()>>>>,
    refresh: mpsc::UnboundedSender<oneshot::Sender<Result<u32>>>,
}

/// What the peer knows of one of its registrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationInfo {
    pub registrar: String,
    /// The address of record registered (`sip:name@registrar-host`).
    pub aor: String,
    /// The lifetime granted by the last successful REGISTER, in seconds.
    pub expires: u32,
    /// When that REGISTER was answered.
    pub refreshed_at: Instant,
    /// The last refresh failed (the task may have given up: see the network error policy).
    pub failing: bool,
}

impl RegistrationInfo {
    /// The binding has lapsed at the registrar by now.
    pub fn is_expired(&self, now: Instant) -> bool {
        now >= self.refreshed_at + Duration::from_secs(u64::from(self.expires))
    }
}

impl Registration {
    pub fn registrar(&self) -> &str {
        &self.registrar
    }

    /// The lifetime the registrar granted first.
    pub fn expires(&self) -> u32 {
        self.expires
    }

    /// Sends a REGISTER now (not waiting for the next refresh): the lifetime granted.
    pub async fn refresh(&self) -> Result<u32> {
        let (done, rx) = oneshot::channel();
        self.refresh.send(done).map_err(|_| PeerError::Shutdown)?;
        rx.await.map_err(|_| PeerError::Shutdown)?
    }

    /// Removes the binding (`Expires: 0`) and stops refreshing.
    pub async fn unregister(mut self) -> Result<()> {
        let (done, rx) = oneshot::channel();
        self.stop.take().ok_or(PeerError::Shutdown)?.send(done).map_err(|_| PeerError::Shutdown)?;
        rx.await.map_err(|_| PeerError::Shutdown)?
    }
}

struct Registrar {
    ctx: Arc<PeerContext>,
    uri: Uri,
    peer: Peer,
    aor: String,
    call_id: String,
    tag: String,
    seq: u32,
    inbox: mpsc::UnboundedReceiver<DialogInput>,
    inbox_tx: mpsc::UnboundedSender<DialogInput>,
}

/// Registers with `registrar` (`sip:host:port`) and keeps the registration fresh.
pub(crate) async fn register(ctx: Arc<PeerContext>, registrar: &str) -> Result<Registration> {
    let uri = Uri::parse(registrar).map_err(|_| PeerError::BadTarget(registrar.to_owned()))?;
    let peer = peer_for_uri(&uri, TransportKind::Udp).ok_or_else(|| PeerError::BadTarget(registrar.to_owned()))?;
    let host = uri.as_sip().map(|s| s.host_port.host.to_string()).unwrap_or_default();
    let (inbox_tx, inbox) = mpsc::unbounded_channel();
    let mut r = Registrar {
        aor: format!("sip:{}@{host}", ctx.name),
        ctx,
        uri,
        peer,
        call_id: format!("{:032x}", rand::random::<u128>()),
        tag: sip::transaction::new_tag(),
        seq: 0,
        inbox,
        inbox_tx,
    };
    let expires = r.send(r.ctx.config.register_expires).await?;
    r.note(registrar, Ok(expires));
    r.event(RegistrationEvent::Registered { registrar: registrar.to_owned(), expires }).await;
    let (stop, stop_rx) = oneshot::channel();
    let (refresh, refresh_rx) = mpsc::unbounded_channel();
    tokio::spawn(r.refresh(expires, stop_rx, refresh_rx, registrar.to_owned()));
    Ok(Registration { registrar: registrar.to_owned(), expires, stop: Some(stop), refresh })
}

impl Registrar {
    /// Keeps the peer's table up to date: a granted lifetime, or a failed refresh.
    fn note(&self, registrar: &str, outcome: std::result::Result<u32, ()>) {
        let mut table = super::lock(&self.ctx.registrations);
        match outcome {
            Ok(expires) => {
                let info = RegistrationInfo {
                    registrar: registrar.to_owned(),
                    aor: self.aor.clone(),
                    expires,
                    refreshed_at: Instant::now(),
                    failing: false,
                };
                table.insert(registrar.to_owned(), info);
            }
            Err(()) => {
                if let Some(info) = table.get_mut(registrar) {
                    info.failing = true;
                }
            }
        }
    }

    async fn event(&self, e: RegistrationEvent) {
        self.ctx.emit(PeerEvent::Registration(e)).await;
    }

    fn request(&mut self, expires: u32, auth: Option<(HeaderName, String)>) -> Option<Message> {
        self.seq += 1;
        let via = self.ctx.agent.endpoint.via(self.peer.transport);
        let mut b = Builder::request(&Method::Register, &self.uri)
            .header(HeaderName::Via, &via)
            .header(HeaderName::MaxForwards, 70)
            .header(HeaderName::From, format_args!("<{}>;tag={}", self.aor, self.tag))
            .header(HeaderName::To, format_args!("<{}>", self.aor))
            .header(HeaderName::CallId, &self.call_id)
            .header(HeaderName::CSeq, format_args!("{} REGISTER", self.seq))
            .header(HeaderName::Contact, self.ctx.contact())
            .header(HeaderName::Expires, expires)
            .header(HeaderName::UserAgent, "callmesh-peer");
        if let Some((name, value)) = auth {
            b = b.header(name, value);
        }
        b.build().ok()
    }

    async fn transaction(&mut self, request: Message) -> Result<Message> {
        let tx = self.ctx.agent.send(request, self.peer, self.inbox_tx.clone()).await?;
        let wait = async {
            while let Some(input) = self.inbox.recv().await {
                match input {
                    DialogInput::Reply { tx: t, reply: TxReply::Response(r), .. }
                        if t == tx && r.status().unwrap_or(0) >= 200 =>
                    {
                        return Ok(r);
                    }
                    DialogInput::Reply { tx: t, reply: TxReply::Timeout | TxReply::TransportError, .. } if t == tx => {
                        return Err(PeerError::Timeout);
                    }
                    _ => {}
                }
            }
            Err(PeerError::Shutdown)
        };
        let limit = self.ctx.policies().network_error.retries().1.unwrap_or(ANSWER_LIMIT);
        tokio::time::timeout(limit, wait).await.unwrap_or(Err(PeerError::Timeout))
    }

    /// One REGISTER (answering a challenge and a `423` once each): the granted lifetime.
    async fn send(&mut self, mut expires: u32) -> Result<u32> {
        let mut auth = None;
        for _ in 0..3 {
            let request =
                self.request(expires, auth.take()).ok_or_else(|| PeerError::Registration("request not built".into()))?;
            let response = self.transaction(request).await?;
            match response.status().unwrap_or(0) {
                200..=299 => return Ok(granted(&response, &self.ctx.contact()).unwrap_or(expires)),
                401 | 407 => {
                    let creds = self.ctx.config.credentials.as_ref().map(|(u, p)| Credentials::new(u, p));
                    let creds = creds
                        .ok_or_else(|| PeerError::Registration("the registrar wants credentials; none are configured".into()))?;
                    let answer = answer_challenge(&response, &creds, &Method::Register, &self.uri.to_string(), 1)
                        .map_err(|e| PeerError::Registration(e.to_string()))?;
                    auth = Some((answer.0, answer.1.to_string()));
                }
                423 if expires != 0 => {
                    expires = response.header(HeaderName::MinExpires).and_then(|m| m.trim().parse().ok()).unwrap_or(expires * 2);
                }
                status => return Err(PeerError::Registration(format!("{status} {}", response.reason()))),
            }
        }
        Err(PeerError::Registration("credentials refused".into()))
    }

    async fn refresh(
        mut self,
        mut expires: u32,
        mut stop: oneshot::Receiver<oneshot::Sender<Result<()>>>,
        mut asked: mpsc::UnboundedReceiver<oneshot::Sender<Result<u32>>>,
        registrar: String,
    ) {
        let mut failures = 0u32;
        loop {
            // Refresh at ¾ of the lifetime; after a failure retry every 5 s, or sooner when
            // the lifetime is shorter than that.
            let refresh = Duration::from_millis(u64::from(expires) * 750).max(Duration::from_millis(200));
            let wait = if failures == 0 { refresh } else { refresh.min(Duration::from_secs(5)) };
            tokio::select! {
                done = &mut stop => {
                    let result = self.send(0).await.map(|_| ());
                    if result.is_ok() {
                        super::lock(&self.ctx.registrations).remove(&registrar);
                        self.event(RegistrationEvent::Unregistered { registrar }).await;
                    }
                    if let Ok(done) = done {
                        let _ = done.send(result);
                    }
                    return;
                }
                Some(done) = asked.recv() => {
                    let result = self.send(self.ctx.config.register_expires).await;
                    if let Ok(granted) = result {
                        (failures, expires) = (0, granted);
                        self.ctx.online.send_replace(true);
                        self.note(&registrar, Ok(granted));
                        self.event(RegistrationEvent::Refreshed { registrar: registrar.clone(), expires }).await;
                    }
                    let _ = done.send(result);
                    continue;
                }
                _ = tokio::time::sleep(wait) => {}
            }
            match self.send(self.ctx.config.register_expires).await {
                Ok(granted) => {
                    failures = 0;
                    expires = granted;
                    self.ctx.online.send_replace(true);
                    self.note(&registrar, Ok(granted));
                    self.event(RegistrationEvent::Refreshed { registrar: registrar.clone(), expires }).await;
                }
                Err(e) => {
                    failures += 1;
                    self.note(&registrar, Err(()));
                    self.event(RegistrationEvent::Failed { registrar: registrar.clone(), reason: e.to_string() }).await;
                    let keep_trying = match self.ctx.policies().network_error {
                        NetworkErrorPolicy::EnterOfflineMode => {
                            self.ctx.online.send_replace(false);
                            true
                        }
                        NetworkErrorPolicy::RetryConnection { max_retries, .. } => failures <= max_retries,
                        NetworkErrorPolicy::TerminateAll => {
                            self.ctx.hangup_all();
                            false
                        }
                        NetworkErrorPolicy::ReturnError => false,
                    };
                    if !keep_trying {
                        return;
                    }
                }
            }
        }
    }
}

/// The lifetime the registrar gave our Contact (its `expires` parameter, else `Expires`).
fn granted(response: &Message, contact: &str) -> Option<u32> {
    let ours = contact.trim_matches(|c| c == '<' || c == '>');
    let from_contact = response.name_addrs(HeaderName::Contact).ok()?.into_iter().find(|c| c.uri.to_string() == ours);
    from_contact
        .and_then(|c| c.params.value("expires").and_then(|e| e.parse().ok()))
        .or_else(|| response.header(HeaderName::Expires).and_then(|e| e.trim().parse().ok()))
}
