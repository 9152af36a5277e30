//! What every part of a peer shares: configuration, the SIP agent, the policies (changeable
//! at run time), the event buffer, the live calls; and how calls are created, outgoing
//! (with the call failure policy) and incoming.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ::media::sdp::LocalMedia;
use sip::endpoint::peer_for_uri;
use sip::message::{HeaderName, Uri};
use sip::transaction::TransportKind;
use sip::transport::advertised_ip;
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot, watch};

use super::agent::{AgentHandle, NewInvite};
use super::call::{Actor, Call, CallDirection, CallId, CallOptions, CallShared, CallState, Role};
use super::config::Config;
use super::error::{PeerError, Result};
use super::events::{PeerEvent, TransferRequest};
use super::handler::CallHandler;
use super::incoming::IncomingCall;
use super::lock;
use super::media;
use super::policies::{CallFailurePolicy, Policies};
use super::queue::EventQueue;

pub(crate) struct PeerContext {
    pub name: String,
    pub config: Config,
    pub agent: AgentHandle,
    pub policies: RwLock<Policies>,
    pub events: Arc<EventQueue<PeerEvent>>,
    pub calls: Mutex<HashMap<CallId, Call>>,
    pub incoming_tx: mpsc::UnboundedSender<IncomingCall>,
    pub transfers_tx: mpsc::UnboundedSender<TransferRequest>,
    pub handler: RwLock<Option<Arc<dyn CallHandler>>>,
    /// The last calls' records, oldest first, and how many to keep.
    pub history_calls: Mutex<VecDeque<super::history::CallRecord>>,
    pub call_history_size: usize,
    /// Event subscriptions beside the handler.
    pub subscribers: Mutex<Vec<super::subscribers::Subscriber>>,
    /// Whether the network answers (false while a registrar does not, under
    /// `NetworkErrorPolicy::EnterOfflineMode`): calls placed meanwhile wait for it.
    pub online: watch::Sender<bool>,
    /// The peer's registrations, by registrar.
    pub registrations: Mutex<HashMap<String, super::registration::RegistrationInfo>>,
    /// Decides incoming calls no handler decided (else the incoming call policy does).
    pub interceptor: Option<Arc<dyn crate::interceptor::SignalingInterceptor>>,
    /// What a `Decision::Custom` runs, by name.
    pub actions: HashMap<String, super::builder::CustomAction>,
    pub history: Mutex<VecDeque<(Instant, PeerEvent)>>,
    pub history_size: usize,
    pub unhandled: Mutex<VecDeque<PeerEvent>>,
}

impl PeerContext {
    pub fn policies(&self) -> Policies {
        self.policies.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn handler(&self) -> Option<Arc<dyn CallHandler>> {
        self.handler.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `sip:name@host:port`, with the address peers reach us at (never `0.0.0.0`).
    pub fn local_uri(&self) -> String {
        format!("sip:{}@{}", self.name, self.agent.endpoint.sent_by(TransportKind::Udp))
    }

    pub fn contact(&self) -> String {
        format!("<{}>", self.local_uri())
    }

    /// Hands an event to the processor; a refusal (`ReturnError`) is logged with the event.
    pub async fn emit(&self, event: PeerEvent) {
        let kind = event.event_type();
        if let Err(e) = self.events.push(event).await {
            tracing::error!(peer = %self.name, event = %kind, error = %e, "event not delivered");
        }
    }

    pub fn call(&self, id: &CallId) -> Option<Call> {
        lock(&self.calls).get(id).cloned()
    }

    /// The live call a `Replaces` header (`call-id;to-tag=…;from-tag=…`) names, seen from
    /// our side: its to-tag is our tag.
    pub fn find_replaced(&self, replaces: &str) -> Option<Call> {
        let mut parts = replaces.split(';').map(str::trim);
        let call_id = parts.next()?;
        let (mut to_tag, mut from_tag) = (None, None);
        for p in parts {
            match p.split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case("to-tag") => to_tag = Some(v),
                Some((k, v)) if k.eq_ignore_ascii_case("from-tag") => from_tag = Some(v),
                _ => {}
            }
        }
        let call = self.call(&CallId(call_id.into()))?;
        let info = lock(&call.0.dialog).clone()?;
        (Some(info.local_tag.as_str()) == to_tag && Some(info.remote_tag.as_str()) == from_tag).then_some(call)
    }

    /// Ends every call (network error policy `TerminateAll`).
    pub fn hangup_all(&self) {
        let calls: Vec<Call> = lock(&self.calls).values().cloned().collect();
        for call in calls {
            tokio::spawn(async move {
                let _ = call.hangup().await;
            });
        }
    }

    /// Creates a call and its task (not started).
    async fn new_call(
        self: &Arc<Self>,
        id: CallId,
        direction: CallDirection,
        remote_uri: String,
        role: Role,
        options: &CallOptions,
        inbox: (mpsc::UnboundedReceiver<super::agent::DialogInput>, super::agent::Inbox),
    ) -> Result<(Call, Actor)> {
        let (audio_tx, audio_rx) = mpsc::channel(100);
        let (notices_tx, notices_rx) = mpsc::unbounded_channel();
        let c = &self.config;
        let media = media::open(c.local_ip, c.media_ports, c.media_timeout, audio_tx, notices_tx).await?;
        let mut local = LocalMedia::new(advertised_ip(c.local_ip), media.rtp_port);
        local.codecs = options.codecs.clone().unwrap_or_else(|| c.codecs.clone());
        let negotiation = options.negotiation.clone().unwrap_or_else(|| c.negotiation.clone());
        local.username = self.name.clone();
        local.session_id = u64::from(rand::random::<u32>());
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (dtmf_tx, dtmf_rx) = mpsc::channel(256);
        let initial = if direction == CallDirection::Outgoing { CallState::Calling } else { CallState::Incoming };
        let call = Call(Arc::new(CallShared {
            id: id.clone(),
            local_rtp: std::net::SocketAddr::new(local.address, local.rtp_port),
            negotiated: Mutex::new(None),
            sdp: Mutex::new((None, None)),
            direction,
            local_uri: self.local_uri(),
            remote_uri,
            state: watch::channel(initial).0,
            commands: commands_tx,
            media,
            audio_in: AsyncMutex::new(audio_rx),
            dtmf_tx,
            dtmf_rx: AsyncMutex::new(dtmf_rx),
            dtmf_buffer: Mutex::new(String::new()),
            command_digits: Mutex::new(String::new()),
            policies: Mutex::new(Default::default()),
            decided: AtomicBool::new(direction == CallDirection::Outgoing),
            media_failed: Mutex::new(None),
            started: Instant::now(),
            answered: Mutex::new(None),
            ended: Mutex::new(None),
            dialog: Mutex::new(None),
            metadata: Mutex::new(Default::default()),
            monitor: Mutex::new(None),
            events: self.events.clone(),
        }));
        let actor = Actor::new(call.clone(), self.clone(), (local, negotiation), role, inbox, commands_rx, notices_rx);
        lock(&self.calls).insert(id, call.clone());
        Ok((call, actor))
    }

    /// One attempt at calling `target`: the call, and how its setup went.
    async fn dial(
        self: &Arc<Self>,
        target: &str,
        headers: Vec<(HeaderName, String)>,
        options: &CallOptions,
    ) -> Result<(Call, Result<()>)> {
        let uri = Uri::parse(target).map_err(|_| PeerError::BadTarget(target.to_owned()))?;
        let peer = peer_for_uri(&uri, TransportKind::Udp).ok_or_else(|| PeerError::BadTarget(target.to_owned()))?;
        let id = CallId(format!("{:032x}@{}", rand::random::<u128>(), advertised_ip(self.config.local_ip)).into());
        let inbox = mpsc::unbounded_channel();
        let role = Role::Uac { target: uri, peer, headers };
        let (call, actor) =
            self.new_call(id, CallDirection::Outgoing, target.to_owned(), role, options, (inbox.1, inbox.0)).await?;
        let (answered, rx) = oneshot::channel();
        tokio::spawn(actor.run(Some(answered)));
        let outcome = rx.await.unwrap_or(Err(PeerError::CallEnded));
        Ok((call, outcome))
    }

    /// Calls `target`, applying the call failure policy. Boxed: a transfer places a call
    /// from inside another call's task.
    pub fn place_call(
        self: &Arc<Self>,
        target: &str,
        headers: Vec<(HeaderName, String)>,
        options: CallOptions,
    ) -> Pin<Box<dyn Future<Output = Result<Call>> + Send + 'static>> {
        let ctx = self.clone();
        let target = target.to_owned();
        Box::pin(async move {
            let policy = ctx.policies().call_failure;
            let mut attempts = vec![(target.clone(), Duration::ZERO)];
            match &policy {
                CallFailurePolicy::TryAlternates { alternates } => {
                    attempts.extend(alternates.iter().map(|a| (a.clone(), Duration::ZERO)));
                }
                CallFailurePolicy::RetryWithBackoff { max_retries, initial_delay_ms, max_delay_ms } => {
                    let mut delay = *initial_delay_ms;
                    for _ in 0..*max_retries {
                        attempts.push((target.clone(), Duration::from_millis(delay.min(*max_delay_ms))));
                        delay = delay.saturating_mul(2);
                    }
                }
                _ => {}
            }
            let mut last = None;
            for (t, delay) in attempts {
                tokio::time::sleep(delay).await;
                let (call, outcome) = ctx.dial(&t, headers.clone(), &options).await?;
                match outcome {
                    Ok(()) => return Ok(call),
                    Err(e) => last = Some((call, e)),
                }
            }
            let (call, error) = last.expect("at least one attempt");
            match policy {
                CallFailurePolicy::Ignore => Ok(call),
                CallFailurePolicy::LogAndContinue => {
                    tracing::warn!(peer = %ctx.name, %target, %error, "call failed (policy LogAndContinue)");
                    Ok(call)
                }
                _ => {
                    tracing::warn!(peer = %ctx.name, %target, %error, "call failed");
                    Err(error)
                }
            }
        })
    }

    /// A new INVITE: its call and task; without RTP ports it is refused with 503.
    pub async fn on_new_invite(self: &Arc<Self>, invite: NewInvite) {
        let NewInvite { tx, request, peer, inbox, inbox_tx } = invite;
        let id = CallId(request.call_id().unwrap_or_default().into());
        let remote_uri = request.from().map(|f| f.uri.to_string()).unwrap_or_default();
        let call_id = request.call_id().unwrap_or_default().to_owned();
        let refusal = sip::message::Builder::response_to(&request, 503, "", Some(&sip::transaction::new_tag())).build();
        let role = Role::Uas { tx, invite: request, peer };
        match self.new_call(id, CallDirection::Incoming, remote_uri, role, &CallOptions::default(), (inbox, inbox_tx)).await {
            Ok((_, actor)) => {
                tokio::spawn(actor.run(None));
            }
            Err(e) => {
                tracing::warn!(peer = %self.name, error = %e, "incoming call refused");
                if let Ok(r) = refusal {
                    let _ = self.agent.endpoint.respond(tx, r);
                }
                self.agent.detach(&call_id);
            }
        }
    }
}
