//! Header names: the ones the stack knows by type, their compact forms (RFC 3261 §7.3.3 and
//! later RFCs), and case-insensitive classification that costs a length switch and one or
//! two comparisons per header line.

use std::fmt;

macro_rules! header_names {
    ($( $variant:ident => $name:literal $(, $compact:literal)? ;)*) => {
        /// A header name the stack knows. Unknown names are kept verbatim by the message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum HeaderName { $($variant,)* }

        impl HeaderName {
            /// Every known header name.
            pub const ALL: &'static [HeaderName] = &[$(HeaderName::$variant,)*];

            /// The canonical (long) spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(HeaderName::$variant => $name,)* }
            }

            /// The compact form, if the header has one.
            pub fn compact(self) -> Option<char> {
                match self { $(HeaderName::$variant => header_names!(@compact $($compact)?),)* }
            }
        }
    };
    (@compact $c:literal) => { Some($c) };
    (@compact) => { None };
}

header_names! {
    Accept => "Accept";
    AcceptContact => "Accept-Contact", 'a';
    Allow => "Allow";
    AllowEvents => "Allow-Events", 'u';
    Authorization => "Authorization";
    CallId => "Call-ID", 'i';
    Contact => "Contact", 'm';
    ContentDisposition => "Content-Disposition";
    ContentEncoding => "Content-Encoding", 'e';
    ContentLength => "Content-Length", 'l';
    ContentType => "Content-Type", 'c';
    CSeq => "CSeq";
    Date => "Date";
    Event => "Event", 'o';
    Expires => "Expires";
    From => "From", 'f';
    MaxForwards => "Max-Forwards";
    MinExpires => "Min-Expires";
    MinSe => "Min-SE";
    ProxyAuthenticate => "Proxy-Authenticate";
    ProxyAuthorization => "Proxy-Authorization";
    ProxyRequire => "Proxy-Require";
    RAck => "RAck";
    Reason => "Reason";
    RecordRoute => "Record-Route";
    ReferTo => "Refer-To", 'r';
    ReferredBy => "Referred-By", 'b';
    Replaces => "Replaces";
    Require => "Require";
    RetryAfter => "Retry-After";
    Route => "Route";
    RSeq => "RSeq";
    Server => "Server";
    SessionExpires => "Session-Expires", 'x';
    Subject => "Subject", 's';
    SubscriptionState => "Subscription-State";
    Supported => "Supported", 'k';
    Timestamp => "Timestamp";
    To => "To", 't';
    Unsupported => "Unsupported";
    UserAgent => "User-Agent";
    Via => "Via", 'v';
    Warning => "Warning";
    WwwAuthenticate => "WWW-Authenticate";
}

impl HeaderName {
    /// Classifies a header name as written on the wire (any case, long or compact form).
    pub fn from_bytes(name: &[u8]) -> Option<HeaderName> {
        use HeaderName::*;
        if name.len() == 1 {
            return Self::from_compact(name[0].to_ascii_lowercase());
        }
        let candidates: &[HeaderName] = match name.len() {
            2 => &[To],
            3 => &[Via],
            4 => &[From, CSeq, Date, RAck, RSeq],
            5 => &[Allow, Event, Route],
            6 => &[Accept, Reason, Server, MinSe],
            7 => &[CallId, Contact, Expires, Require, Subject, Warning],
            8 => &[ReferTo, Replaces],
            9 => &[Supported, Timestamp],
            10 => &[UserAgent],
            11 => &[RetryAfter, ReferredBy, MinExpires, Unsupported],
            12 => &[MaxForwards, ContentType, RecordRoute, AllowEvents],
            13 => &[Authorization, ProxyRequire],
            14 => &[ContentLength, AcceptContact],
            15 => &[SessionExpires],
            16 => &[WwwAuthenticate, ContentEncoding],
            18 => &[ProxyAuthenticate, SubscriptionState],
            19 => &[ProxyAuthorization, ContentDisposition],
            _ => return None,
        };
        candidates.iter().copied().find(|h| h.as_str().as_bytes().eq_ignore_ascii_case(name))
    }

    fn from_compact(c: u8) -> Option<HeaderName> {
        use HeaderName::*;
        Some(match c {
            b'a' => AcceptContact,
            b'b' => ReferredBy,
            b'c' => ContentType,
            b'e' => ContentEncoding,
            b'f' => From,
            b'i' => CallId,
            b'k' => Supported,
            b'l' => ContentLength,
            b'm' => Contact,
            b'o' => Event,
            b'r' => ReferTo,
            b's' => Subject,
            b't' => To,
            b'u' => AllowEvents,
            b'v' => Via,
            b'x' => SessionExpires,
            _ => return None,
        })
    }

    /// Headers whose values are comma-separated lists that may also be split across lines
    /// (RFC 3261 §7.3.1). Authentication headers are excluded: their commas separate
    /// parameters of one value.
    pub fn is_list(self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Via | Contact
                | Route
                | RecordRoute
                | Allow
                | Require
                | ProxyRequire
                | Supported
                | Unsupported
                | Accept
                | AllowEvents
                | ContentEncoding
                | Warning
                | AcceptContact
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_classifies_in_any_case() {
        for h in HeaderName::ALL {
            assert_eq!(HeaderName::from_bytes(h.as_str().as_bytes()), Some(*h), "{h}");
            let lower = h.as_str().to_ascii_lowercase();
            assert_eq!(HeaderName::from_bytes(lower.as_bytes()), Some(*h), "{lower}");
            if let Some(c) = h.compact() {
                let s = c.to_string();
                assert_eq!(HeaderName::from_bytes(s.as_bytes()), Some(*h));
                assert_eq!(HeaderName::from_bytes(s.to_uppercase().as_bytes()), Some(*h));
            }
        }
        assert_eq!(HeaderName::from_bytes(b"X-Custom"), None);
        assert_eq!(HeaderName::from_bytes(b"z"), None);
    }
}
