//! Lexical helpers shared by every header parser: token characters, linear white space,
//! quoted strings with escapes, and splitting of comma lists and `;param` lists that
//! respects quotes and angle brackets (RFC 3261 §25.1).

use std::borrow::Cow;

/// `token` characters of RFC 3261 §25.1.
#[inline]
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~')
}

/// True when `s` is a non-empty `token`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Linear white space, including the CR/LF of a folded line.
#[inline]
pub fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Trims linear white space at both ends.
#[inline]
pub fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|c| !is_lws(*c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_lws(*c)).map_or(start, |i| i + 1);
    // Both ends sit next to ASCII bytes, so they are char boundaries.
    &s[start..end.max(start)]
}

/// Index of the first `needle` in `s` that is outside a quoted string and outside `<…>`.
pub fn find_unquoted(s: &str, needle: u8) -> Option<usize> {
    let bytes = s.as_bytes();
    if memchr::memchr2(b'"', b'<', bytes).is_none() {
        return memchr::memchr(needle, bytes);
    }
    let mut in_quotes = false;
    let mut angle = 0u32;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            match b {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else if b == needle && angle == 0 {
            return Some(i);
        } else {
            match b {
                b'"' => in_quotes = true,
                b'<' => angle += 1,
                b'>' => angle = angle.saturating_sub(1),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Splits a header value on the separator `sep` outside quotes and angle brackets,
/// yielding trimmed, non-empty parts.
pub fn split_unquoted(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        loop {
            let current = rest?;
            let (part, next) = match find_unquoted(current, sep) {
                Some(i) => (&current[..i], Some(&current[i + 1..])),
                None => (current, None),
            };
            rest = next;
            let part = trim(part);
            if !part.is_empty() {
                return Some(part);
            }
        }
    })
}

/// Splits a comma-separated header value (`Via: a, b`) into its elements.
pub fn split_list(s: &str) -> impl Iterator<Item = &str> {
    split_unquoted(s, b',')
}

/// One `name[=value]` parameter, with the value still quoted if it was.
pub fn split_param(p: &str) -> (&str, Option<&str>) {
    match p.find('=') {
        Some(i) => (trim(&p[..i]), Some(trim(&p[i + 1..]))),
        None => (trim(p), None),
    }
}

/// Iterates `;name=value` parameters (the input starts after the first `;` or is empty).
pub fn params(s: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    split_unquoted(s, b';').map(split_param)
}

/// Finds parameter `name` (case-insensitive) in a `;`-separated list; `Some(None)` when it
/// has no value.
pub fn find_param<'a>(s: &'a str, name: &str) -> Option<Option<&'a str>> {
    params(s).find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// Removes surrounding quotes and resolves `\x` escapes. Unquoted input is returned as is.
pub fn unquote(s: &str) -> Cow<'_, str> {
    let inner = match s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if s.len() >= 2 => inner,
        _ => return Cow::Borrowed(s),
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Quotes `s` as a `quoted-string`, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// True when a quoted string is well formed: opening and closing quote, escapes complete.
pub fn is_valid_quoted(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b'"' || b[b.len() - 1] != b'"' {
        return false;
    }
    let mut i = 1;
    while i < b.len() - 1 {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return false,
            _ => i += 1,
        }
    }
    i == b.len() - 1
}

/// Byte offset of `inner` inside `outer`; `inner` must be a sub-slice of `outer`.
pub fn offset_in(outer: &str, inner: &str) -> usize {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    debug_assert!(start + inner.len() <= outer.len());
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_split_respects_quotes_and_brackets() {
        let v: Vec<_> = split_list(r#""Doe, John" <sip:a@b;x=1,2>;q=1 , <sip:c@d>"#).collect();
        assert_eq!(v, vec![r#""Doe, John" <sip:a@b;x=1,2>;q=1"#, "<sip:c@d>"]);
    }

    #[test]
    fn unquote_resolves_escapes() {
        assert_eq!(unquote(r#""a\"b\\c""#), r#"a"b\c"#);
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert!(is_valid_quoted(r#""a\"b""#));
        assert!(!is_valid_quoted(r#""a\""#));
    }

    #[test]
    fn params_find_is_case_insensitive() {
        assert_eq!(find_param("branch=z9hG4bK1;RPort;ttl=1", "rport"), Some(None));
        assert_eq!(find_param("Branch=x", "branch"), Some(Some("x")));
        assert_eq!(find_param("a=1", "b"), None);
    }
}
