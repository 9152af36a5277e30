//! The registrar (RFC 3261 §10.3): digest authentication against configured users, then
//! the bindings of the address-of-record stored in the registry's `locations` bucket, each
//! with its expiry. Single-domain: an address-of-record is the user part of the To URI.

use std::collections::HashMap;
use std::sync::Arc;

use cluster::contracts::{self, Binding};
use cluster::locations;
use cluster::registry::Registry;
use sha2::{Digest, Sha256};
use sip::auth::{Algorithm, DigestServer, Verdict};
use sip::message::{Builder, HeaderName, Message, NameAddr, ParseError};
use sip::transaction::{Peer, new_tag};

use crate::peers;

/// How registrations are accepted.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    pub realm: String,
    /// username → password. Empty: registration is open to anyone (development only).
    pub users: HashMap<String, String>,
    /// Shared by every edge of a cluster, so a nonce issued by one verifies on another.
    pub secret: String,
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    /// Challenges offered, in this order. MD5 comes first by default: many clients read
    /// only the first challenge and know only MD5 (SIPp 3.6 among them); clients that
    /// know SHA-256 pick it from the list (RFC 8760).
    pub algorithms: Vec<Algorithm>,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            realm: "callmesh".into(),
            users: HashMap::new(),
            secret: "callmesh".into(),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
        }
    }
}

/// Answers REGISTER requests.
pub struct Registrar {
    config: RegistrarConfig,
    digest: DigestServer,
    registry: Arc<dyn Registry>,
    edge_id: String,
}

impl Registrar {
    pub fn new(config: RegistrarConfig, registry: Arc<dyn Registry>, edge_id: &str) -> Self {
        let key: [u8; 32] = Sha256::digest(format!("{}:{}", config.realm, config.secret).as_bytes()).into();
        let digest = DigestServer::new(&config.realm, key).with_algorithms(config.algorithms.clone());
        Registrar { config, digest, registry, edge_id: edge_id.to_owned() }
    }

    fn reply(request: &Message, status: u16, reason: &str) -> Builder {
        Builder::response_to(request, status, reason, Some(&new_tag()))
    }

    /// The response to `request` (a REGISTER that arrived from `source`).
    pub async fn handle(&self, request: &Message, source: Peer) -> Result<Message, ParseError> {
        let now_ms = contracts::unix_ms();
        let Some(user) = request.to().ok().and_then(|to| to.uri.as_sip().and_then(|u| u.user.clone())) else {
            return Self::reply(request, 400, "Missing user in To").build();
        };
        if let Some(refused) = self.authenticate(request, &user, now_ms)? {
            return Ok(refused);
        }
        let Ok(contacts) = self.requested_bindings(request, now_ms) else {
            return Self::reply(request, 400, "Malformed Contact header").build();
        };
        let contacts = match contacts {
            Requested::Query => None,
            Requested::RemoveAll => Some((Vec::new(), true)),
            Requested::Bindings(b) => Some((b, false)),
            Requested::TooBrief => {
                return Self::reply(request, 423, "Interval Too Brief")
                    .header(HeaderName::MinExpires, self.config.min_expires)
                    .build();
            }
            Requested::Invalid(why) => return Self::reply(request, 400, why).build(),
        };
        let call_id = request.call_id().unwrap_or_default().to_owned();
        let cseq = request.cseq().map(|c| c.0).unwrap_or(0);
        let source = peers::to_contract(source);
        let bindings = match contacts {
            None => locations::lookup(self.registry.as_ref(), &user, now_ms).await,
            Some((requested, remove_all)) => {
                locations::update(self.registry.as_ref(), &user, &self.edge_id, now_ms, |bindings| {
                    if remove_all {
                        bindings.clear();
                    }
                    for (contact, expires_ms) in &requested {
                        bindings.retain(|b| b.contact != *contact);
                        if *expires_ms > now_ms {
                            bindings.push(Binding {
                                contact: contact.clone(),
                                expires_unix_ms: *expires_ms,
                                call_id: call_id.clone(),
                                cseq,
                                source: Some(source.clone()),
                                edge_id: self.edge_id.clone(),
                            });
                        }
                    }
                })
                .await
            }
        };
        let bindings = match bindings {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%user, error = %e, "registration not stored");
                return Self::reply(request, 500, "Registration Not Stored").build();
            }
        };
        let mut ok = Self::reply(request, 200, "OK");
        for b in &bindings {
            let remaining = (b.expires_unix_ms.saturating_sub(now_ms) / 1000).max(1);
            ok = ok.header(HeaderName::Contact, format_args!("<{}>;expires={remaining}", b.contact));
        }
        ok.build()
    }

    /// `Some(response)` when the request must be refused or challenged.
    fn authenticate(&self, request: &Message, user: &str, now_ms: u64) -> Result<Option<Message>, ParseError> {
        if self.config.users.is_empty() {
            return Ok(None);
        }
        let password_of = |u: &str| self.config.users.get(u).cloned();
        let challenge = |stale: bool| {
            let mut b = Self::reply(request, 401, "Unauthorized");
            for c in self.digest.challenges(now_ms / 1000, stale) {
                b = b.header(HeaderName::WwwAuthenticate, c);
            }
            b.build().map(Some)
        };
        match self.digest.verify(request, HeaderName::Authorization, password_of, now_ms / 1000) {
            Verdict::Authenticated { username } if username.eq_ignore_ascii_case(user) => Ok(None),
            Verdict::Authenticated { .. } => Self::reply(request, 403, "Credentials Do Not Match The To User").build().map(Some),
            Verdict::Missing => challenge(false),
            Verdict::Stale => challenge(true),
            Verdict::Malformed(why) => Self::reply(request, 400, &capitalise(why)).build().map(Some),
            Verdict::Rejected(why) => {
                tracing::info!(%user, reason = why, "registration refused");
                Self::reply(request, 403, "Forbidden").build().map(Some)
            }
        }
    }

    fn requested_bindings(&self, request: &Message, now_ms: u64) -> Result<Requested, ParseError> {
        let header_expires = request.header(HeaderName::Expires).and_then(|e| e.trim().parse::<u32>().ok());
        if request.is_contact_star() {
            return Ok(if header_expires == Some(0) {
                Requested::RemoveAll
            } else {
                Requested::Invalid("Contact * needs Expires: 0")
            });
        }
        let contacts: Vec<NameAddr> = request.name_addrs(HeaderName::Contact)?;
        if contacts.is_empty() {
            return Ok(Requested::Query);
        }
        let mut out = Vec::new();
        for c in contacts {
            let asked = c
                .params
                .value("expires")
                .and_then(|e| e.parse::<u32>().ok())
                .or(header_expires)
                .unwrap_or(self.config.default_expires);
            if asked != 0 && asked < self.config.min_expires {
                return Ok(Requested::TooBrief);
            }
            let expires = asked.min(self.config.max_expires);
            out.push((c.uri.to_string(), if expires == 0 { 0 } else { now_ms + u64::from(expires) * 1000 }));
        }
        Ok(Requested::Bindings(out))
    }
}

enum Requested {
    Query,
    RemoveAll,
    /// (contact URI, expiry in Unix ms; 0 removes it)
    Bindings(Vec<(String, u64)>),
    TooBrief,
    Invalid(&'static str),
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
