//! A caller waiting in a queue, as its call keeps it: the queue, the agents' legs ringing
//! for it, its announcement clock, what its route asked (priority, skills), and who it is
//! (the caller's address, by which a queue that keeps places knows it when it calls back).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cluster::bus::typed::TypedSubscription;
use cluster::contracts::{AcdInstruction, AcdJoin, QueueCallerRecord};
use tokio::sync::mpsc;

use super::queue::{Note, ToAgent};

/// A caller in a queue, and its agents' legs.
pub(crate) struct Waiting {
    pub(super) queue: String,
    pub(super) joined: bool,
    pub(super) instructions: Option<TypedSubscription<AcdInstruction>>,
    /// The edge the caller came through, for the agents' legs (any edge serves them).
    pub(super) edge_id: String,
    pub(super) edge_uri: String,
    /// Who the agents see calling: the caller's From, without its tag.
    pub(super) identity: String,
    /// The caller's address (`sip:user@host`, lower case; empty: anonymous), by which a
    /// queue that keeps places knows it when it calls back.
    pub(super) who: String,
    pub(super) agents: HashMap<String, mpsc::UnboundedSender<ToAgent>>,
    /// Each agent's leg (its session), to tell it over the bus once taken over.
    pub(super) agent_sessions: HashMap<String, String>,
    pub(super) notes: mpsc::UnboundedReceiver<(String, Note)>,
    pub(super) notes_tx: mpsc::UnboundedSender<(String, Note)>,
    pub(super) bridged: Option<String>,
    /// The clock of the queue's periodic announcement (the routers say what it plays), and
    /// its period in seconds (0: none).
    pub(super) announce: Option<tokio::time::Interval>,
    announce_secs: u32,
    /// Its call was taken over from a node that died: it joins again, keeping its place.
    pub(super) resumed: bool,
    /// The caller's priority and the skills it needs (from its route).
    pub(super) priority: u32,
    pub(super) requires: String,
    /// When it joined; whether it was offered yet; when an agent was put through.
    pub(super) joined_at: Option<Instant>,
    pub(super) bridged_at: Option<Instant>,
    pub(super) offered: bool,
}

impl Waiting {
    /// A caller of `queue` who came through `edge_id` (`edge_uri`) with `invite`.
    pub fn new(queue: &str, edge_id: &str, edge_uri: &str, invite: bytes::Bytes) -> Waiting {
        let from = sip::message::Message::parse_datagram(invite)
            .ok()
            .and_then(|m| m.header(sip::message::HeaderName::From).map(str::to_owned))
            .unwrap_or_default();
        let identity = from.split(';').next().filter(|f| f.contains("sip:")).unwrap_or("<sip:queue@callmesh.invalid>");
        let caller = QueueCallerRecord {
            queue: queue.to_owned(),
            edge_id: edge_id.to_owned(),
            edge_uri: edge_uri.to_owned(),
            identity: identity.trim().to_owned(),
            who: address_of(&from),
            ..Default::default()
        };
        Waiting { resumed: false, ..Waiting::from_record(&caller) }
    }

    /// The caller's priority (higher first) and the skills it requires (empty: none).
    pub fn needs(&mut self, priority: u32, requires: String) {
        (self.priority, self.requires) = (priority, requires);
    }

    /// Announces to the caller every `secs` seconds while it waits (the first one after
    /// that long; 0: never).
    pub fn announcing(mut self, secs: u32) -> Waiting {
        self.announce_secs = secs;
        self.announce = (secs > 0).then(|| {
            let every = Duration::from_secs(u64::from(secs.max(5)));
            tokio::time::interval_at(tokio::time::Instant::now() + every, every)
        });
        self
    }

    /// The report that joins the caller to its queue.
    pub(super) fn join(&self) -> AcdJoin {
        AcdJoin {
            queue: self.queue.clone(),
            priority: self.priority,
            requires: self.requires.clone(),
            who: self.who.clone(),
            resumed: self.resumed,
            bridged_agent: self.bridged.clone().filter(|_| self.resumed).unwrap_or_default(),
        }
    }

    /// What the call's record keeps of the caller, for a node that takes the call over.
    pub(super) fn to_record(&self) -> QueueCallerRecord {
        QueueCallerRecord {
            queue: self.queue.clone(),
            priority: self.priority,
            requires: self.requires.clone(),
            who: self.who.clone(),
            identity: self.identity.clone(),
            edge_id: self.edge_id.clone(),
            edge_uri: self.edge_uri.clone(),
            announce_secs: self.announce_secs,
            bridged_agent: self.bridged.clone().unwrap_or_default(),
            agent_session: self.bridged.as_ref().and_then(|a| self.agent_sessions.get(a)).cloned().unwrap_or_default(),
        }
    }

    /// The caller a call's record keeps, taken over: it joins its queue again, resumed.
    pub(super) fn from_record(r: &QueueCallerRecord) -> Waiting {
        let (notes_tx, notes) = mpsc::unbounded_channel();
        let bridged = Some(r.bridged_agent.clone()).filter(|a| !a.is_empty());
        let agent_sessions = bridged.iter().map(|a| (a.clone(), r.agent_session.clone())).collect();
        let waiting = Waiting {
            queue: r.queue.clone(),
            joined: false,
            instructions: None,
            edge_id: r.edge_id.clone(),
            edge_uri: r.edge_uri.clone(),
            identity: r.identity.clone(),
            who: r.who.clone(),
            agents: HashMap::new(),
            agent_sessions,
            notes,
            notes_tx,
            bridged,
            announce: None,
            announce_secs: 0,
            resumed: true,
            priority: r.priority,
            requires: r.requires.clone(),
            joined_at: None,
            bridged_at: None,
            offered: false,
        };
        waiting.announcing(r.announce_secs)
    }
}

/// The address in a From header value (`"Alice" <sip:Alice@Example.com;transport=tcp>;tag=1`
/// → `sip:alice@example.com`); empty for an anonymous caller.
fn address_of(from: &str) -> String {
    let uri = match (from.find('<'), from.find('>')) {
        (Some(open), Some(close)) if open < close => &from[open + 1..close],
        _ => from.split(';').next().unwrap_or_default(),
    };
    let address = uri.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let anonymous = address.is_empty() || address.contains("anonymous");
    if anonymous { String::new() } else { address }
}

#[cfg(test)]
mod tests {
    use super::address_of;

    #[test]
    fn a_callers_address_is_its_from_uri_without_name_parameters_or_case() {
        assert_eq!(address_of("\"Alice\" <sip:Alice@Example.com;transport=tcp>;tag=1"), "sip:alice@example.com");
        assert_eq!(address_of("sip:bob@example.com;tag=9"), "sip:bob@example.com");
        assert_eq!(address_of("\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=2"), "");
        assert_eq!(address_of(""), "");
    }
}
