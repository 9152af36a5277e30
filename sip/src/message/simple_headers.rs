//! Small typed headers: `CSeq`, `RAck`, and the generic `value;params` shape shared by
//! Content-Type, Event, Subscription-State, Content-Disposition, Replaces and Reason.

use std::fmt;

use super::lex;
use super::method::Method;
use super::params::Params;
use super::{HeaderName, ParseError};

/// `CSeq: 4711 INVITE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn new(seq: u32, method: Method) -> CSeq {
        CSeq { seq, method }
    }

    /// The sequence number must be below 2^31 (RFC 3261 §8.1.1.5).
    pub fn parse(s: &str) -> Result<CSeq, ParseError> {
        let bad = ParseError::BadHeaderValue(HeaderName::CSeq);
        let mut it = s.split_ascii_whitespace();
        let seq = parse_number(it.next().ok_or(bad.clone())?, HeaderName::CSeq)?;
        let method = Method::parse(it.next().ok_or(bad.clone())?.as_bytes()).ok_or(bad.clone())?;
        if it.next().is_some() || seq >= 1 << 31 {
            return Err(bad);
        }
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// `RAck: 776656 1 INVITE` (RFC 3262).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RAck {
    pub rseq: u32,
    pub cseq: CSeq,
}

impl RAck {
    pub fn parse(s: &str) -> Result<RAck, ParseError> {
        let s = lex::trim(s);
        let (rseq, rest) = s.split_once(|c: char| c.is_ascii_whitespace()).ok_or(ParseError::BadHeaderValue(HeaderName::RAck))?;
        Ok(RAck { rseq: parse_number(rseq, HeaderName::RAck)?, cseq: CSeq::parse(rest)? })
    }
}

impl fmt::Display for RAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.rseq, self.cseq)
    }
}

/// A decimal number header value (Max-Forwards, Expires, Content-Length, RSeq…).
pub fn parse_number(s: &str, header: HeaderName) -> Result<u32, ParseError> {
    let s = lex::trim(s);
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadHeaderValue(header));
    }
    s.parse().map_err(|_| ParseError::BadHeaderValue(header))
}

/// A value followed by parameters: `application/sdp;charset=utf-8`, `refer;id=7`,
/// `active;expires=60`, `abc@host;to-tag=x;from-tag=y`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValueParams {
    pub value: String,
    pub params: Params,
}

impl ValueParams {
    pub fn new(value: &str) -> ValueParams {
        ValueParams { value: value.to_owned(), params: Params::new() }
    }

    pub fn parse(s: &str, header: HeaderName) -> Result<ValueParams, ParseError> {
        let s = lex::trim(s);
        let (value, params) = match lex::find_unquoted(s, b';') {
            Some(i) => (lex::trim(&s[..i]), &s[i + 1..]),
            None => (s, ""),
        };
        if value.is_empty() || value.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err(ParseError::BadHeaderValue(header));
        }
        Ok(ValueParams { value: value.to_owned(), params: Params::parse(params)? })
    }
}

impl fmt::Display for ValueParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.value, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq_round_trip_and_limits() {
        let c = CSeq::parse("  4711   INVITE ").unwrap();
        assert_eq!(c, CSeq::new(4711, Method::Invite));
        assert_eq!(CSeq::parse(&c.to_string()).unwrap(), c);
        assert_eq!(CSeq::parse("1 FOO").unwrap().method, Method::Extension("FOO".into()));
        for bad in ["", "INVITE", "x INVITE", "1", "1 INVITE extra", "2147483648 INVITE", "-1 BYE"] {
            assert!(CSeq::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rack_and_value_params_round_trip() {
        let r = RAck::parse("776656 1 INVITE").unwrap();
        assert_eq!(RAck::parse(&r.to_string()).unwrap(), r);
        for s in [
            "application/sdp;charset=utf-8",
            "refer;id=93809824",
            "active;expires=60",
            "a84b4c76e66710@pc33.atlanta.com;to-tag=7743;from-tag=6472",
        ] {
            let v = ValueParams::parse(s, HeaderName::Event).unwrap();
            assert_eq!(v.to_string(), s);
            assert_eq!(ValueParams::parse(&v.to_string(), HeaderName::Event).unwrap(), v);
        }
        assert!(ValueParams::parse(";x=1", HeaderName::Event).is_err());
    }
}
