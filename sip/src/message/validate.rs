//! Request validation a server performs before a transaction user sees the request
//! (RFC 3261 §8.2 and §16.3): each failure maps to the precise status and reason phrase
//! the client is owed, plus the extra header some statuses require (`Unsupported` for 420,
//! `Allow` for 405).

use super::{HeaderName, Message, Method, Uri};

/// What a server supports; decides 405, 420 and 501 answers.
#[derive(Debug, Clone)]
pub struct ServerProfile {
    /// Methods this server accepts (others known to the stack get 405).
    pub allowed: Vec<Method>,
    /// Option tags this server supports (`Require` of anything else gets 420).
    pub supported: Vec<String>,
}

impl Default for ServerProfile {
    fn default() -> Self {
        ServerProfile {
            allowed: vec![
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Register,
                Method::Info,
                Method::Update,
                Method::Refer,
                Method::Notify,
                Method::Message,
            ],
            supported: vec!["replaces".into(), "norefersub".into()],
        }
    }
}

impl ServerProfile {
    /// The `Allow` header value.
    pub fn allow_header(&self) -> String {
        self.allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
    }
}

/// Why a request is refused, and how to say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: String,
    /// An extra header the status calls for (`Unsupported`, `Allow`).
    pub header: Option<(HeaderName, String)>,
}

impl Rejection {
    fn new(status: u16, reason: impl Into<String>) -> Rejection {
        Rejection { status, reason: reason.into(), header: None }
    }
}

/// Checks a request in the order RFC 3261 §8.2 gives. `Ok(())` means a transaction user
/// may process it.
pub fn validate_request(req: &Message, profile: &ServerProfile) -> Result<(), Rejection> {
    let method = req.method().cloned().ok_or_else(|| Rejection::new(400, "Not a request"))?;
    for (name, present) in [
        (HeaderName::Via, req.top_via().is_some() || req.header(HeaderName::Via).is_some()),
        (HeaderName::From, req.header(HeaderName::From).is_some()),
        (HeaderName::To, req.header(HeaderName::To).is_some()),
        (HeaderName::CallId, req.header(HeaderName::CallId).is_some()),
        (HeaderName::CSeq, req.header(HeaderName::CSeq).is_some()),
    ] {
        if !present {
            return Err(Rejection::new(400, format!("Missing {name} header")));
        }
    }
    if let Some(problem) = req.header_problem() {
        return Err(Rejection::new(400, problem.to_string()));
    }
    if req.core.unsupported_version {
        return Err(Rejection::new(505, "Version Not Supported"));
    }
    let (_, cseq_method) = req.cseq().ok_or_else(|| Rejection::new(400, "Malformed CSeq header"))?;
    if *cseq_method != method {
        return Err(Rejection::new(400, "CSeq method does not match request method"));
    }
    if req.max_forwards() == Some(0) {
        return Err(Rejection::new(483, "Too Many Hops"));
    }
    match req.request_uri() {
        Ok(Uri::Other { .. }) => return Err(Rejection::new(416, "Unsupported URI Scheme")),
        Ok(_) => {}
        Err(_) => return Err(Rejection::new(400, "Malformed Request-URI")),
    }
    if req.from().is_err() {
        return Err(Rejection::new(400, "Malformed From header"));
    }
    if req.to().is_err() {
        return Err(Rejection::new(400, "Malformed To header"));
    }
    if !method.is_known() {
        let mut r = Rejection::new(501, "Not Implemented");
        r.header = Some((HeaderName::Allow, profile.allow_header()));
        return Err(r);
    }
    if !profile.allowed.contains(&method) {
        let mut r = Rejection::new(405, "Method Not Allowed");
        r.header = Some((HeaderName::Allow, profile.allow_header()));
        return Err(r);
    }
    if method != Method::Ack && method != Method::Cancel {
        let unsupported: Vec<&str> = req
            .tokens(HeaderName::Require)
            .chain(req.tokens(HeaderName::ProxyRequire))
            .filter(|t| !profile.supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
            .collect();
        if !unsupported.is_empty() {
            let mut r = Rejection::new(420, "Bad Extension");
            r.header = Some((HeaderName::Unsupported, unsupported.join(", ")));
            return Err(r);
        }
    }
    Ok(())
}

/// Checks a response enough for the client transaction layer: Via, CSeq, Call-ID, From
/// and To present and well formed. Malformed responses are dropped, never answered.
pub fn validate_response(resp: &Message) -> Result<(), &'static str> {
    if resp.is_request() {
        return Err("not a response");
    }
    if resp.header_problem().is_some() {
        return Err("malformed core header");
    }
    if resp.top_via().is_none() || resp.cseq().is_none() || resp.call_id().is_none() {
        return Err("missing Via, CSeq or Call-ID");
    }
    if resp.core.from.is_none() || resp.core.to.is_none() {
        return Err("missing From or To");
    }
    Ok(())
}
