//! The wallboard on the HTTP port: `GET /wallboard` is one page (HTML, CSS and JS in the
//! binary: nothing is fetched from anywhere else), `GET /wallboard/events` the server-sent
//! events it listens to — a JSON snapshot of the queues and agents at once, then after each
//! burst of events in the feed (`api::board`). Served by nodes that run the API.

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::roles::Node;

const PAGE: &str = include_str!("wallboard.html");

/// Answers `path` if it is the wallboard's; false if it is not (or the node has no API).
pub async fn answer(stream: &mut TcpStream, path: &str, node: &Node) -> bool {
    let Some(api) = &node.api else { return false };
    match path {
        "/wallboard" | "/wallboard/" => {
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-cache\r\nContent-Length: {}\r\n\r\n",
                PAGE.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(PAGE.as_bytes()).await;
            true
        }
        "/wallboard/events" => {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return true;
            }
            // Until the page goes (a write fails).
            let mut updates = Box::pin(api.board.updates());
            while let Some(snapshot) = updates.next().await {
                if stream.write_all(format!("data: {snapshot}\n\n").as_bytes()).await.is_err() {
                    break;
                }
            }
            true
        }
        _ => false,
    }
}
