//! The ACD's configuration: `[[queues]]` and `[[agents]]`, as written and as the router
//! takes them (`router::acd::{QueueSpec, AgentSpec}`), every value checked with a message
//! naming its key.
//!
//! ```toml
//! [[queues]]
//! name = "sales"
//! strategy = "round-robin"        # any of mod_callcenter's, or rrmemory, linear, wrandom
//! max_wait_secs = 120
//! overflow = "sip:voicemail@127.0.0.1:5090"   # or "queue:<name>", or a status: "486"
//! music_on_hold = "music.wav"     # media.prompts_dir
//! announce = "please-hold.wav"    # every announce_secs (30)
//! announce_position = true        # then "you are caller number" 3
//! announce_wait = true            # then "your expected wait is" 4 "minutes"
//! resume_secs = 120               # a caller who hangs up and calls back resumes its place
//! exit_key = "0"                  # leaves the queue ...
//! exit_target = "sip:voicemail@127.0.0.1:5090"   # ... to here
//!
//! [[agents]]
//! user = "agent1"                 # a SIP user: offered at the contacts it registered
//! queues = ["sales"]              # or tiers = [{ queue = "sales", level = 1, position = 1 }]
//! skills = { spanish = 2 }
//! ```

use std::collections::BTreeMap;

use router::acd::skills::Requirement;
use router::acd::{AgentSpec, Overflow, QueueSpec, Status, Strategy, Tier, announce};
use serde::Deserialize;

use super::ConfigError;
use super::validate::invalid;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSection {
    pub name: String,
    #[serde(default = "longest_idle")]
    pub strategy: String,
    /// How long each offer rings.
    #[serde(default = "fifteen")]
    pub ring_secs: u64,
    /// `ring-progressively`: one more agent every this long.
    #[serde(default = "ten")]
    pub progressive_secs: u64,
    /// Longest wait before `overflow` (0: none).
    #[serde(default)]
    pub max_wait_secs: u64,
    /// Callers waiting at most (0: no limit).
    #[serde(default)]
    pub max_length: usize,
    /// Where callers go on max wait or max length: a SIP URI, `queue:<name>`, or a status.
    #[serde(default = "refuse_480")]
    pub overflow: String,
    /// A DTMF key that leaves the queue, and where to (as `overflow`).
    pub exit_key: Option<String>,
    pub exit_target: Option<String>,
    #[serde(default = "twenty")]
    pub service_level_secs: u64,
    /// Tier level `n` opens after `(n - 1) ×` this many seconds of waiting (0: all open).
    #[serde(default)]
    pub tier_wait_secs: u64,
    #[serde(default)]
    pub wrap_up_secs: u64,
    /// Agents on another call may be offered.
    #[serde(default)]
    pub ring_in_use: bool,
    /// A skills expression every agent of the queue must meet.
    pub requires: Option<String>,
    /// A prompt file (`media.prompts_dir`) played, looped, while callers wait.
    pub music_on_hold: Option<String>,
    /// A prompt file played to each waiting caller every `announce_secs` (in place of the
    /// music while it plays).
    pub announce: Option<String>,
    #[serde(default = "thirty")]
    pub announce_secs: u32,
    /// The announcement goes on with the caller's position in the queue ...
    #[serde(default)]
    pub announce_position: bool,
    /// ... and the expected wait, in prompts (`router::acd::announce`).
    #[serde(default)]
    pub announce_wait: bool,
    /// A caller who hangs up while waiting and calls back within this long takes its place
    /// again (0: no).
    #[serde(default)]
    pub resume_secs: u64,
}

fn longest_idle() -> String {
    Strategy::LongestIdleAgent.name().into()
}
fn fifteen() -> u64 {
    15
}
fn ten() -> u64 {
    10
}
fn twenty() -> u64 {
    20
}
fn thirty() -> u32 {
    30
}
fn refuse_480() -> String {
    "480".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSection {
    pub queue: String,
    #[serde(default = "one")]
    pub level: u32,
    #[serde(default = "one")]
    pub position: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// The SIP user the agent registers as (offered at its registered contacts).
    pub user: String,
    /// Where to ring the agent instead of its registrations.
    pub contact: Option<String>,
    /// Queues at level 1, positions in this order.
    #[serde(default)]
    pub queues: Vec<String>,
    #[serde(default)]
    pub tiers: Vec<TierSection>,
    /// `available` (default), `on-break` or `logged-out`, at start.
    #[serde(default = "available")]
    pub status: String,
    #[serde(default)]
    pub skills: BTreeMap<String, u32>,
    #[serde(default)]
    pub penalty: u32,
    #[serde(default = "three")]
    pub max_no_answer: u32,
    pub wrap_up_secs: Option<u64>,
    #[serde(default)]
    pub no_answer_delay_secs: u64,
    #[serde(default)]
    pub busy_delay_secs: u64,
    #[serde(default)]
    pub reject_delay_secs: u64,
}

fn available() -> String {
    "available".into()
}
fn three() -> u32 {
    3
}

/// The queues and agents, checked.
#[derive(Debug, Clone, Default)]
pub struct AcdConfig {
    pub queues: Vec<QueueSpec>,
    /// Each agent with its status at start.
    pub agents: Vec<(AgentSpec, Status)>,
    /// Music on hold of each queue that has one.
    pub music_on_hold: BTreeMap<String, String>,
    /// How often each queue that announces anything announces, in seconds.
    pub announce_secs: BTreeMap<String, u32>,
}

impl AcdConfig {
    /// Every prompt file the queues play is in `prompts` (the media nodes' directory).
    pub fn check_prompts(&self, prompts: Option<&std::path::Path>) -> Result<(), ConfigError> {
        let music = self.music_on_hold.iter().map(|(q, f)| (q.clone(), f.clone(), "music_on_hold"));
        let announced =
            self.queues.iter().flat_map(|q| announce::prompts(q).into_iter().map(|f| (q.name.clone(), f, "announce")));
        for (queue, file, key) in music.chain(announced) {
            super::validate::prompt_file(&format!("queues ({queue}).{key}"), prompts, &file)?;
        }
        Ok(())
    }
}

fn overflow(key: &str, text: &str) -> Result<Overflow, ConfigError> {
    if let Ok(status) = text.parse::<u16>() {
        return if (300..700).contains(&status) {
            Ok(Overflow::Refuse(status))
        } else {
            Err(invalid(key, "a status is 300-699"))
        };
    }
    if let Some(queue) = text.strip_prefix("queue:") {
        return Ok(Overflow::Queue(queue.into()));
    }
    super::validate::parse_uri(key, text)?;
    Ok(Overflow::Uri(text.into()))
}

pub fn validate(queues: &[QueueSection], agents: &[AgentSection]) -> Result<AcdConfig, ConfigError> {
    let mut out = AcdConfig::default();
    for (i, q) in queues.iter().enumerate() {
        let key = |k: &str| format!("queues[{i}].{k}");
        if q.name.is_empty() || !q.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(invalid(&key("name"), format!("{:?}: letters, digits, '-' and '_'", q.name)));
        }
        if out.queues.iter().any(|o: &QueueSpec| o.name == q.name) {
            return Err(invalid(&key("name"), format!("{:?} is defined twice", q.name)));
        }
        let strategy: Strategy = q.strategy.parse().map_err(|e| invalid(&key("strategy"), e))?;
        let mut spec = QueueSpec::new(&q.name, strategy);
        spec.ring_ms = q.ring_secs.max(1) * 1000;
        spec.progressive_ms = q.progressive_secs.max(1) * 1000;
        spec.max_wait_ms = q.max_wait_secs * 1000;
        spec.max_len = q.max_length;
        spec.overflow = overflow(&key("overflow"), &q.overflow)?;
        spec.exit_key = match (&q.exit_key, &q.exit_target) {
            (None, None) => None,
            (Some(k), Some(t)) if k.len() == 1 && "0123456789*#".contains(k.as_str()) => {
                Some((k.chars().next().unwrap_or('0'), overflow(&key("exit_target"), t)?))
            }
            (Some(_), Some(_)) => return Err(invalid(&key("exit_key"), "one of 0-9, * or #")),
            _ => return Err(invalid(&key("exit_key"), "exit_key and exit_target go together")),
        };
        spec.service_level_ms = q.service_level_secs * 1000;
        spec.tier_wait_ms = (q.tier_wait_secs > 0).then_some(q.tier_wait_secs * 1000);
        spec.wrap_up_ms = q.wrap_up_secs * 1000;
        spec.ring_in_use = q.ring_in_use;
        spec.requires = q.requires.as_deref().map(Requirement::parse).transpose().map_err(|e| invalid(&key("requires"), e))?;
        if let Some(file) = &q.music_on_hold {
            out.music_on_hold.insert(q.name.clone(), file.clone());
        }
        spec.announce = q.announce.clone();
        (spec.announce_position, spec.announce_wait) = (q.announce_position, q.announce_wait);
        if q.announce.is_some() || q.announce_position || q.announce_wait {
            out.announce_secs.insert(q.name.clone(), q.announce_secs.max(5));
        }
        spec.resume_ms = q.resume_secs * 1000;
        out.queues.push(spec);
    }
    for spec in &out.queues {
        for target in std::iter::once(&spec.overflow).chain(spec.exit_key.as_ref().map(|(_, t)| t)) {
            if let Overflow::Queue(name) = target
                && !out.queues.iter().any(|q| &q.name == name)
            {
                return Err(invalid(&format!("queues ({})", spec.name), format!("overflow to unknown queue {name:?}")));
            }
        }
    }
    for (i, a) in agents.iter().enumerate() {
        let key = |k: &str| format!("agents[{i}].{k}");
        if a.user.is_empty() || a.user.contains([':', '@', ' ']) {
            return Err(invalid(&key("user"), format!("{:?} is not a user name", a.user)));
        }
        if out.agents.iter().any(|(o, _): &(AgentSpec, Status)| o.id == a.user) {
            return Err(invalid(&key("user"), format!("{:?} is listed twice", a.user)));
        }
        let mut tiers: Vec<Tier> =
            a.queues.iter().enumerate().map(|(p, q)| Tier { queue: q.clone(), level: 1, position: p as u32 + 1 }).collect();
        tiers.extend(a.tiers.iter().map(|t| Tier { queue: t.queue.clone(), level: t.level, position: t.position }));
        if let Some(t) = tiers.iter().find(|t| !out.queues.iter().any(|q| q.name == t.queue)) {
            return Err(invalid(&key("queues"), format!("no queue {:?}", t.queue)));
        }
        let status = match a.status.as_str() {
            "available" => Status::Available,
            "on-break" => Status::OnBreak,
            "logged-out" => Status::LoggedOut,
            other => return Err(invalid(&key("status"), format!("{other:?}: available, on-break or logged-out"))),
        };
        if let Some(c) = &a.contact {
            super::validate::parse_uri(&key("contact"), c)?;
        }
        let mut spec = AgentSpec::new(&a.user, tiers);
        spec.contact = a.contact.clone();
        spec.skills = a.skills.clone();
        spec.penalty = a.penalty;
        spec.max_no_answer = a.max_no_answer.max(1);
        spec.wrap_up_ms = a.wrap_up_secs.map(|s| s * 1000);
        spec.no_answer_delay_ms = a.no_answer_delay_secs * 1000;
        spec.busy_delay_ms = a.busy_delay_secs * 1000;
        spec.reject_delay_ms = a.reject_delay_secs * 1000;
        out.agents.push((spec, status));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::Config;
    use super::*;

    fn load(text: &str) -> Result<super::super::Validated, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let mut table = table;
        super::super::apply_overrides(&mut table, &BTreeMap::new(), &[]).map_err(|e| e.to_string())?;
        let config = Config::deserialize(table).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())
    }

    const SALES: &str = "[[queues]]\nname = \"sales\"\nstrategy = \"round-robin\"\nmax_wait_secs = 60\noverflow = \"queue:support\"\n\
                         resume_secs = 90\n\
                         [[queues]]\nname = \"support\"\ntier_wait_secs = 10\nrequires = 'skills HAS \"spanish\"'\n";

    #[test]
    fn queues_agents_and_queue_routes_are_read() {
        let text = format!(
            "{SALES}[[agents]]\nuser = \"agent1\"\nqueues = [\"sales\", \"support\"]\nskills = {{ spanish = 2 }}\n\
             [[agents]]\nuser = \"agent2\"\ntiers = [{{ queue = \"support\", level = 2, position = 3 }}]\nstatus = \"on-break\"\n\
             [[routes]]\nuser = '^7000$'\ntarget = \"queue:sales\"\npriority = 5\nrequires = 'spanish >= 2'\n"
        );
        let v = load(&text).unwrap();
        let sales = &v.acd.queues[0];
        assert_eq!(
            (sales.strategy, sales.max_wait_ms, &sales.overflow),
            (Strategy::RoundRobin, 60_000, &Overflow::Queue("support".into()))
        );
        assert_eq!((v.acd.queues[0].resume_ms, v.acd.queues[1].resume_ms), (90_000, 0));
        assert_eq!(v.acd.queues[1].tier_wait_ms, Some(10_000));
        let (agent1, status1) = &v.acd.agents[0];
        assert_eq!(
            agent1.tiers.iter().map(|t| (t.queue.as_str(), t.position)).collect::<Vec<_>>(),
            [("sales", 1), ("support", 2)]
        );
        assert_eq!((agent1.skills["spanish"], *status1), (2, Status::Available));
        assert_eq!((v.acd.agents[1].0.tiers[0].level, v.acd.agents[1].1), (2, Status::OnBreak));
        assert_eq!(v.routes[0].target, router::Target::Queue("sales".into()));
        assert_eq!((v.routes[0].media.priority, v.routes[0].media.requires.as_deref()), (5, Some("spanish >= 2")));
    }

    #[test]
    fn mistakes_name_their_key() {
        for (text, key) in [
            ("[[queues]]\nname = \"a b\"", "queues[0].name"),
            ("[[queues]]\nname = \"q\"\nstrategy = \"fastest\"", "queues[0].strategy"),
            ("[[queues]]\nname = \"q\"\noverflow = \"200\"", "queues[0].overflow"),
            ("[[queues]]\nname = \"q\"\noverflow = \"queue:nowhere\"", "nowhere"),
            ("[[queues]]\nname = \"q\"\nrequires = \"level >= 2\"", "queues[0].requires"),
            ("[[queues]]\nname = \"q\"\nexit_key = \"5\"", "queues[0].exit_key"),
            ("[[queues]]\nname = \"q\"\n[[agents]]\nuser = \"a\"\nqueues = [\"r\"]", "agents[0].queues"),
            ("[[queues]]\nname = \"q\"\n[[agents]]\nuser = \"a\"\nstatus = \"away\"", "agents[0].status"),
            ("[[routes]]\nuser = \".*\"\ntarget = \"queue:none\"", "routes[0].target"),
            ("[[queues]]\nname = \"q\"\nannounce_position = true", "queues (q).announce: needs media.prompts_dir"),
            (
                "[[queues]]\nname = \"q\"\n[[routes]]\nuser = \".*\"\ntarget = \"queue:q\"\nrequires = \"x >\"",
                "routes[0].requires",
            ),
        ] {
            let e = load(text).unwrap_err();
            assert!(e.contains(key), "{text:?}: {e}");
        }
    }
}
