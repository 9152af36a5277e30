//! Between the call engine and the cluster: what an edge reports becomes the engine's SIP
//! input, what a media node reports its media input; what the engine asks to send becomes
//! a command to the edge that carries the leg.

use bytes::Bytes;
use cluster::contracts::{self, EdgeEvent, FailureReason, MediaEvent, edge_command, edge_event, media_event};
use cluster::subjects::SessionId;
use session_core::engine::{Failure, MediaInput, Output, Route, ServerTx, SipInput, peer_from_contract, peer_to_contract};
use sip::message::Message;
use sip::transaction::Peer;

/// A message from an edge's bytes (stream framing first: edges forward what they parsed).
pub fn parse(bytes: Bytes) -> Option<Message> {
    Message::parse_stream_message(bytes.clone()).or_else(|_| Message::parse_datagram(bytes)).ok()
}

/// The in-dialog requests a call was given, by edge and transaction: an edge publishes a
/// request again until it is answered (the call's node may have missed it while a NATS
/// server died), and the call takes each once.
#[derive(Debug, Default)]
pub struct Requests(std::collections::HashSet<(String, u64)>);

impl Requests {
    /// False for a request the call was given before.
    pub fn is_new(&mut self, event: &EdgeEvent) -> bool {
        match &event.event {
            Some(edge_event::Event::Request(r)) => self.0.insert((event.edge_id.clone(), r.tx)),
            _ => true,
        }
    }
}

/// Whether the edge gave the session's call to another copy of it (`Disowned`).
pub fn disowned(event: &EdgeEvent) -> bool {
    matches!(event.event, Some(edge_event::Event::Disowned(_)))
}

/// The engine's input for what edge `event.edge_id` reports.
pub fn sip_input(event: EdgeEvent) -> Option<SipInput> {
    let edge = event.edge_id;
    let tx = |id| ServerTx { edge: edge.clone(), id };
    Some(match event.event? {
        edge_event::Event::Request(r) => {
            let from = r.source.as_ref().and_then(peer_from_contract).unwrap_or_else(|| Peer::udp(([0, 0, 0, 0], 0).into()));
            SipInput::Request { tx: tx(r.tx), request: parse(r.request)?, from }
        }
        edge_event::Event::Ack(a) => SipInput::Ack { request: parse(a.ack)? },
        edge_event::Event::Cancelled(c) => SipInput::Cancelled { tx: tx(c.tx) },
        edge_event::Event::Response(r) => SipInput::Response { key: r.correlation, response: parse(r.response)? },
        edge_event::Event::Disowned(_) | edge_event::Event::Control(_) => return None,
        edge_event::Event::Failed(f) => match FailureReason::try_from(f.reason).unwrap_or(FailureReason::Timeout) {
            FailureReason::NoAck => SipInput::AckTimeout { tx: tx(f.tx) },
            FailureReason::Transport => SipInput::Failed { key: f.correlation, reason: Failure::Transport },
            _ => SipInput::Failed { key: f.correlation, reason: Failure::Timeout },
        },
    })
}

/// The edge and the command that carry out a SIP output (`Cancel` needs the edge its INVITE
/// went through: `edge_of_key`).
pub fn edge_command(output: Output, edge_of_key: impl Fn(u64) -> Option<String>) -> Option<(String, edge_command::Command)> {
    match output {
        Output::Respond { tx, response } => Some((
            tx.edge,
            edge_command::Command::Respond(contracts::Respond { tx: tx.id, response: response.as_bytes().clone() }),
        )),
        Output::Send { key, request, route } => Some((route.edge.clone(), send(key, &request, &route))),
        Output::Ack { request, route, invite_key } => Some((
            route.edge.clone(),
            edge_command::Command::SendAck(contracts::SendAck {
                invite_correlation: invite_key.unwrap_or(0),
                ack: request.as_bytes().clone(),
                destination: Some(peer_to_contract(&route.peer)),
            }),
        )),
        Output::Cancel { key } => {
            Some((edge_of_key(key)?, edge_command::Command::Cancel(contracts::CancelRequest { correlation: key })))
        }
        _ => None,
    }
}

fn send(key: u64, request: &Message, route: &Route) -> edge_command::Command {
    edge_command::Command::SendRequest(contracts::SendRequest {
        correlation: key,
        request: request.as_bytes().clone(),
        destination: Some(peer_to_contract(&route.peer)),
    })
}

/// What a media node reports, for the engine (quality and prompt ends are logged only).
pub fn media_input(session: &SessionId, event: MediaEvent) -> Option<MediaInput> {
    match event.event? {
        media_event::Event::NoRtp(n) => Some(MediaInput::NoRtp { slot: n.leg }),
        media_event::Event::Dtmf(d) => {
            d.digit.chars().next().map(|digit| MediaInput::Dtmf { slot: d.leg, digit, duration_ms: d.duration_ms })
        }
        media_event::Event::PromptEnded(p) => {
            tracing::debug!(%session, prompt = p.id, "prompt played");
            None
        }
        media_event::Event::Quality(q) => {
            let (leg, mos, loss, jitter) = (q.leg, q.mos, q.loss_percent, q.jitter_ms);
            if q.level == "poor" || q.level == "critical" {
                tracing::warn!(%session, leg, mos, loss, jitter, level = %q.level, "call quality");
            } else {
                tracing::info!(%session, leg, mos, loss, jitter, level = %q.level, "call quality");
            }
            None
        }
    }
}
