//! Commands other nodes give this edge: respond on a server transaction, start a client
//! transaction (stamped with this edge's Via), send the ACK for a 2xx, cancel an INVITE,
//! publish again a session's requests not answered yet (its new owner asks), take a
//! response another edge on our address received for us, send a message outside any
//! transaction (a response whose transaction died with another edge).

use bytes::Bytes;
use cluster::contracts::{self, EdgeCommand, FailureReason, edge_command, edge_event};
use cluster::subjects::SessionId;
use sip::message::{Message, Method};
use sip::transaction::TxId;

use crate::node::Edge;
use crate::peers;
use crate::unclaimed::Claim;

fn parse(bytes: Bytes) -> Option<Message> {
    Message::parse_stream_message(bytes).ok()
}

pub(crate) async fn execute(edge: &mut Edge, command: EdgeCommand) {
    if let Some(edge_command::Command::Relay(r)) = command.command {
        let Some(source) = r.source.as_ref().and_then(peers::from_contract) else { return edge.stats.bad_commands.inc() };
        let _ = edge.handle.inject(r.message, source);
        return;
    }
    let Ok(session) = SessionId::new(command.session_id.clone()) else {
        edge.stats.bad_commands.inc();
        tracing::warn!(session = %command.session_id, "edge command with an invalid session id");
        return;
    };
    if let Some(edge_command::Command::Replay(_)) = command.command {
        return replay(edge, &session).await;
    }
    match edge.unclaimed.claim(&session, tokio::time::Instant::now()) {
        Claim::Won { tx, rivals } if !rivals.is_empty() => {
            edge.server_invites.insert(tx, session.clone());
            for rival in rivals {
                disown(edge, &rival, &session).await;
            }
        }
        Claim::Lost { winner } => {
            edge.stats.disowned.inc();
            return disown(edge, &session, &winner).await;
        }
        _ => {}
    }
    let done = match command.command {
        Some(edge_command::Command::Respond(r)) => respond(edge, r),
        Some(edge_command::Command::SendRequest(s)) => send_request(edge, &session, s).await,
        Some(edge_command::Command::SendAck(a)) => send_ack(edge, &session, a),
        Some(edge_command::Command::SendStateless(m)) => {
            match (parse(m.message), m.destination.as_ref().and_then(peers::from_contract)) {
                (Some(message), Some(peer)) => edge.handle.send_stateless(message, peer).is_ok(),
                _ => false,
            }
        }
        Some(edge_command::Command::Cancel(c)) => match edge.correlations.get(&(session, c.correlation)) {
            Some(tx) => edge.handle.cancel(*tx).await.is_ok(),
            None => false,
        },
        Some(edge_command::Command::Replay(_) | edge_command::Command::Relay(_)) | None => false,
    };
    if !done {
        edge.stats.bad_commands.inc();
        tracing::debug!(session = %command.session_id, "edge command not carried out");
    }
}

/// Tells `session` that `winner`, another copy of its call, won it (`unclaimed.rs`).
async fn disown(edge: &mut Edge, session: &SessionId, winner: &SessionId) {
    tracing::info!(%session, %winner, "another copy of the call won it: session disowned");
    edge.publish_event(session, edge_event::Event::Disowned(contracts::Disowned { winner: winner.to_string() })).await;
}

/// Publishes again `session`'s requests waiting for an answer, with a fresh deadline, and
/// the ACKs forwarded lately: its new owner was not there to take them, and its old one
/// may have died before it recorded them.
async fn replay(edge: &mut Edge, session: &SessionId) {
    let acks: Vec<_> = edge.recent_acks.iter().filter(|(_, s, _)| s == session).map(|(_, _, a)| a.clone()).collect();
    for ack in acks {
        tracing::info!(%session, "ACK published again for the session's new owner");
        edge.publish_event(session, edge_event::Event::Ack(ack)).await;
    }
    let deadline = tokio::time::Instant::now() + edge.orphan_timeout;
    let mut waiting = Vec::new();
    for (tx, u) in edge.unanswered.iter_mut() {
        if u.request.to_tag().and_then(cluster::tags::session_of).is_some_and(|(s, _)| &s == session) {
            u.until = deadline;
            waiting.push((*tx, u.request.clone(), u.peer));
        }
    }
    for (tx, request, peer) in waiting {
        tracing::info!(%session, tx = tx.as_u64(), "request published again for the session's new owner");
        edge.publish_request(tx, &request, peer).await;
    }
}

fn respond(edge: &mut Edge, r: contracts::Respond) -> bool {
    let tx = TxId::from_u64(r.tx);
    let Some(response) = parse(r.response) else { return false };
    let status = response.status().unwrap_or(0);
    if status >= 180
        && let Some(started) = edge.setup_started.remove(&tx)
        && status < 300
    {
        edge.stats.call_setup.observe(started.elapsed());
    }
    if status >= 300 {
        edge.server_invites.remove(&tx);
    }
    edge.unanswered.remove(&tx);
    edge.handle.respond(tx, response).is_ok()
}

async fn send_request(edge: &mut Edge, session: &SessionId, s: contracts::SendRequest) -> bool {
    let (Some(request), Some(peer)) = (parse(s.request), s.destination.as_ref().and_then(peers::from_contract)) else {
        return false;
    };
    // The same request again (its session's new owner could not know it had left): the
    // transaction under way carries it.
    if edge.correlations.get(&(session.clone(), s.correlation)).is_some() {
        return true;
    }
    let invite = request.method() == Some(&Method::Invite);
    let Ok(request) = request.with_top_via(&edge.via(peer.transport)) else { return false };
    match edge.handle.send_request(request, peer).await {
        Ok(tx) => {
            edge.clients.insert(tx, (session.clone(), s.correlation, invite));
            edge.correlations.insert((session.clone(), s.correlation), tx);
            true
        }
        Err(e) => {
            tracing::warn!(%session, error = %e, "request not sent");
            let failed = contracts::RequestFailed { correlation: s.correlation, tx: 0, reason: FailureReason::Transport as i32 };
            edge.publish_event(session, edge_event::Event::Failed(failed)).await;
            true
        }
    }
}

fn send_ack(edge: &mut Edge, session: &SessionId, a: contracts::SendAck) -> bool {
    let (Some(ack), Some(peer)) = (parse(a.ack), a.destination.as_ref().and_then(peers::from_contract)) else { return false };
    let Ok(ack) = ack.with_top_via(&edge.via(peer.transport)) else { return false };
    let invite_tx = edge.correlations.get(&(session.clone(), a.invite_correlation)).copied();
    edge.handle.send_ack(invite_tx, ack, peer).is_ok()
}
