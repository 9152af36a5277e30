//! The node's HTTP endpoint, for Prometheus and Kubernetes: `GET /metrics` (Prometheus text
//! format), `GET /healthz` (alive), `GET /readyz` (ready for new work: see
//! `crate::health`), and `POST /drain` (stop taking work, answer once drained — the chart's
//! preStop hook; refused unless the caller is on this host), and on nodes that run the API
//! the wallboard (`crate::wallboard`). A deliberately small HTTP/1.0 responder: one request
//! per connection, no request body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics;
use crate::roles::Node;

/// Serves `node` on `addr`; returns the bound address.
pub async fn serve(addr: SocketAddr, node: Arc<Node>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            tokio::spawn(answer(stream, peer, node.clone()));
        }
    });
    Ok(bound)
}

/// The request line and headers (up to 1 KiB, 5 s): a request may arrive in pieces.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 512];
        while buf.len() < 1024 && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    String::from_utf8_lossy(&buf).into_owned()
}

async fn answer(mut stream: TcpStream, peer: SocketAddr, node: Arc<Node>) {
    let request = read_head(&mut stream).await;
    let mut words = request.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    if method == "GET" && crate::wallboard::answer(&mut stream, path, &node).await {
        return;
    }
    let same_host = stream.local_addr().is_ok_and(|local| local.ip() == peer.ip()) || peer.ip().is_loopback();
    let (status, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", metrics::render(&node).await),
        ("GET", "/healthz") if node.is_live() => ("200 OK", "ok\n".to_owned()),
        ("GET", "/healthz") => ("503 Service Unavailable", "the SIP edge stopped\n".to_owned()),
        ("GET", "/readyz") => {
            let readiness = node.readiness();
            let status = if readiness.is_ready() { "200 OK" } else { "503 Service Unavailable" };
            (status, readiness.report())
        }
        ("POST", "/drain") if same_host => {
            let left = node.drain_and_wait().await;
            let body = if left.is_empty() {
                "drained\n".to_owned()
            } else {
                let left: Vec<String> = left.iter().map(|(what, n)| format!("{n} {what}")).collect();
                format!("drain timeout: {} left\n", left.join(", "))
            };
            ("200 OK", body)
        }
        ("POST", "/drain") => ("403 Forbidden", "only from this host\n".to_owned()),
        (_, "/metrics" | "/healthz" | "/readyz" | "/drain") => ("405 Method Not Allowed", "method not allowed\n".to_owned()),
        _ => ("404 Not Found", "not found\n".to_owned()),
    };
    let response =
        format!("HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let _ = stream.write_all(response.as_bytes()).await;
}
