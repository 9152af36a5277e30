//! Whether a node is alive, whether it is ready for new work, and its drain: what `/healthz`,
//! `/readyz` and `/drain` answer, and what the binary waits for on SIGTERM.

use std::fmt::Write;
use std::time::Duration;

use crate::roles::Node;

/// A registry write older than this (three heartbeat intervals) makes the node unready.
const REGISTRY_STALE: Duration = Duration::from_secs(15);

/// The outcome of the readiness checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Each check's name and what it found; `Err` fails readiness.
    pub checks: Vec<(&'static str, Result<String, String>)>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|(_, r)| r.is_ok())
    }

    /// One line per check, for `/readyz`.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for (name, result) in &self.checks {
            let _ = match result {
                Ok(s) => writeln!(out, "{name}: ok ({s})"),
                Err(s) => writeln!(out, "{name}: FAIL ({s})"),
            };
        }
        out
    }
}

impl Node {
    /// Alive: the parts that run loops still run (a dead edge loop is not coming back).
    pub fn is_live(&self) -> bool {
        self.edge.as_ref().is_none_or(|e| e.is_running())
    }

    /// Ready for new work: not draining, the bus connected, the registry written to lately,
    /// the SIP edge running.
    pub fn readiness(&self) -> Readiness {
        let mut checks = Vec::new();
        checks.push(("draining", if self.drain.is_draining() { Err("yes".into()) } else { Ok("no".into()) }));
        let bus =
            if self.bus.is_connected() { Ok(self.bus_name.clone()) } else { Err(format!("{} disconnected", self.bus_name)) };
        checks.push(("bus", bus));
        let written = self.heartbeat.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|h| h.since_written());
        let registry = match written {
            Some(age) if age <= REGISTRY_STALE => Ok(format!("written {} ms ago", age.as_millis())),
            Some(age) => Err(format!("last written {} s ago", age.as_secs())),
            None => Err("not written yet".into()),
        };
        checks.push(("registry", registry));
        if let Some(edge) = &self.edge {
            let sip = if edge.is_running() { Ok(format!("{}", self.config.sip_listen)) } else { Err("the edge stopped".into()) };
            checks.push(("sip", sip));
        }
        Readiness { checks }
    }

    /// Work in progress, by kind (empty when drained).
    pub fn in_flight(&self) -> Vec<(&'static str, usize)> {
        let mut work = Vec::new();
        if let Some(e) = &self.edge {
            work.push(("edge transactions", e.in_flight.count()));
        }
        if let Some(r) = &self.router {
            work.push(("routing decisions", r.in_flight.count()));
        }
        if let Some(s) = &self.session {
            work.push(("calls", s.active.count()));
        }
        if let Some(m) = &self.media {
            work.push(("media sessions", m.stats().sessions.count()));
        }
        work.retain(|(_, n)| *n > 0);
        work
    }

    /// Starts draining and waits until every role's work is done, or `drain_timeout` has
    /// passed. Returns the work left (empty when it all finished).
    pub async fn drain_and_wait(&self) -> Vec<(&'static str, usize)> {
        self.drain.start();
        let all_idle = async {
            if let Some(s) = &self.session {
                s.active.idle().await;
            }
            if let Some(r) = &self.router {
                r.in_flight.idle().await;
            }
            if let Some(m) = &self.media {
                m.stats().sessions.idle().await;
            }
            // Last: the edge carries the final BYEs and their responses.
            if let Some(e) = &self.edge {
                e.in_flight.idle().await;
            }
        };
        let _ = tokio::time::timeout(self.config.drain_timeout, all_idle).await;
        self.in_flight()
    }
}
