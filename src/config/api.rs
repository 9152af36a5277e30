//! The `[api]` section: where the gRPC API listens and who may use it.
//!
//! ```toml
//! [api]
//! listen = "127.0.0.1:9070"   # empty: no API on this node
//! tokens = ["…"]              # bearer tokens (or CALLMESH_API_TOKENS="a,b")
//! open = false                # serve calls without a token (loopback only)
//! ```
//!
//! Without tokens and not open, the node makes up a token at start and prints it, so the API
//! of `cargo run --release` is usable at once but not by anyone else on the host's network.

use std::net::SocketAddr;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    pub listen: String,
    pub tokens: Tokens,
    pub open: bool,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection { listen: "127.0.0.1:9070".into(), tokens: Tokens::default(), open: false }
    }
}

/// A list of tokens, or one string of them separated by commas (an environment variable).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Tokens {
    List(Vec<String>),
    Joined(String),
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens::List(Vec::new())
    }
}

impl Tokens {
    fn list(&self) -> Vec<String> {
        let all: Vec<String> = match self {
            Tokens::List(l) => l.clone(),
            Tokens::Joined(s) => s.split(',').map(str::to_owned).collect(),
        };
        all.into_iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect()
    }
}

/// The API's checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// `None`: no API.
    pub listen: Option<SocketAddr>,
    pub tokens: Vec<String>,
    pub open: bool,
}

fn invalid(key: &str, why: String) -> ConfigError {
    ConfigError::Invalid(format!("{key}: {why}"))
}

impl ApiSection {
    pub fn validate(&self) -> Result<ApiSettings, ConfigError> {
        let listen = match self.listen.as_str() {
            "" => None,
            a => Some(a.parse::<SocketAddr>().map_err(|_| invalid("api.listen", format!("{a:?} is not ip:port")))?),
        };
        if self.open && listen.is_some_and(|l| !l.ip().is_loopback()) {
            return Err(invalid("api.open", "an open API would serve anyone: only on a loopback api.listen".into()));
        }
        let tokens = self.tokens.list();
        if let Some(short) = tokens.iter().find(|t| t.len() < 16) {
            return Err(invalid("api.tokens", format!("a token of {} characters is guessable: 16 at least", short.len())));
        }
        Ok(ApiSettings { listen, tokens, open: self.open })
    }
}

/// A token of 32 hex digits from the system's randomness.
pub fn made_up_token() -> String {
    (0..2).map(|_| format!("{:016x}", rand::random::<u64>())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml: &str) -> Result<ApiSettings, ConfigError> {
        toml::from_str::<ApiSection>(toml).unwrap().validate()
    }

    #[test]
    fn listen_tokens_and_open_are_checked() {
        let default = section("").unwrap();
        assert_eq!(default, ApiSettings { listen: Some("127.0.0.1:9070".parse().unwrap()), tokens: vec![], open: false });
        assert_eq!(section("listen = \"\"").unwrap().listen, None);
        let joined = section("tokens = \"0123456789abcdef, fedcba9876543210\"").unwrap();
        assert_eq!(joined.tokens, ["0123456789abcdef", "fedcba9876543210"]);
        assert_eq!(section("tokens = [\"0123456789abcdef\"]").unwrap().tokens, ["0123456789abcdef"]);
        for (bad, key) in [
            ("listen = \"9070\"", "api.listen"),
            ("listen = \"0.0.0.0:9070\"\nopen = true", "api.open"),
            ("tokens = [\"short\"]", "api.tokens"),
        ] {
            let e = section(bad).unwrap_err().to_string();
            assert!(e.starts_with(key), "{bad}: {e}");
        }
        assert!(section("open = true").unwrap().open);
        assert_eq!(made_up_token().len(), 32);
    }
}
