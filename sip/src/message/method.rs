//! SIP request methods. Methods are case-sensitive tokens (RFC 3261 §7.1); anything that
//! is a valid token but not one we know is kept as an extension so the server can answer
//! `501 Not Implemented` instead of failing to parse.

use std::fmt;

use super::lex::is_token;

/// A request method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    /// A syntactically valid method we do not implement.
    Extension(Box<str>),
}

impl Method {
    /// Every method this stack knows, in the order used for `Allow` headers.
    pub const KNOWN: [Method; 14] = [
        Method::Invite,
        Method::Ack,
        Method::Bye,
        Method::Cancel,
        Method::Register,
        Method::Options,
        Method::Info,
        Method::Update,
        Method::Prack,
        Method::Subscribe,
        Method::Notify,
        Method::Refer,
        Method::Message,
        Method::Publish,
    ];

    /// Parses a method token; `None` when `s` is not a token.
    pub fn parse(s: &[u8]) -> Option<Method> {
        Some(match s {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"INFO" => Method::Info,
            b"UPDATE" => Method::Update,
            b"PRACK" => Method::Prack,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"PUBLISH" => Method::Publish,
            other => {
                let s = std::str::from_utf8(other).ok()?;
                if !is_token(s) {
                    return None;
                }
                Method::Extension(s.into())
            }
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }

    /// True for methods this stack knows (everything but extensions).
    pub fn is_known(&self) -> bool {
        !matches!(self, Method::Extension(_))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Method {
    type Err = super::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::parse(s.as_bytes()).ok_or(super::ParseError::BadStartLine("invalid method"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_extension_methods_round_trip() {
        for m in Method::KNOWN.iter() {
            assert_eq!(&Method::parse(m.as_str().as_bytes()).unwrap(), m);
        }
        assert_eq!(Method::parse(b"FOO").unwrap(), Method::Extension("FOO".into()));
        assert!(Method::parse(b"invite").unwrap() != Method::Invite, "methods are case-sensitive");
        assert!(Method::parse(b"BAD METHOD").is_none());
        assert!(Method::parse(b"").is_none());
    }
}
