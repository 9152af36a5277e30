//! Client-side digest authentication: answer a 401 (`WWW-Authenticate` → `Authorization`)
//! or 407 (`Proxy-Authenticate` → `Proxy-Authorization`), choosing the strongest algorithm
//! offered that we support.

use super::digest::{Algorithm, DigestInput};
use crate::message::{AuthValue, HeaderName, Message, Method};

/// A user's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: &str, password: &str) -> Self {
        Credentials { username: username.to_owned(), password: password.to_owned() }
    }
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("the response is not a 401 or 407")]
    NotAChallenge,
    #[error("no Digest challenge with an algorithm and qop we support")]
    NoUsableChallenge,
}

/// The credentials answering `challenge` for a request `method uri`. `nc` counts the
/// requests sent with this nonce (1 for the first).
pub fn authorization(challenge: &AuthValue, creds: &Credentials, method: &Method, uri: &str, nc: u32) -> Option<AuthValue> {
    if !challenge.scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let algorithm = Algorithm::parse(challenge.get("algorithm"))?;
    let realm = challenge.get("realm")?;
    let nonce = challenge.get("nonce")?;
    let qop_auth = match challenge.get("qop") {
        Some(q) if q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")) => true,
        Some(_) => return None,
        None => false,
    };
    let ha1 = algorithm.ha1(&creds.username, realm, &creds.password);
    let nc = format!("{nc:08x}");
    let cnonce = format!("{:016x}", rand::random::<u64>());
    let input = DigestInput {
        algorithm,
        ha1: &ha1,
        nonce,
        method: method.as_str(),
        uri,
        qop_auth: qop_auth.then_some((nc.as_str(), cnonce.as_str())),
    };
    let mut a = AuthValue::new("Digest");
    a.push("username", &creds.username, true).push("realm", realm, true).push("nonce", nonce, true);
    a.push("uri", uri, true).push("response", &input.response(), true).push("algorithm", algorithm.as_str(), false);
    if qop_auth {
        a.push("qop", "auth", false).push("nc", &nc, false).push("cnonce", &cnonce, true);
    }
    if let Some(opaque) = challenge.get("opaque") {
        a.push("opaque", opaque, true);
    }
    Some(a)
}

/// Answers the challenge in `response` (401 or 407) for a request `method uri`: the header
/// to add to the re-sent request and its value.
pub fn answer_challenge(
    response: &Message,
    creds: &Credentials,
    method: &Method,
    uri: &str,
    nc: u32,
) -> Result<(HeaderName, AuthValue), ChallengeError> {
    let (challenge_header, answer_header) = match response.status() {
        Some(401) => (HeaderName::WwwAuthenticate, HeaderName::Authorization),
        Some(407) => (HeaderName::ProxyAuthenticate, HeaderName::ProxyAuthorization),
        _ => return Err(ChallengeError::NotAChallenge),
    };
    let mut candidates: Vec<AuthValue> =
        response.header_lines(challenge_header).filter_map(|v| AuthValue::parse(v, challenge_header).ok()).collect();
    candidates.sort_by_key(|c| match Algorithm::parse(c.get("algorithm")) {
        Some(Algorithm::Sha256) => 0,
        Some(Algorithm::Md5) => 1,
        None => 2,
    });
    candidates
        .iter()
        .find_map(|c| authorization(c, creds, method, uri, nc))
        .map(|a| (answer_header, a))
        .ok_or(ChallengeError::NoUsableChallenge)
}
