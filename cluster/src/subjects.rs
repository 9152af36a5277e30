//! Every bus subject, built by a typed function: no call site formats a subject itself.
//! `docs/bus.md` lists who publishes and who subscribes to each one.

use std::fmt;

/// Why an id cannot be used in a subject or a registry key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {0:?}: use 1-64 characters among a-z A-Z 0-9 - _")]
pub struct InvalidId(pub String);

fn check_id(s: &str) -> Result<(), InvalidId> {
    let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(InvalidId(s.to_owned())) }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks that `s` is a single subject token (no dots, no wildcards).
            pub fn new(s: impl Into<String>) -> Result<Self, InvalidId> {
                let s = s.into();
                check_id(&s)?;
                Ok($name(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                $name::new(s)
            }
        }
    };
}

id_type!(
    /// A node of the cluster.
    NodeId
);
id_type!(
    /// A call's session.
    SessionId
);

impl SessionId {
    /// A fresh random session id (64 bits, hex).
    pub fn random() -> SessionId {
        SessionId(format!("{:016x}", rand::random::<u64>()))
    }
}

/// A subject to publish on or subscribe to (possibly with `*`/`>` wildcards).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject(String);

impl Subject {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const PREFIX: &str = "callmesh";

/// Queue groups: each message goes to one member.
pub mod groups {
    pub const ROUTERS: &str = "routers";
    pub const SESSIONS: &str = "sessions";
    pub const EDGES: &str = "edges";
    pub const MEDIA: &str = "media";
    pub const DECIDERS: &str = "deciders";
}

/// New INVITEs, edge → routers (queue group `routers`).
pub fn incoming_calls() -> Subject {
    Subject(format!("{PREFIX}.calls.incoming"))
}

/// Routed calls, router → session nodes (queue group `sessions`).
pub fn routed_calls() -> Subject {
    Subject(format!("{PREFIX}.calls.routed"))
}

/// Calls whose route requires a manual decision, router → a deciding application
/// (request/reply, queue group `deciders`).
pub fn call_decisions() -> Subject {
    Subject(format!("{PREFIX}.calls.decide"))
}

/// Commands for one edge (responses on its server transactions, requests, ACKs, CANCELs).
pub fn edge_commands(edge: &NodeId) -> Subject {
    Subject(format!("{PREFIX}.edge.{edge}.commands"))
}

/// Commands any edge may carry out (queue group `edges`): new outgoing requests.
pub fn any_edge_commands() -> Subject {
    Subject(format!("{PREFIX}.edge.any.commands"))
}

/// Commands for every edge (no queue group): a session taken over asks for its requests
/// again.
pub fn all_edge_commands() -> Subject {
    Subject(format!("{PREFIX}.edge.all.commands"))
}

/// Events of one session, edges → the session's owner (who subscribes while it owns it).
pub fn session_events(session: &SessionId) -> Subject {
    Subject(format!("{PREFIX}.session.{session}.events"))
}

/// Media events of one session, media node → the session's owner.
pub fn session_media_events(session: &SessionId) -> Subject {
    Subject(format!("{PREFIX}.session.{session}.media"))
}

/// What sessions report to the ACD (`AcdReport`), session → routers (queue group `routers`).
pub fn acd_reports() -> Subject {
    Subject(format!("{PREFIX}.acd.reports"))
}

/// What happens in the queues (`QueueEvent`), routers → anyone listening.
pub fn acd_events() -> Subject {
    Subject(format!("{PREFIX}.events.queue"))
}

/// A drain asked of node `node` (`DrainNode`, request/reply), API → that node.
pub fn node_drain(node: &NodeId) -> Subject {
    Subject(format!("{PREFIX}.node.{node}.drain"))
}

/// Calls the API asks to place (`OriginateCall`), API → session nodes (queue group
/// `sessions`, request/reply).
pub fn originate() -> Subject {
    Subject(format!("{PREFIX}.sessions.originate"))
}

/// Every subject of the event feed (`callmesh.events.>`: queue events, call notices), which
/// the event journal keeps in the order it is published.
pub fn all_events() -> Subject {
    Subject(format!("{PREFIX}.events.>"))
}

/// What happens to calls (`CallNotice`), session nodes → anyone listening.
pub fn call_events() -> Subject {
    Subject(format!("{PREFIX}.events.call"))
}

/// Call detail records (`Cdr`), appended to the CDR journal by session nodes.
pub fn cdrs() -> Subject {
    Subject(format!("{PREFIX}.cdrs"))
}

/// What the ACD tells a caller's session (`AcdInstruction`), router → the session's owner.
pub fn session_acd(session: &SessionId) -> Subject {
    Subject(format!("{PREFIX}.session.{session}.acd"))
}

/// Media allocation requests (request/reply, queue group `media`).
pub fn media_allocate() -> Subject {
    Subject(format!("{PREFIX}.media.allocate"))
}

/// Allocation requests for one media node (chosen by its headroom), as `media_allocate`.
pub fn media_node_allocate(node: &NodeId) -> Subject {
    Subject(format!("{PREFIX}.media.{node}.allocate"))
}

/// Commands for one media node (request/reply).
pub fn media_commands(node: &NodeId) -> Subject {
    Subject(format!("{PREFIX}.media.{node}.commands"))
}

/// Subjects used by tests and tools (`callmesh.test.<name>`), never by nodes.
pub fn test(name: &str) -> Subject {
    Subject(format!("{PREFIX}.test.{name}"))
}

/// A subject for the conformance tests' wildcard cases: `callmesh.test.` + `tail`, where
/// `tail` may contain tokens and `*`/`>`.
pub fn test_pattern(tail: &str) -> Subject {
    Subject(format!("{PREFIX}.test.{tail}"))
}

/// True when `subject` (literal) matches `pattern` (NATS wildcards: `*` is one token, `>`
/// one or more trailing tokens).
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True when `subject` contains a wildcard token.
pub fn is_pattern(subject: &str) -> bool {
    subject.split('.').any(|t| t == "*" || t == ">")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_single_tokens() {
        assert!(NodeId::new("edge-1").is_ok());
        for bad in ["", "a.b", "*", ">", "a b", &"x".repeat(65)] {
            assert!(NodeId::new(bad).is_err(), "{bad:?}");
        }
        assert_ne!(SessionId::random(), SessionId::random());
    }

    #[test]
    fn wildcards_match_like_nats() {
        assert!(matches("a.*.c", "a.b.c"));
        assert!(!matches("a.*.c", "a.b.d"));
        assert!(!matches("a.*", "a.b.c"));
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(is_pattern("a.*") && is_pattern("a.>") && !is_pattern("a.b"));
    }

    #[test]
    fn subjects_are_built_from_typed_ids() {
        let edge = NodeId::new("edge-2").unwrap();
        assert_eq!(edge_commands(&edge).as_str(), "callmesh.edge.edge-2.commands");
        assert!(matches("callmesh.session.*.events", session_events(&SessionId::new("s1").unwrap()).as_str()));
    }
}
