//! Call records as JSON objects, one per line (`callmesh cdr export`): every field of the
//! record by its proto name, times in Unix milliseconds and as RFC 3339 (UTC).

use contracts::Cdr;
use serde_json::{Value, json};

/// `unix_ms` as RFC 3339 in UTC, to the millisecond (empty for 0: never).
pub fn rfc3339(unix_ms: u64) -> String {
    if unix_ms == 0 {
        return String::new();
    }
    let (days, ms) = ((unix_ms / 86_400_000) as i64, unix_ms % 86_400_000);
    let (year, month, day) = contracts::civil_from_days(days);
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// Unix milliseconds of an RFC 3339 time (`2026-12-01T09:30:00Z`, an offset, or a date
/// alone for its midnight UTC); `None` if it is not one.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, "00:00:00Z"));
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return None;
    }
    let (clock, offset_s) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) if time[i..].eq_ignore_ascii_case("z") => (&time[..i], 0),
        Some(i) => {
            let sign = if time[i..].starts_with('-') { -1 } else { 1 };
            let (oh, om) = time[i + 1..].split_once(':')?;
            (&time[..i], sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60))
        }
        None => return None,
    };
    let mut c = clock.splitn(3, ':');
    let (h, mi) = (c.next()?.parse::<i64>().ok()?, c.next()?.parse::<i64>().ok()?);
    let secs: f64 = c.next().unwrap_or("0").parse().ok()?;
    // days_from_civil.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = (days * 86_400 + h * 3600 + mi * 60 - offset_s) * 1000 + (secs * 1000.0).round() as i64;
    u64::try_from(ms).ok()
}

/// One call record as a JSON object.
pub fn cdr(sequence: u64, c: &Cdr) -> Value {
    let legs: Vec<Value> = c
        .legs
        .iter()
        .map(|l| json!({"role": l.role, "call_id": l.call_id, "uri": l.uri, "answered": l.answered, "status": l.status}))
        .collect();
    json!({
        "sequence": sequence,
        "session_id": c.session_id,
        "kind": c.kind,
        "caller": c.caller,
        "callee": c.callee,
        "agent": c.agent,
        "queue": c.queue,
        "start": rfc3339(c.start_ms),
        "answer": rfc3339(c.answer_ms),
        "end": rfc3339(c.end_ms),
        "start_ms": c.start_ms,
        "answer_ms": c.answer_ms,
        "end_ms": c.end_ms,
        "duration_ms": c.end_ms.saturating_sub(c.start_ms),
        "billsec_ms": if c.answer_ms > 0 { c.end_ms.saturating_sub(c.answer_ms) } else { 0 },
        "queue_wait_ms": c.queue_wait_ms,
        "disposition": c.disposition,
        "status": c.status,
        "hangup_by": c.hangup_by,
        "hangup_reason": c.hangup_reason,
        "mos": c.mos,
        "loss_percent": c.loss_percent,
        "recording": c.recording,
        "call_ids": c.legs.iter().map(|l| l.call_id.clone()).collect::<Vec<_>>(),
        "legs": legs,
        "written_by": c.written_by,
        "taken_over": c.taken_over,
        "caller_session": c.caller_session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_go_both_ways() {
        assert_eq!(rfc3339(0), "");
        assert_eq!(rfc3339(1), "1970-01-01T00:00:00.001Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_165_260_718), "2026-12-01T22:47:40.718Z");
        for ms in [1_000, 951_782_400_000, 1_796_165_260_718, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(parse_rfc3339("2026-12-01"), Some(1_796_083_200_000));
        assert_eq!(parse_rfc3339("2026-12-01T01:00:00+01:00"), Some(1_796_083_200_000));
        assert_eq!(parse_rfc3339("2026-13-01"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2026-12-01T10:00"), None);
    }
}
