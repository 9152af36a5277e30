//! `callmesh drain`: asks the node on this host to drain (`POST /drain` on `http.listen`)
//! and waits for its answer, which comes once its calls and transactions have ended or its
//! drain timeout has passed. Kubernetes runs it as the preStop hook, so SIGTERM only arrives
//! once the node has nothing left to do.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Validated;

/// Sends the drain request and prints the node's answer.
pub async fn request(config: &Validated) -> anyhow::Result<()> {
    let Some(addr) = config.http_listen else { bail!("http.listen is empty: no node to ask") };
    // The node answers by its own drain timeout; leave it room to say so.
    let wait = config.drain_timeout + Duration::from_secs(10);
    let answer = tokio::time::timeout(wait, async {
        let mut stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to the node at {addr}"))?;
        stream.write_all(b"POST /drain HTTP/1.0\r\nContent-Length: 0\r\n\r\n").await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        anyhow::Ok(text)
    })
    .await
    .with_context(|| format!("no answer from {addr} within {wait:?}"))??;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer.as_str(), ""));
    if !head.starts_with("HTTP/1.0 200") {
        bail!("{addr}: {}", head.lines().next().unwrap_or("no answer"));
    }
    print!("{body}");
    Ok(())
}
