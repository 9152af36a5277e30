//! Reading a Callmesh process's Prometheus metrics over plain HTTP (`GET /metrics`), and
//! other plain requests to its HTTP endpoint.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Every sample of `GET /metrics` on `addr`, as name (with labels) → value.
pub fn scrape(addr: SocketAddr) -> Result<HashMap<String, u64>, String> {
    let (_, body) = request(addr, "GET", "/metrics")?;
    Ok(parse(&body))
}

/// One HTTP/1.0 request without a body: the status code and the body.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| format!("{addr}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    let request = format!("{method} {path} HTTP/1.0\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| format!("{addr}: {e}"))?;
    let mut text = String::new();
    stream.read_to_string(&mut text).map_err(|e| format!("{addr}: {e}"))?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("{addr}: no HTTP answer: {text:?}"))?;
    let code =
        head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("{addr}: bad status line {head:?}"))?;
    Ok((code, body.to_owned()))
}

/// The samples of a Prometheus text exposition (comments skipped, integral values only).
pub fn parse(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(k, v)| Some((k.to_owned(), v.trim().parse().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_are_read_and_comments_skipped() {
        let m = super::parse("HTTP/1.0 200 OK\r\n\r\n# TYPE a counter\na 12\nb{x=\"y z\"} 3\nc 1.5\n");
        assert_eq!(m.get("a"), Some(&12));
        assert_eq!(m.get("b{x=\"y z\"}"), Some(&3));
        assert_eq!(m.len(), 2);
    }
}
