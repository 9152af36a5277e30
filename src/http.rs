//! The node's HTTP endpoint: `/metrics` (Prometheus text) and `/healthz`. A deliberately
//! small HTTP/1.0 responder: one request per connection, no body.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::roles::Node;

/// Serves `node`'s metrics on `addr`; returns the bound address.
pub async fn serve(addr: SocketAddr, node: Arc<Node>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let node = node.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let (status, body) = match path {
                    "/metrics" => ("200 OK", render(&node).await),
                    "/healthz" | "/readyz" => ("200 OK", "ok\n".to_owned()),
                    _ => ("404 Not Found", "not found\n".to_owned()),
                };
                let response = format!(
                    "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok(bound)
}

/// The metrics of every role the node runs.
pub async fn render(node: &Node) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, value: u64| {
        let _ = writeln!(out, "# TYPE callmesh_{name} {kind}\ncallmesh_{name} {value}");
    };
    if let Some(edge) = &node.edge {
        let s = &edge.stats;
        metric("edge_calls_total", "counter", s.calls.get());
        metric("edge_calls_unclaimed_total", "counter", s.unclaimed.get());
        metric("edge_in_dialog_requests_total", "counter", s.in_dialog.get());
        metric("edge_registrations_total", "counter", s.registrations.get());
        metric("edge_bad_commands_total", "counter", s.bad_commands.get());
        if let Some(t) = edge.endpoint_stats().await {
            metric("sip_requests_received_total", "counter", t.transactions.requests_received);
            metric("sip_responses_received_total", "counter", t.transactions.responses_received);
            metric("sip_requests_rejected_total", "counter", t.transactions.requests_rejected);
            metric("sip_messages_dropped_total", "counter", t.transactions.messages_dropped);
            metric("sip_retransmissions_sent_total", "counter", t.transactions.retransmissions_sent);
            metric("sip_server_transactions", "gauge", t.transactions.server_transactions as u64);
            metric("sip_client_transactions", "gauge", t.transactions.client_transactions as u64);
        }
    }
    if let Some(r) = &node.router {
        metric("router_routed_total", "counter", r.routed.get());
        metric("router_rejected_total", "counter", r.rejected.get());
    }
    if let Some(s) = &node.session {
        metric("session_calls_started_total", "counter", s.started.load(Ordering::Relaxed));
        metric("session_calls_active", "gauge", s.active.load(Ordering::Relaxed));
        metric("session_calls_answered_total", "counter", s.answered.load(Ordering::Relaxed));
        metric("session_calls_unanswered_total", "counter", s.unanswered.load(Ordering::Relaxed));
    }
    if let Some(m) = &node.media {
        metric("media_sessions_active", "gauge", m.active_sessions() as u64);
        metric("media_free_port_pairs", "gauge", m.free_port_pairs() as u64);
        metric("media_rtp_packets_relayed_total", "counter", m.packets_relayed());
        metric("media_allocation_failures_total", "counter", m.stats().allocation_failures.load(Ordering::Relaxed));
    }
    metric("bus_decode_errors_total", "counter", cluster::metrics::decode_errors());
    metric("bus_slow_consumer_drops_total", "counter", cluster::metrics::slow_consumer_drops());
    out
}
