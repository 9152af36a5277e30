//! `name-addr` / `addr-spec` values (RFC 3261 §20.10, §25.1): From, To, Contact, Route,
//! Record-Route, Refer-To, Referred-By. Header parameters such as `tag`, `expires` and `q`
//! follow the address.

use std::fmt;

use super::lex;
use super::params::Params;
use super::uri::Uri;
use super::{HeaderName, ParseError};

/// An address with an optional display name and header parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NameAddr {
    /// Display name, unquoted.
    pub display_name: Option<String>,
    pub uri: Uri,
    pub params: Params,
}

/// The textual parts of a name-addr value, borrowed from the message.
pub(crate) struct NameAddrParts<'a> {
    pub display: Option<&'a str>,
    pub uri: &'a str,
    /// Header parameters after the first `;`, or empty.
    pub params: &'a str,
}

/// Splits `"Name" <uri>;params` or `uri;params`.
pub(crate) fn split_name_addr(s: &str, header: HeaderName) -> Result<NameAddrParts<'_>, ParseError> {
    let bad = ParseError::BadHeaderValue(header);
    let s = lex::trim(s);
    if let Some(open) = lex::find_unquoted(s, b'<') {
        let display = lex::trim(&s[..open]);
        if display.starts_with('"') && !lex::is_valid_quoted(display) {
            return Err(bad);
        }
        let close = s[open..].find('>').ok_or(bad.clone())? + open;
        let uri = &s[open + 1..close];
        let rest = lex::trim(&s[close + 1..]);
        let params = match rest.strip_prefix(';') {
            Some(p) => p,
            None if rest.is_empty() => "",
            None => return Err(bad),
        };
        let display = (!display.is_empty()).then_some(display);
        return Ok(NameAddrParts { display, uri, params });
    }
    if s.starts_with('"') {
        return Err(bad);
    }
    let (uri, params) = match s.find(';') {
        Some(i) => (lex::trim(&s[..i]), &s[i + 1..]),
        None => (s, ""),
    };
    if uri.is_empty() || uri.contains(char::is_whitespace) {
        return Err(bad);
    }
    Ok(NameAddrParts { display: None, uri, params })
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr { display_name: None, uri, params: Params::new() }
    }

    pub fn parse(s: &str) -> Result<NameAddr, ParseError> {
        Self::parse_for(s, HeaderName::To)
    }

    /// Parses a value of `header` (the name only shapes the error).
    pub fn parse_for(s: &str, header: HeaderName) -> Result<NameAddr, ParseError> {
        let parts = split_name_addr(s, header)?;
        let display_name = parts.display.map(|d| {
            if d.starts_with('"') { lex::unquote(d).into_owned() } else { d.split_whitespace().collect::<Vec<_>>().join(" ") }
        });
        Ok(NameAddr { display_name, uri: Uri::parse(lex::trim(parts.uri))?, params: Params::parse(parts.params)? })
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    pub fn with_tag(mut self, tag: &str) -> NameAddr {
        self.params.set("tag", Some(tag));
        self
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            write!(f, "{} ", lex::quote(d))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

impl std::str::FromStr for NameAddr {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NameAddr::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in [
            r#""Bob \"the builder\"" <sips:bob@biloxi.com>;tag=a48s"#,
            "<sip:alice@atlanta.com>;tag=1928301774",
            "<sip:[2001:db8::1]:5060;lr>",
            "<tel:+12015550123>",
            r#""A. G. Bell" <sip:agb@bell-telephone.com>;expires=3600;q=0.7"#,
        ] {
            let n = NameAddr::parse(s).unwrap();
            assert_eq!(n.to_string(), s);
            assert_eq!(NameAddr::parse(&n.to_string()).unwrap(), n);
        }
    }

    #[test]
    fn addr_spec_params_belong_to_the_header() {
        let n = NameAddr::parse("sip:alice@atlanta.com;tag=88sja8x").unwrap();
        assert_eq!(n.tag(), Some("88sja8x"));
        assert!(n.uri.as_sip().unwrap().params.is_empty());
        let n = NameAddr::parse("Alice  Smith <sip:a@b>").unwrap();
        assert_eq!(n.display_name.as_deref(), Some("Alice Smith"));
        for bad in ["", "<sip:a@b", "\"unterminated <sip:a@b>", "<sip:a@b> junk", "sip:a b@c"] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
    }
}
