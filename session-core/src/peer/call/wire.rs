//! Bytes between the engine and the agent: what the agent delivers becomes the engine's
//! SIP input (server transactions and client transactions named by their numbers), and
//! the engine's outputs are carried out — requests stamped with our Via and sent where
//! the dialog says, responses on their transactions, ACKs, CANCELs, the media set up from
//! each offer/answer, events handed to `control.rs` and `refer.rs`.

use std::time::{Duration, Instant};

use sip::endpoint::peer_for_uri;
use sip::message::Message;
use sip::transaction::{Peer, TxId};

use super::actor::Actor;
use crate::engine::{CALLER, CallEvent, Failure, MediaOutput, Output, ServerTx, SipInput};
use crate::peer::agent::{DialogInput, TxReply};

fn server(tx: TxId) -> ServerTx {
    ServerTx { edge: String::new(), id: tx.as_u64() }
}

impl Actor {
    /// What the agent delivers for this call.
    pub(super) fn on_dialog(&mut self, input: DialogInput) {
        if let DialogInput::Request { request: m, .. } | DialogInput::Reply { reply: TxReply::Response(m), .. } = &input {
            self.keep_sdp(m, false);
        }
        let input = match input {
            DialogInput::Request { tx, request, peer } => {
                self.remote_peer.addr = peer.addr;
                SipInput::Request { tx: server(tx), request, from: peer }
            }
            DialogInput::Ack(request) => SipInput::Ack { request },
            DialogInput::Cancelled(tx) => SipInput::Cancelled { tx: server(tx) },
            DialogInput::AckTimeout => {
                let Some((tx, _)) = &self.invite else { return };
                self.end_reason.get_or_insert_with(|| "our answer was never acknowledged".into());
                SipInput::AckTimeout { tx: server(*tx) }
            }
            DialogInput::Reply { tx, reply, .. } => {
                let Some(key) = self.keys.get(&tx).copied() else { return };
                match reply {
                    TxReply::Response(response) => SipInput::Response { key, response },
                    TxReply::Timeout => SipInput::Failed { key, reason: Failure::Timeout },
                    TxReply::TransportError => SipInput::Failed { key, reason: Failure::Transport },
                }
            }
            // A 2xx repeated after its transaction ended: it answers our INVITE.
            DialogInput::Stray(response) => {
                let Some(key) = self.engine.invite_key(CALLER) else { return };
                SipInput::Response { key, response }
            }
        };
        self.engine.handle_sip(input, Instant::now());
    }

    /// Carries out the engine's outputs, in order; then tells the application what changed.
    pub(super) async fn carry_out(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            if let Output::Respond { response: m, .. } | Output::Send { request: m, .. } = &output {
                self.keep_sdp(m, true);
            }
            match output {
                Output::Respond { tx, response } => {
                    let _ = self.ctx.agent.endpoint.respond(TxId::from_u64(tx.id), response);
                }
                Output::Send { key, request, route } => {
                    let peer = if request.to_tag().is_some() { self.in_dialog_peer() } else { route.peer };
                    self.send(key, request, peer).await;
                }
                Output::Ack { request, .. } => {
                    let peer = self.in_dialog_peer();
                    if let Some(ack) = self.stamped(&request, peer) {
                        let _ = self.ctx.agent.endpoint.send_ack(None, ack, peer);
                    }
                }
                Output::Cancel { key } => {
                    if let Some(tx) = self.txs.get(&key).copied() {
                        let _ = self.ctx.agent.endpoint.cancel(tx).await;
                    }
                }
                Output::Media(MediaOutput::Local(negotiated)) => {
                    *super::lock(&self.call.0.negotiated) = Some(negotiated.clone());
                    let _ = self.call.0.media.configure(negotiated);
                }
                // A relay's, a record's and a B2BUA's transfer lookups: not a local call's.
                Output::Media(_) | Output::Persist | Output::FindReplaced(_) => {}
                Output::Event(event) => self.on_event(event).await,
            }
        }
        self.publish().await;
    }

    /// Remembers the session description `message` carries (`ours`: we send it).
    pub(super) fn keep_sdp(&self, message: &Message, ours: bool) {
        let Some(body) = crate::engine::sdp_body(message) else { return };
        let text = String::from_utf8_lossy(body).into_owned();
        let mut sdp = super::lock(&self.call.0.sdp);
        if ours { sdp.0 = Some(text) } else { sdp.1 = Some(text) }
    }

    async fn send(&mut self, key: u64, request: Message, peer: Peer) {
        let sent = match self.stamped(&request, peer) {
            Some(request) => self.ctx.agent.send(request, peer, self.inbox_tx.clone()).await.ok(),
            None => None,
        };
        match sent {
            Some(tx) => {
                self.txs.insert(key, tx);
                self.keys.insert(tx, key);
            }
            None => self.engine.handle_sip(SipInput::Failed { key, reason: Failure::Transport }, Instant::now()),
        }
    }

    /// `message` with our Via on top, for `peer`'s transport.
    fn stamped(&self, message: &Message, peer: Peer) -> Option<Message> {
        let via = self.ctx.agent.endpoint.via(peer.transport);
        message.with_top_via(&via).map_err(|e| tracing::warn!(call = %self.call.id(), error = %e, "request not sent")).ok()
    }

    /// Where in-dialog requests go: the next hop if it is an address, else where the far end
    /// last sent from.
    fn in_dialog_peer(&self) -> Peer {
        self.engine
            .dialog(CALLER)
            .and_then(|d| peer_for_uri(d.next_hop(), self.remote_peer.transport))
            .unwrap_or(self.remote_peer)
    }

    async fn on_event(&mut self, event: CallEvent) {
        match event {
            CallEvent::Offered { replaces, .. } => self.on_offered(replaces).await,
            CallEvent::Reoffered { hold, .. } => self.on_reoffered(hold).await,
            CallEvent::Updated { status, .. } => self.on_updated(status).await,
            CallEvent::Dtmf { digit, .. } => self.dtmf_received(digit, Duration::from_millis(100)).await,
            CallEvent::TransferRequested { target, replaces, referrer_domain, .. } => {
                self.on_transfer_requested(target, replaces, referrer_domain).await;
            }
            CallEvent::ReferProgress { status, reason, last, .. } => self.on_refer_progress(status, reason, last).await,
            CallEvent::LegEnded { status, .. } => self.leg_ended(status),
            CallEvent::Ringing { .. }
            | CallEvent::Answered { .. }
            | CallEvent::Bridged { .. }
            | CallEvent::Transfer { .. }
            | CallEvent::Ended => {}
        }
    }
}
