//! Checks a configuration and turns it into the values the roles need. Every error names
//! the key at fault (`routes[1].user: invalid regular expression …`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use router::{Route, RouteMedia, Target};
use sip::message::{Host, Uri};

use super::{Config, ConfigError};

/// The RTP port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPorts {
    pub min: u16,
    pub max: u16,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Validated {
    pub node_id: Option<String>,
    pub drain_timeout: Duration,
    pub nats_url: Option<String>,
    pub replicas: usize,
    pub sip_listen: SocketAddr,
    /// The host for Via and Contact, when configured (else learned at start).
    pub sip_advertise: Option<Host>,
    pub orphan_timeout: Duration,
    pub reuse_port: bool,
    pub media_bind: IpAddr,
    /// The address for SDP, when configured (else learned at start).
    pub media_advertise: Option<IpAddr>,
    pub rtp_ports: RtpPorts,
    pub no_rtp_timeout: Option<Duration>,
    pub prompts_dir: Option<PathBuf>,
    pub recordings_dir: Option<PathBuf>,
    pub media_zone: String,
    pub media_limits: media_node::limits::Limits,
    /// Queues and agents.
    pub acd: super::acd::AcdConfig,
    pub realm: String,
    pub secret: String,
    pub users: HashMap<String, String>,
    pub lease: Duration,
    pub http_listen: Option<SocketAddr>,
    pub api: super::api::ApiSettings,
    pub kube: KubeSettings,
    pub routes: Vec<Route>,
    /// `CALLMESH_*` environment variables that name no setting (not read).
    pub skipped_variables: Vec<String>,
}

/// Where a node in a Kubernetes pod finds itself (all empty outside Kubernetes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeSettings {
    pub pod: String,
    pub namespace: String,
    pub node: String,
    pub advertise: NodeAddress,
}

/// Which address of its Kubernetes Node a pod advertises.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NodeAddress {
    #[default]
    ExternalIp,
    InternalIp,
    /// The value of this annotation on the Node.
    Annotation(String),
}

fn parse_node_address(s: &str) -> Result<NodeAddress, ConfigError> {
    match s {
        "" | "external-ip" => Ok(NodeAddress::ExternalIp),
        "internal-ip" => Ok(NodeAddress::InternalIp),
        _ => match s.strip_prefix("annotation:") {
            Some(key) if !key.is_empty() => Ok(NodeAddress::Annotation(key.to_owned())),
            _ => Err(invalid("kube.advertise", format!("{s:?}: expected external-ip, internal-ip or annotation:<key>"))),
        },
    }
}

pub(super) fn invalid(key: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid(format!("{key}: {why}"))
}

fn parse_ports(s: &str) -> Result<RtpPorts, ConfigError> {
    let bad = || invalid("media.rtp_ports", format!("{s:?} is not a range like 20000-29999 with room for two port pairs"));
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (min, max) = (a.trim().parse::<u16>().map_err(|_| bad())?, b.trim().parse::<u16>().map_err(|_| bad())?);
    if min < 1024 || max < min.saturating_add(3) {
        return Err(bad());
    }
    Ok(RtpPorts { min, max })
}

/// An IP address peers can reach: not `0.0.0.0` or `::`.
fn specific_ip(key: &str, s: &str) -> Result<IpAddr, ConfigError> {
    match s.parse::<IpAddr>() {
        Ok(ip) if !ip.is_unspecified() => Ok(ip),
        Ok(_) => Err(invalid(key, format!("{s:?} is the unspecified address: peers cannot send to it"))),
        Err(_) => Err(invalid(key, format!("{s:?} is not an IP address"))),
    }
}

pub(super) fn parse_uri(key: &str, s: &str) -> Result<(), ConfigError> {
    match Uri::parse(s) {
        Ok(Uri::Sip(_) | Uri::Tel(_)) => Ok(()),
        Ok(_) => Err(invalid(key, format!("{s:?} is not a sip: URI"))),
        Err(e) => Err(invalid(key, format!("{s:?}: {e}"))),
    }
}

impl Config {
    /// Checks every value; the first error names its key.
    pub fn validate(self) -> Result<Validated, ConfigError> {
        if let Some(id) = &self.node.id {
            cluster::subjects::NodeId::new(id.clone()).map_err(|e| invalid("node.id", e))?;
        }
        let sip_listen: SocketAddr =
            self.sip.listen.parse().map_err(|_| invalid("sip.listen", format!("{:?} is not ip:port", self.sip.listen)))?;
        let media_bind: IpAddr =
            self.media.bind.parse().map_err(|_| invalid("media.bind", format!("{:?} is not an IP address", self.media.bind)))?;
        let media_advertise = match self.media.advertise.as_str() {
            "" => None,
            a => Some(specific_ip("media.advertise", a)?),
        };
        let sip_advertise = match self.sip.advertise.as_str() {
            "" => None,
            a => {
                // A bare IPv6 address is accepted as well as a bracketed one.
                let host = Host::parse(a)
                    .or_else(|_| a.parse::<IpAddr>().map(Host::from))
                    .map_err(|_| invalid("sip.advertise", format!("{a:?} is not an IP address or host name")))?;
                if host.ip().is_some_and(|ip| ip.is_unspecified()) {
                    return Err(invalid("sip.advertise", format!("{a:?} is the unspecified address: peers cannot send to it")));
                }
                Some(host)
            }
        };
        let http_listen = match self.http.listen.as_str() {
            "" => None,
            a => Some(a.parse().map_err(|_| invalid("http.listen", format!("{a:?} is not ip:port")))?),
        };
        if let Some(url) = &self.nats.url {
            for u in url.split(',') {
                let u = u.trim();
                if !u.starts_with("nats://") && !u.starts_with("tls://") || u.parse::<async_nats_addr::Addr>().is_err() {
                    return Err(invalid("nats.url", format!("{u:?} is not a nats:// URL")));
                }
            }
        }
        if self.nats.replicas == 0 || self.nats.replicas > 5 {
            return Err(invalid("nats.replicas", "must be between 1 and 5"));
        }
        let mut users = HashMap::new();
        for (i, u) in self.users.iter().enumerate() {
            if u.username.is_empty() || u.username.contains([':', '@', ' ']) {
                return Err(invalid(&format!("users[{i}].username"), format!("{:?} is not a valid user name", u.username)));
            }
            if users.insert(u.username.clone(), u.password.clone()).is_some() {
                return Err(invalid(&format!("users[{i}].username"), format!("{:?} is listed twice", u.username)));
            }
        }
        let prompts = prompts_dir(&self.media.prompts_dir)?;
        let cpu = self.media.max_cpu_percent;
        if !(0.0..=100.0).contains(&cpu) {
            return Err(invalid("media.max_cpu_percent", format!("{cpu} is not between 0 (no limit) and 100")));
        }
        let media_limits = media_node::limits::Limits {
            max_sessions: (self.media.max_sessions > 0).then_some(self.media.max_sessions),
            max_cpu_percent: (cpu > 0.0).then_some(cpu),
        };
        let recordings = (!self.media.recordings_dir.is_empty()).then(|| PathBuf::from(&self.media.recordings_dir));
        let acd = super::acd::validate(&self.queues, &self.agents)?;
        acd.check_prompts(prompts.as_deref())?;
        let sections = if self.routes.is_empty() { Config::default_routes() } else { self.routes };
        let mut routes = Vec::new();
        for (i, r) in sections.into_iter().enumerate() {
            let key = |k: &str| format!("routes[{i}].{k}");
            let user = Regex::new(&r.user).map_err(|e| invalid(&key("user"), format!("invalid regular expression: {e}")))?;
            let target = if r.target == "registered" {
                Target::Registered
            } else if let Some(queue) = r.target.strip_prefix("queue:") {
                if !acd.queues.iter().any(|q| q.name == queue) {
                    return Err(invalid(&key("target"), format!("no queue {queue:?} in [[queues]]")));
                }
                Target::Queue(queue.to_owned())
            } else if let Some(room) = r.target.strip_prefix("conference:") {
                let example = room.replace("${user}", "1000");
                if !media_node::rooms::valid_room(&example) {
                    return Err(invalid(&key("target"), format!("room {room:?}: letters, digits, '-', '_', '.' and ${{user}}")));
                }
                Target::Conference(room.to_owned())
            } else {
                parse_uri(&key("target"), &r.target.replace("${user}", "user"))?;
                Target::Uri(r.target.clone())
            };
            if let Some(v) = &r.voicemail {
                parse_uri(&key("voicemail"), v)?;
            }
            for (name, file) in [("greeting", &r.greeting), ("music_on_hold", &r.music_on_hold)] {
                if let Some(file) = file {
                    prompt_file(&key(name), prompts.as_deref(), file)?;
                }
            }
            if r.record && recordings.is_none() {
                return Err(invalid(&key("record"), "needs media.recordings_dir"));
            }
            // A queue's callers hear its music unless the route says otherwise.
            let (queue_music, announce_secs) = match &target {
                Target::Queue(q) => (acd.music_on_hold.get(q).cloned(), acd.announce_secs.get(q).copied()),
                _ => (None, None),
            };
            let music_on_hold = r.music_on_hold.or(queue_music);
            if let Some(text) = &r.requires {
                router::acd::skills::Requirement::parse(text).map_err(|e| invalid(&key("requires"), e))?;
            }
            routes.push(Route {
                name: r.name.unwrap_or_else(|| format!("routes[{i}]")),
                user,
                target,
                policy: r.policy,
                ring_timeout_secs: r.ring_timeout_secs,
                voicemail: r.voicemail,
                interceptor: r.interceptor,
                media: RouteMedia {
                    record: r.record,
                    greeting: r.greeting,
                    music_on_hold,
                    zone: r.media_zone,
                    announce_secs,
                    priority: r.priority,
                    requires: r.requires,
                },
            });
        }
        let kube = KubeSettings {
            pod: self.kube.pod,
            namespace: self.kube.namespace,
            node: self.kube.node,
            advertise: parse_node_address(&self.kube.advertise)?,
        };
        Ok(Validated {
            node_id: self.node.id,
            drain_timeout: Duration::from_secs(self.node.drain_timeout_secs),
            nats_url: self.nats.url,
            replicas: self.nats.replicas,
            sip_listen,
            sip_advertise,
            orphan_timeout: Duration::from_secs(self.sip.orphan_timeout_secs.max(1)),
            reuse_port: self.sip.reuse_port,
            media_bind,
            media_advertise,
            rtp_ports: parse_ports(&self.media.rtp_ports)?,
            no_rtp_timeout: (self.media.no_rtp_timeout_secs > 0).then(|| Duration::from_secs(self.media.no_rtp_timeout_secs)),
            prompts_dir: prompts,
            recordings_dir: recordings,
            media_zone: self.media.zone.clone(),
            media_limits,
            acd,
            realm: self.auth.realm,
            secret: self.auth.secret,
            users,
            lease: Duration::from_secs(self.session.lease_secs.max(1)),
            http_listen,
            api: self.api.validate()?,
            kube,
            routes,
            skipped_variables: Vec::new(),
        })
    }
}

/// `nats://host:port` checking without a NATS client dependency here.
mod async_nats_addr {
    pub struct Addr;

    impl std::str::FromStr for Addr {
        type Err = ();
        fn from_str(s: &str) -> Result<Addr, ()> {
            let rest = s.split_once("://").map(|(_, r)| r).ok_or(())?;
            let host_port = rest.rsplit('@').next().ok_or(())?;
            let (host, port) = host_port.rsplit_once(':').ok_or(())?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(());
            }
            Ok(Addr)
        }
    }
}

/// A prompt a route names: a WAV file in the prompt directory.
pub(super) fn prompt_file(key: &str, dir: Option<&std::path::Path>, file: &str) -> Result<(), ConfigError> {
    let dir = dir.ok_or_else(|| invalid(key, "needs media.prompts_dir"))?;
    let plain = std::path::Path::new(file).components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain || !dir.join(file).is_file() {
        return Err(invalid(key, format!("no prompt file {file:?} in {}", dir.display())));
    }
    Ok(())
}

/// The prompt directory, which must exist when set.
fn prompts_dir(dir: &str) -> Result<Option<PathBuf>, ConfigError> {
    if dir.is_empty() {
        return Ok(None);
    }
    let path = PathBuf::from(dir);
    if !path.is_dir() {
        return Err(invalid("media.prompts_dir", format!("{dir:?} is not a directory")));
    }
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn load(text: &str) -> Result<Validated, String> {
        let path = std::env::temp_dir().join(format!("callmesh-config-{}.toml", rand_suffix()));
        std::fs::write(&path, text).unwrap();
        let r = Config::load(Some(&path), &BTreeMap::new(), &[]).map_err(|e| e.to_string());
        let _ = std::fs::remove_file(path);
        r
    }

    fn rand_suffix() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
            ^ u64::from(std::process::id())
    }

    #[test]
    fn defaults_without_a_file() {
        let v = Config::load(None, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(v.sip_listen, "127.0.0.1:5060".parse().unwrap());
        assert_eq!(v.rtp_ports, RtpPorts { min: 20000, max: 29999 });
        assert_eq!((v.routes.len(), &v.routes[0].target), (1, &Target::Registered));
        assert!(v.nats_url.is_none() && v.users.is_empty() && v.no_rtp_timeout.is_none());
    }

    #[test]
    fn a_full_file_is_read() {
        let v = load(
            r#"
[sip]
listen = "127.0.0.2:5070"
[media]
rtp_ports = "30000-30099"
no_rtp_timeout_secs = 10
max_sessions = 500
max_cpu_percent = 90
[[users]]
username = "alice"
password = "secret"
[[routes]]
user = '^1\d{3}$'
target = "sip:${user}@127.0.0.1:5090"
policy = { queue_with_timeout = { secs = 20 } }
"#,
        )
        .unwrap();
        assert_eq!(v.sip_listen.port(), 5070);
        assert_eq!(v.no_rtp_timeout, Some(Duration::from_secs(10)));
        assert_eq!(v.media_limits, media_node::limits::Limits { max_sessions: Some(500), max_cpu_percent: Some(90.0) });
        assert_eq!(v.users["alice"], "secret");
        assert!(v.routes[0].user.is_match("1234"));
    }

    #[test]
    fn errors_name_the_key() {
        for (text, key) in [
            ("[sip]\nlisen = \"x\"", "lisen"),
            ("[sip]\nlisten = \"nowhere\"", "sip.listen"),
            ("[media]\nrtp_ports = \"30000\"", "media.rtp_ports"),
            ("[media]\nrtp_ports = \"40000-30000\"", "media.rtp_ports"),
            ("[[routes]]\nuser = \"(\"\ntarget = \"registered\"", "routes[0].user"),
            ("[[routes]]\nuser = \".*\"\ntarget = \"mailto:x@y\"", "routes[0].target"),
            ("[[routes]]\nuser = \".*\"\ntarget = \"registered\"\npolicy = \"accept_some\"", "accept_some"),
            ("[nats]\nurl = \"http://x\"", "nats.url"),
            ("[node]\nid = \"a.b\"", "node.id"),
            ("[[users]]\nusername = \"a@b\"\npassword = \"p\"", "users[0].username"),
            ("[sip]\nadvertise = \"0.0.0.0\"", "sip.advertise"),
            ("[sip]\nadvertise = \"bad host!\"", "sip.advertise"),
            ("[media]\nadvertise = \"::\"", "media.advertise"),
            ("[media]\nadvertise = \"sip.example.com\"", "media.advertise"),
            ("[kube]\nadvertise = \"node-ip\"", "kube.advertise"),
            ("[media]\nmax_cpu_percent = 150", "media.max_cpu_percent"),
        ] {
            let e = load(text).unwrap_err();
            assert!(e.contains(key), "{text:?}: {e}");
        }
    }
}
