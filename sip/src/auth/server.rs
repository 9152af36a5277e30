//! Server-side digest authentication: challenges with stateless nonces (a timestamp and
//! random bits, signed with HMAC-SHA-256 so only this server's nonces verify, and expiring
//! after a TTL), and verification of credentials with `stale=true` for a right answer on
//! an expired nonce (RFC 3261 §22.4, RFC 7616 §3.3).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::digest::{Algorithm, DigestInput};
use crate::message::{AuthValue, HeaderName, Message};

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid credentials of this user.
    Authenticated { username: String },
    /// No credentials for our realm: challenge (401/407).
    Missing,
    /// The right answer to a nonce that expired: challenge again with `stale=true`.
    Stale,
    /// Credentials that cannot be checked (missing fields, wrong `uri`): 400.
    Malformed(&'static str),
    /// Wrong password, unknown user, forged nonce, unsupported algorithm: 403.
    Rejected(&'static str),
}

/// Issues challenges and verifies credentials for one realm.
#[derive(Clone)]
pub struct DigestServer {
    realm: String,
    key: [u8; 32],
    nonce_ttl_secs: u64,
    /// Offered in this order (RFC 8760: strongest first).
    algorithms: Vec<Algorithm>,
}

enum NonceState {
    Fresh,
    Expired,
    Forged,
}

impl DigestServer {
    /// A server for `realm`; `key` signs nonces (use random bytes; share it between nodes
    /// that must accept each other's nonces).
    pub fn new(realm: &str, key: [u8; 32]) -> Self {
        DigestServer { realm: realm.to_owned(), key, nonce_ttl_secs: 300, algorithms: vec![Algorithm::Sha256, Algorithm::Md5] }
    }

    pub fn with_nonce_ttl(mut self, secs: u64) -> Self {
        self.nonce_ttl_secs = secs;
        self
    }

    pub fn with_algorithms(mut self, algorithms: Vec<Algorithm>) -> Self {
        self.algorithms = algorithms;
        self
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn mac(&self, data: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(data.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// A fresh nonce issued at `now_secs` (Unix time).
    pub fn nonce(&self, now_secs: u64) -> String {
        let data = format!("{now_secs:016x}{:016x}", rand::random::<u64>());
        let mac = self.mac(&data);
        format!("{data}{mac}")
    }

    fn check_nonce(&self, nonce: &str, now_secs: u64) -> NonceState {
        if nonce.len() != 64 || !nonce.is_ascii() {
            return NonceState::Forged;
        }
        let (data, mac) = nonce.split_at(32);
        if !constant_time_eq(self.mac(data).as_bytes(), mac.as_bytes()) {
            return NonceState::Forged;
        }
        match u64::from_str_radix(&data[..16], 16) {
            Ok(issued) if now_secs.saturating_sub(issued) <= self.nonce_ttl_secs => NonceState::Fresh,
            Ok(_) => NonceState::Expired,
            Err(_) => NonceState::Forged,
        }
    }

    /// One challenge per algorithm, for `WWW-Authenticate` (or `Proxy-Authenticate`).
    pub fn challenges(&self, now_secs: u64, stale: bool) -> Vec<AuthValue> {
        self.algorithms
            .iter()
            .map(|alg| {
                let mut c = AuthValue::new("Digest");
                c.push("realm", &self.realm, true).push("nonce", &self.nonce(now_secs), true);
                c.push("algorithm", alg.as_str(), false).push("qop", "auth", true);
                if stale {
                    c.push("stale", "true", false);
                }
                c
            })
            .collect()
    }

    /// Checks the credentials `request` carries in `header` (`Authorization` or
    /// `Proxy-Authorization`). `password_of` returns a user's password.
    pub fn verify(
        &self,
        request: &Message,
        header: HeaderName,
        password_of: impl Fn(&str) -> Option<String>,
        now_secs: u64,
    ) -> Verdict {
        let ours = request
            .header_lines(header)
            .filter_map(|v| AuthValue::parse(v, header).ok())
            .find(|c| c.scheme.eq_ignore_ascii_case("Digest") && c.get("realm") == Some(self.realm.as_str()));
        let Some(creds) = ours else { return Verdict::Missing };
        let (Some(username), Some(nonce), Some(uri), Some(response)) =
            (creds.get("username"), creds.get("nonce"), creds.get("uri"), creds.get("response"))
        else {
            return Verdict::Malformed("incomplete credentials");
        };
        if Some(uri) != request.request_uri_str() {
            return Verdict::Malformed("digest uri does not match the Request-URI");
        }
        let Some(algorithm) = Algorithm::parse(creds.get("algorithm")).filter(|a| self.algorithms.contains(a)) else {
            return Verdict::Rejected("unsupported algorithm");
        };
        let qop_auth = match creds.get("qop") {
            Some(q) if q.eq_ignore_ascii_case("auth") => match (creds.get("nc"), creds.get("cnonce")) {
                (Some(nc), Some(cnonce)) => Some((nc, cnonce)),
                _ => return Verdict::Malformed("qop=auth without nc or cnonce"),
            },
            Some(_) => return Verdict::Rejected("unsupported qop"),
            None => None,
        };
        let nonce_state = self.check_nonce(nonce, now_secs);
        if let NonceState::Forged = nonce_state {
            return Verdict::Rejected("nonce not issued by this server");
        }
        let Some(password) = password_of(username) else { return Verdict::Rejected("unknown user") };
        let ha1 = algorithm.ha1(username, &self.realm, &password);
        let method = request.method().map(|m| m.as_str()).unwrap_or_default();
        let expected = DigestInput { algorithm, ha1: &ha1, nonce, method, uri, qop_auth }.response();
        if !constant_time_eq(expected.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
            return Verdict::Rejected("wrong credentials");
        }
        match nonce_state {
            NonceState::Fresh => Verdict::Authenticated { username: username.to_owned() },
            _ => Verdict::Stale,
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
