//! Configuration: one TOML file (optional: everything has a documented default), then
//! `CALLMESH_<SECTION>_<KEY>` environment variables, then `--set section.key=value` flags,
//! each overriding the one before. Unknown keys and bad values are errors that name the key;
//! [`Config::load`] returns them and the binary exits non-zero.

pub mod acd;
pub mod api;
mod overrides;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use session_core::policy::IncomingCallPolicy;

pub use self::overrides::apply_overrides;
pub use self::validate::{KubeSettings, NodeAddress, RtpPorts, Validated};

/// The whole configuration, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub node: NodeSection,
    pub nats: NatsSection,
    pub sip: SipSection,
    pub media: MediaSection,
    pub auth: AuthSection,
    pub session: SessionSection,
    pub http: HttpSection,
    pub api: api::ApiSection,
    pub kube: KubeSection,
    pub users: Vec<User>,
    pub routes: Vec<RouteSection>,
    pub queues: Vec<acd::QueueSection>,
    pub agents: Vec<acd::AgentSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// This process's node id (default: the role and the process id).
    pub id: Option<String>,
    /// On SIGTERM (or when Kubernetes deletes the pod) the node stops taking new work and
    /// waits this long at most for its calls and transactions to end.
    pub drain_timeout_secs: u64,
}

impl Default for NodeSection {
    fn default() -> Self {
        NodeSection { id: None, drain_timeout_secs: 30 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSection {
    /// NATS URL(s), comma-separated. Required for single roles; `all` runs on an in-process
    /// bus and registry unless it is set.
    pub url: Option<String>,
    /// Copies of each registry bucket (3 in a 3-server NATS cluster).
    pub replicas: usize,
}

impl Default for NatsSection {
    fn default() -> Self {
        NatsSection { url: None, replicas: 1 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipSection {
    /// UDP and TCP on this address.
    pub listen: String,
    /// The address put in Via and Contact (an IP or a host name). When empty: the listen
    /// address, or for `0.0.0.0` / `::` the interface address (or the Kubernetes Node's).
    pub advertise: String,
    /// A new call no router or session node takes is refused with 503 after this long.
    pub orphan_timeout_secs: u64,
    /// Share `listen` with other edge processes (SO_REUSEPORT): any of them serves any
    /// call, and the others take a dead one's peers.
    pub reuse_port: bool,
}

impl Default for SipSection {
    fn default() -> Self {
        SipSection { listen: "127.0.0.1:5060".into(), advertise: String::new(), orphan_timeout_secs: 5, reuse_port: false }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaSection {
    /// Where RTP sockets bind.
    pub bind: String,
    /// The address put in SDP. When empty: the bind address, or for `0.0.0.0` / `::` the
    /// interface address (or the Kubernetes Node's).
    pub advertise: String,
    /// RTP ports, `min-max` (RTP on even ports, RTCP on the next odd one).
    pub rtp_ports: String,
    /// End calls whose RTP stops for this long (0: never).
    pub no_rtp_timeout_secs: u64,
    /// Directory of the WAV files rooms play (prompts, music on hold); empty: none.
    pub prompts_dir: String,
    /// Directory recordings are written to (created if missing); empty: no recording.
    pub recordings_dir: String,
    /// This media node's zone: a label routes pin calls to (`media_zone`).
    pub zone: String,
    /// Decline new calls at this many relays and room seats (0: no limit).
    pub max_sessions: usize,
    /// Decline new calls while the process uses this much CPU, in percent of all cores
    /// (0: no limit).
    pub max_cpu_percent: f32,
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            bind: "127.0.0.1".into(),
            advertise: String::new(),
            rtp_ports: "20000-29999".into(),
            no_rtp_timeout_secs: 0,
            prompts_dir: String::new(),
            recordings_dir: String::new(),
            zone: String::new(),
            max_sessions: 0,
            max_cpu_percent: 0.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    pub realm: String,
    /// Signs digest nonces; the same on every edge of a cluster.
    pub secret: String,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection { realm: "callmesh".into(), secret: "callmesh".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSection {
    /// A session record not written for this long may be taken over.
    pub lease_secs: u64,
}

impl Default for SessionSection {
    fn default() -> Self {
        SessionSection { lease_secs: 30 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// `/metrics` and `/healthz`; empty to disable.
    pub listen: String,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection { listen: "127.0.0.1:9060".into() }
    }
}

/// Running in a Kubernetes pod: which pod and node this is (the chart sets these from the
/// downward API), and where the advertised address comes from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubeSection {
    /// This pod's name: the node drains when the pod is being deleted.
    pub pod: String,
    /// This pod's namespace.
    pub namespace: String,
    /// The Kubernetes Node the pod runs on, whose address SIP and media advertise.
    pub node: String,
    /// Which of the Node's addresses to advertise when `sip.advertise` / `media.advertise`
    /// are empty: `external-ip` (default), `internal-ip`, or `annotation:<key>`.
    pub advertise: String,
}

/// A user allowed to register (digest authentication).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub username: String,
    pub password: String,
}

/// A dial-plan route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub name: Option<String>,
    /// Regular expression on the Request-URI user part.
    pub user: String,
    /// A SIP URI (`${user}` is the dialled user), `registered`, `conference:<room>` (a
    /// room name or template, e.g. `conference:${user}`), or `queue:<name>` (`[[queues]]`).
    pub target: String,
    /// The incoming-call policy (default `accept_all`).
    #[serde(default = "accept_all")]
    pub policy: IncomingCallPolicy,
    #[serde(default)]
    pub ring_timeout_secs: u32,
    pub voicemail: Option<String>,
    /// An in-process interceptor, registered by name by a program embedding Callmesh
    /// (`roles::Extensions`), decides the route's calls instead of `policy`.
    pub interceptor: Option<String>,
    /// Record the route's calls to `media.recordings_dir` (stereo: caller left, callee
    /// right; in a conference, the caller and the room).
    #[serde(default)]
    pub record: bool,
    /// A prompt file (`media.prompts_dir`) played to each caller on arrival (conference routes).
    pub greeting: Option<String>,
    /// A prompt file played, looped, while a caller is alone (conference routes).
    pub music_on_hold: Option<String>,
    /// Media nodes of this zone only (`media.zone` of the nodes).
    pub media_zone: Option<String>,
    /// A queue route's callers' priority: higher is served first.
    #[serde(default)]
    pub priority: u32,
    /// A queue route's callers need agents with these skills (`skills HAS "spanish"`).
    pub requires: Option<String>,
}

fn accept_all() -> IncomingCallPolicy {
    IncomingCallPolicy::AcceptAll
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads `path` (if any), applies environment and flag overrides, and validates.
    pub fn load(path: Option<&Path>, env: &BTreeMap<String, String>, sets: &[String]) -> Result<Validated, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|error| ConfigError::Read { path: p.display().to_string(), error })?,
            None => String::new(),
        };
        let mut table: toml::Table =
            text.parse().map_err(|e: toml::de::Error| ConfigError::Invalid(format!("config file: {e}")))?;
        let skipped = apply_overrides(&mut table, env, sets)?;
        let config: Config = Config::deserialize(table).map_err(|e| ConfigError::Invalid(format!("config: {e}")))?;
        Ok(Validated { skipped_variables: skipped, ..config.validate()? })
    }

    /// The routes used when none are configured: every user, to its registered contacts.
    pub fn default_routes() -> Vec<RouteSection> {
        vec![RouteSection {
            name: Some("registered-users".into()),
            user: ".*".into(),
            target: "registered".into(),
            policy: IncomingCallPolicy::AcceptAll,
            ring_timeout_secs: 0,
            voicemail: None,
            interceptor: None,
            record: false,
            greeting: None,
            music_on_hold: None,
            media_zone: None,
            priority: 0,
            requires: None,
        }]
    }
}
