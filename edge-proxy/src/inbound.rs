//! What arrives from SIP at an edge: requests (REGISTER to the registrar, new INVITEs to
//! the routers, in-dialog requests to the session named by our tag, refusals while
//! draining), responses to the requests sessions asked us to send, and the transaction
//! layer's other events (ACKs, CANCELs, timeouts), each turned into an edge event for the
//! session it belongs to.

use cluster::bus::typed;
use cluster::contracts::{self, FailureReason, IncomingCall, edge_event};
use cluster::subjects::{self, SessionId};
use cluster::tags;
use sip::message::{Builder, HeaderName, Message, Method};
use sip::transaction::{Event, Peer, TxId, is_invite_2xx, new_tag};
use tokio::time::{Duration, Instant};
use tracing::Instrument;

use crate::node::{Edge, PUBLISH_AGAIN, Unanswered};

impl Edge {
    pub(crate) async fn on_event(&mut self, event: Event) {
        match event {
            Event::Request { tx, request, peer } => self.on_request(tx, request, peer).await,
            Event::Ack { tx, request, .. } => {
                if let Some(tx) = tx {
                    self.server_invites.remove(&tx);
                }
                if let Some((session, _)) = request.to_tag().and_then(tags::session_of) {
                    let ack = contracts::AckReceived { tx: tx.map(TxId::as_u64).unwrap_or(0), ack: request.as_bytes().clone() };
                    self.recent_acks.push_back((Instant::now() + self.orphan_timeout, session.clone(), ack.clone()));
                    self.publish_event(&session, edge_event::Event::Ack(ack)).await;
                }
            }
            Event::Cancelled { tx } => {
                self.setup_started.remove(&tx);
                // Every copy of a call no session claimed yet hears of it (`unclaimed.rs`).
                let mut sessions = self.unclaimed.sessions_of(tx).to_vec();
                if sessions.is_empty() {
                    sessions.extend(self.server_invites.get(&tx).cloned());
                }
                for session in sessions {
                    self.publish_event(&session, edge_event::Event::Cancelled(contracts::RequestCancelled { tx: tx.as_u64() }))
                        .await;
                }
            }
            Event::Response { tx, response } => self.on_response(tx, response).await,
            Event::StrayResponse { response, peer } => {
                // Any response to a request another edge on our address sent goes to it (a
                // BYE's 200 lost here left the call up until Timer F, 32 s).
                if let Some(owner) = self.sent_by_another(&response) {
                    return self.relay(owner, response, peer).await;
                }
                if is_invite_2xx(&response)
                    && let Some((session, _)) = response.from_tag().and_then(tags::session_of)
                {
                    let r = contracts::ResponseReceived { correlation: 0, response: response.as_bytes().clone() };
                    self.publish_event(&session, edge_event::Event::Response(r)).await;
                }
            }
            Event::Timeout { tx } | Event::TransportError { tx } => {
                self.server_invites.remove(&tx);
                self.setup_started.remove(&tx);
                if let Some((session, correlation, _)) = self.clients.remove(&tx) {
                    self.correlations.remove(&(session.clone(), correlation));
                    let failed = contracts::RequestFailed { correlation, tx: tx.as_u64(), reason: FailureReason::Timeout as i32 };
                    self.publish_event(&session, edge_event::Event::Failed(failed)).await;
                }
            }
            Event::AckTimeout { tx } => {
                if let Some(session) = self.server_invites.remove(&tx) {
                    let failed =
                        contracts::RequestFailed { correlation: 0, tx: tx.as_u64(), reason: FailureReason::NoAck as i32 };
                    self.publish_event(&session, edge_event::Event::Failed(failed)).await;
                }
            }
        }
    }

    async fn on_request(&mut self, tx: TxId, request: Message, peer: Peer) {
        let method = request.method().cloned().unwrap_or(Method::Options);
        let in_dialog = request.to_tag().map(str::to_owned);
        match (&method, in_dialog) {
            (Method::Register, _) => {
                self.stats.registrations.inc();
                let (registrar, handle) = (self.registrar.clone(), self.handle.clone());
                tokio::spawn(async move {
                    if let Ok(response) = registrar.handle(&request, peer).await {
                        let _ = handle.respond(tx, response);
                    }
                });
            }
            (Method::Invite | Method::Options, None) if self.drain.is_draining() => {
                if let Ok(busy) = Builder::response_to(&request, 503, "Service Unavailable", Some(&new_tag()))
                    .header(HeaderName::RetryAfter, "5")
                    .build()
                {
                    let _ = self.handle.respond(tx, busy);
                }
            }
            (Method::Invite, None) => {
                let span = tracing::info_span!("edge.new_call", call_id = request.call_id().unwrap_or_default());
                self.new_call(tx, request, peer).instrument(span).await
            }
            (Method::Options, None) => {
                let ok = Builder::response_to(&request, 200, "", Some(&new_tag()))
                    .header(HeaderName::Allow, "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, INFO")
                    .header(HeaderName::Accept, "application/sdp")
                    .build();
                if let Ok(ok) = ok {
                    let _ = self.handle.respond(tx, ok);
                }
            }
            (_, Some(tag)) => match tags::session_of(&tag) {
                Some((session, _)) => {
                    self.stats.in_dialog.inc();
                    if method == Method::Invite {
                        self.server_invites.insert(tx, session.clone());
                    }
                    let (now, request) = (Instant::now(), request.clone());
                    let (until, again_at) = (now + self.orphan_timeout, now + PUBLISH_AGAIN);
                    self.publish_request(tx, &request, peer).await;
                    self.unanswered.insert(tx, Unanswered { request, peer, until, again_at });
                }
                None => self.respond(tx, &request, 481, "Call/Transaction Does Not Exist"),
            },
            (Method::Bye | Method::Info | Method::Update | Method::Prack, None) => {
                self.respond(tx, &request, 481, "Call/Transaction Does Not Exist")
            }
            _ => self.respond(tx, &request, 405, "Method Not Allowed"),
        }
    }

    async fn new_call(&mut self, tx: TxId, request: Message, peer: Peer) {
        self.stats.calls.inc();
        let session = SessionId::random();
        self.server_invites.insert(tx, session.clone());
        self.setup_started.insert(tx, Instant::now());
        let call = IncomingCall {
            meta: contracts::meta(self.id.as_str()),
            edge_id: self.id.to_string(),
            edge_tx: tx.as_u64(),
            source: Some(crate::peers::to_contract(peer)),
            call_id: request.call_id().unwrap_or_default().to_owned(),
            request_uri: request.request_uri_str().unwrap_or_default().to_owned(),
            authenticated_user: String::new(),
            edge_uri: self.uri(peer.transport),
            session_id: session.to_string(),
            invite: request.as_bytes().clone(),
            attempt: 0,
        };
        let now = Instant::now();
        self.unclaimed.insert(tx, call.clone(), request.clone(), now, now + self.orphan_timeout);
        if let Err(e) = typed::publish(self.bus.as_ref(), &subjects::incoming_calls(), &call).await {
            tracing::warn!(error = %e, "new call not published");
            self.unclaimed.remove(tx);
            self.respond(tx, &request, 503, "Service Unavailable");
        }
    }

    async fn on_response(&mut self, tx: TxId, response: Message) {
        let Some((session, correlation, invite)) = self.clients.get(&tx).cloned() else { return };
        let status = response.status().unwrap_or(0);
        let forwarded = contracts::ResponseReceived { correlation, response: response.as_bytes().clone() };
        self.publish_event(&session, edge_event::Event::Response(forwarded)).await;
        if status >= 200 {
            if invite && status < 300 {
                // Keep it while 2xx retransmissions and forks may still arrive (Timer M).
                self.forget_later.push_back((Instant::now() + Duration::from_secs(32), tx));
            } else {
                self.clients.remove(&tx);
                self.correlations.remove(&(session, correlation));
            }
        }
    }
}
