//! URIs: `sip:`, `sips:` (RFC 3261 §19.1), `tel:` (RFC 3966), and any other absolute URI
//! kept opaque so a server can answer `416 Unsupported URI Scheme`.

use std::fmt;

use super::ParseError;
use super::host::HostPort;
use super::params::Params;

/// A parsed URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Uri {
    Sip(SipUri),
    Tel(TelUri),
    /// A URI with a scheme this stack does not handle (e.g. `mailto:`, `http:`).
    Other {
        scheme: String,
        rest: String,
    },
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SipUri {
    pub secure: bool,
    /// User part, still escaped as on the wire.
    pub user: Option<String>,
    pub password: Option<String>,
    pub host_port: HostPort,
    pub params: Params,
    /// `?name=value&…` headers, still escaped.
    pub headers: Vec<(String, String)>,
}

/// A `tel:` URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TelUri {
    pub number: String,
    pub params: Params,
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        let colon = s.find(':').ok_or(ParseError::BadUri)?;
        let (scheme, rest) = (&s[..colon], &s[colon + 1..]);
        if scheme.is_empty()
            || !scheme.as_bytes()[0].is_ascii_alphabetic()
            || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(ParseError::BadUri);
        }
        if scheme.eq_ignore_ascii_case("sip") {
            SipUri::parse_rest(rest, false).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_rest(rest, true).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUri::parse_rest(rest).map(Uri::Tel)
        } else {
            if rest.is_empty() || rest.bytes().any(|b| b <= b' ' || b == b'>' || b == b'<') {
                return Err(ParseError::BadUri);
            }
            Ok(Uri::Other { scheme: scheme.to_ascii_lowercase(), rest: rest.to_owned() })
        }
    }

    /// The scheme, lowercase.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other { scheme, .. } => scheme,
        }
    }

    /// The user part of a SIP URI or the number of a tel URI.
    pub fn user(&self) -> Option<&str> {
        match self {
            Uri::Sip(u) => u.user.as_deref(),
            Uri::Tel(t) => Some(&t.number),
            Uri::Other { .. } => None,
        }
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }
}

impl SipUri {
    /// A plain `sip:user@host:port` URI.
    pub fn new(user: Option<&str>, host_port: HostPort) -> SipUri {
        SipUri {
            secure: false,
            user: user.map(str::to_owned),
            password: None,
            host_port,
            params: Params::new(),
            headers: Vec::new(),
        }
    }

    fn parse_rest(rest: &str, secure: bool) -> Result<SipUri, ParseError> {
        let (user, password, after_user) = match rest.find('@') {
            Some(at) => {
                let userinfo = &rest[..at];
                let (user, password) = match userinfo.find(':') {
                    Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                    None => (userinfo, None),
                };
                if user.is_empty() || !user.bytes().all(is_user_byte) {
                    return Err(ParseError::BadUri);
                }
                if let Some(p) = password
                    && !p.bytes().all(is_user_byte)
                {
                    return Err(ParseError::BadUri);
                }
                (Some(user.to_owned()), password.map(str::to_owned), &rest[at + 1..])
            }
            None => (None, None, rest),
        };
        let host_end = after_user.find([';', '?']).unwrap_or(after_user.len());
        let host_port = HostPort::parse(&after_user[..host_end])?;
        let tail = &after_user[host_end..];
        let (param_text, header_text) = match tail.find('?') {
            Some(q) => (&tail[..q], Some(&tail[q + 1..])),
            None => (tail, None),
        };
        let params = Params::parse(param_text.strip_prefix(';').unwrap_or(param_text))?;
        let mut headers = Vec::new();
        if let Some(h) = header_text {
            for pair in h.split('&') {
                let (n, v) = pair.split_once('=').ok_or(ParseError::BadUri)?;
                if n.is_empty() || !(n.bytes().chain(v.bytes())).all(is_header_byte) {
                    return Err(ParseError::BadUri);
                }
                headers.push((n.to_owned(), v.to_owned()));
            }
        }
        Ok(SipUri { secure, user, password, host_port, params, headers })
    }
}

/// Characters of the user/password part: unreserved, escapes, and user-unreserved.
fn is_user_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
                | b'('
                | b')'
                | b'%'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b';'
                | b'?'
                | b'/'
        )
}

fn is_header_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' | b'%' | b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$'
        )
}

impl TelUri {
    fn parse_rest(rest: &str) -> Result<TelUri, ParseError> {
        let end = rest.find(';').unwrap_or(rest.len());
        let number = &rest[..end];
        let valid = !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_hexdigit() || matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#'));
        if !valid {
            return Err(ParseError::BadUri);
        }
        let params = Params::parse(rest[end..].strip_prefix(';').unwrap_or(""))?;
        Ok(TelUri { number: number.to_owned(), params })
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(t) => write!(f, "tel:{}{}", t.number, t.params),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}{}", self.host_port, self.params)?;
        for (i, (n, v)) in self.headers.iter().enumerate() {
            write!(f, "{}{n}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Uri {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cases = [
            "sip:alice@atlanta.com",
            "sip:alice:secret@atlanta.com;transport=tcp",
            "sips:bob@[2001:db8::10]:5061;lr",
            "sip:+1-212-555-1212:1234@gateway.com;user=phone",
            "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
            "sip:alice@127.0.0.1:5060?subject=project&priority=urgent",
            "tel:+1-201-555-0123;phone-context=example.com",
            "sip:%61lice@atlanta.com",
            "mailto:alice@example.com",
        ];
        for c in cases {
            let u = Uri::parse(c).unwrap_or_else(|e| panic!("{c}: {e}"));
            assert_eq!(u.to_string(), c);
            assert_eq!(Uri::parse(&u.to_string()).unwrap(), u);
        }
    }

    #[test]
    fn fields_and_errors() {
        let u = Uri::parse("SIP:Bob@[::1]:5070;transport=udp").unwrap();
        assert_eq!(u.scheme(), "sip");
        assert_eq!(u.user(), Some("Bob"));
        assert_eq!(u.as_sip().unwrap().host_port.port, Some(5070));
        assert_eq!(Uri::parse("mailto:x@y").unwrap().scheme(), "mailto");
        for bad in ["", "nocolon", "sip:", "sip:@host", "sip:a b@host", "sip:host:port", "tel:", "1x:abc", "sip:h?x"] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }
}
