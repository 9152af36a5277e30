//! `callmesh cdr export [--since <time>]`: the call records written since a time (Unix
//! milliseconds, an RFC 3339 time or date, or a span back from now: `90s`, `15m`, `2h`,
//! `7d`), one JSON object per line on stdout, oldest first.

use std::io::Write;

use anyhow::{Context, bail};
use contracts::ExportRequest;
use contracts::cdrs_client::CdrsClient;

use super::{ApiArgs, connect, status};

/// When `since` is, in Unix milliseconds.
pub fn parse_since(since: &str, now_ms: u64) -> anyhow::Result<u64> {
    if let Ok(ms) = since.parse::<u64>() {
        return Ok(ms);
    }
    let unit = |u: char| match u {
        's' => Some(1_000),
        'm' => Some(60_000),
        'h' => Some(3_600_000),
        'd' => Some(86_400_000),
        _ => None,
    };
    if let Some(u) = since.chars().last().and_then(unit)
        && let Ok(n) = since[..since.len() - 1].parse::<u64>()
    {
        return Ok(now_ms.saturating_sub(n.saturating_mul(u)));
    }
    match api::json::parse_rfc3339(since) {
        Some(ms) => Ok(ms),
        None => bail!("--since {since:?}: not Unix milliseconds, an RFC 3339 time, or a span like 15m"),
    }
}

/// Writes the records since `since` to stdout.
pub async fn export(args: &ApiArgs, default: Option<std::net::SocketAddr>, since: Option<&str>) -> anyhow::Result<()> {
    let since = match since {
        Some(s) => parse_since(s, contracts::unix_ms())?,
        None => 0,
    };
    let (channel, bearer) = connect(args, default).await?;
    let mut client = CdrsClient::with_interceptor(channel, bearer);
    let mut records = client.export(ExportRequest { since_unix_ms: since }).await.map_err(status)?.into_inner();
    let mut out = std::io::stdout().lock();
    while let Some(entry) = records.message().await.map_err(status)? {
        let Some(cdr) = entry.cdr else { continue };
        writeln!(out, "{}", api::json::cdr(entry.sequence, &cdr)).context("writing to stdout")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_time_a_date_or_a_span() {
        let now = 1_796_165_260_718;
        assert_eq!(parse_since("1700000000000", now).unwrap(), 1_700_000_000_000);
        assert_eq!(parse_since("15m", now).unwrap(), now - 900_000);
        assert_eq!(parse_since("2d", now).unwrap(), now - 172_800_000);
        assert_eq!(parse_since("2026-12-01", now).unwrap(), 1_796_083_200_000);
        assert_eq!(parse_since("2026-12-01T22:47:40.718Z", now).unwrap(), now);
        for bad in ["", "m", "15x", "last week"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }
}
