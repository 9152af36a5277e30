//! Authentication header values: challenges (`WWW-Authenticate`, `Proxy-Authenticate`) and
//! credentials (`Authorization`, `Proxy-Authorization`), as `scheme name=value, …`
//! (RFC 3261 §25.1, RFC 7616). The digest computation lives in `crate::auth`.

use std::fmt;

use super::lex;
use super::{HeaderName, ParseError};

/// One `name=value` pair; `quoted` remembers whether the value was a quoted string so the
/// header prints back as it was received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthParam {
    pub name: String,
    /// Value with quotes removed and escapes resolved.
    pub value: String,
    pub quoted: bool,
}

/// A challenge or credentials value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthValue {
    pub scheme: String,
    pub params: Vec<AuthParam>,
}

impl AuthValue {
    pub fn new(scheme: &str) -> AuthValue {
        AuthValue { scheme: scheme.to_owned(), params: Vec::new() }
    }

    pub fn parse(s: &str, header: HeaderName) -> Result<AuthValue, ParseError> {
        let bad = ParseError::BadHeaderValue(header);
        let s = lex::trim(s);
        let scheme_len = s.bytes().take_while(|b| lex::is_token_byte(*b)).count();
        if scheme_len == 0 {
            return Err(bad);
        }
        let (scheme, rest) = s.split_at(scheme_len);
        let mut params = Vec::new();
        for item in lex::split_list(rest) {
            let (name, value) = lex::split_param(item);
            let value = value.ok_or(bad.clone())?;
            if !lex::is_token(name) || value.is_empty() {
                return Err(bad);
            }
            let quoted = value.starts_with('"');
            if quoted && !lex::is_valid_quoted(value) {
                return Err(bad);
            }
            params.push(AuthParam { name: name.to_owned(), value: lex::unquote(value).into_owned(), quoted });
        }
        Ok(AuthValue { scheme: scheme.to_owned(), params })
    }

    /// The value of parameter `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|p| p.name.eq_ignore_ascii_case(name)).map(|p| p.value.as_str())
    }

    /// Appends a parameter.
    pub fn push(&mut self, name: &str, value: &str, quoted: bool) -> &mut Self {
        self.params.push(AuthParam { name: name.to_owned(), value: value.to_owned(), quoted });
        self
    }
}

impl fmt::Display for AuthValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        for (i, p) in self.params.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            if p.quoted {
                write!(f, "{sep}{}={}", p.name, lex::quote(&p.value))?;
            } else {
                write!(f, "{sep}{}={}", p.name, p.value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in [
            r#"Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth", nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5"#,
            r#"Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1""#,
            r#"Digest realm="a \"quoted\" realm", algorithm=SHA-256"#,
        ] {
            let v = AuthValue::parse(s, HeaderName::Authorization).unwrap();
            assert_eq!(v.to_string(), s);
            assert_eq!(AuthValue::parse(&v.to_string(), HeaderName::Authorization).unwrap(), v);
        }
    }

    #[test]
    fn lookups_and_errors() {
        let v = AuthValue::parse(r#"Digest Realm="r",nonce="n""#, HeaderName::WwwAuthenticate).unwrap();
        assert_eq!(v.get("realm"), Some("r"));
        assert_eq!(v.get("nonce"), Some("n"));
        for bad in ["", "Digest realm", r#"Digest realm="open"#, "Digest =x"] {
            assert!(AuthValue::parse(bad, HeaderName::Authorization).is_err(), "{bad}");
        }
    }
}
