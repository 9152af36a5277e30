//! Relays whose call is gone are reaped. A relay's release is one-way and can be lost (a
//! NATS server dying under it), an allocation whose reply came too late is placed again on
//! another node, and a call whose session node died without a successor has nobody to
//! release it: each leaves a relay holding two port pairs for ever. Every interval the node
//! lists the session registry's keys; a relay whose session has no record at two sweeps in
//! a row, and which received no packet between them, is released as if its owner had asked.
//! A call's audio keeps its relay even without a record (a session node that could not
//! write one goes on with the call); a relay's first sweep never reaps it (its record is
//! written just after the allocation).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cluster::registry::{Bucket, Registry};

use crate::node::MediaNode;

/// How often a node sweeps its relays: a forgotten relay is reaped within two of these.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// What a sweep knows of the relays it suspects: their packets received when first found
/// without a record.
#[derive(Debug, Default)]
pub struct Reaper {
    suspects: HashMap<String, u64>,
}

impl Reaper {
    /// The relays to release, given each live relay's session and packets received so far,
    /// and the sessions that have a record. Suspects that are gone or recorded are forgotten.
    pub fn sweep(&mut self, relays: &[(String, u64)], recorded: &HashSet<String>) -> Vec<String> {
        let mut reap = Vec::new();
        let mut suspects = HashMap::new();
        for (session, received) in relays {
            if recorded.contains(session) {
                continue;
            }
            match self.suspects.get(session) {
                Some(before) if before == received => reap.push(session.clone()),
                _ => {
                    suspects.insert(session.clone(), *received);
                }
            }
        }
        self.suspects = suspects;
        reap
    }
}

impl MediaNode {
    /// Reaps this node's relays whose call has no record in `registry`, sweeping every
    /// `interval`, until the node is dropped.
    pub fn reap_with(&self, registry: Arc<dyn Registry>, interval: Duration) {
        let node = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            let mut reaper = Reaper::default();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(shared) = node.upgrade() else { return };
                let node = MediaNode { shared };
                let relays = node.relays_received();
                if relays.is_empty() {
                    reaper = Reaper::default();
                    continue;
                }
                // A listing that fails or hangs (a NATS server dying) reaps nothing.
                let recorded = match tokio::time::timeout(interval, registry.keys(Bucket::Sessions, "")).await {
                    Ok(Ok(keys)) => keys.into_iter().collect(),
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "session records not listed: no relay reaped");
                        continue;
                    }
                    Err(_) => {
                        tracing::debug!("session records not listed in time: no relay reaped");
                        continue;
                    }
                };
                for session in reaper.sweep(&relays, &recorded) {
                    node.reap(&session);
                }
            }
        });
    }

    /// Each live relay's session and the packets its legs received.
    fn relays_received(&self) -> Vec<(String, u64)> {
        let sessions = self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.iter().map(|(id, r)| (id.clone(), r.counters().iter().map(|c| c.packets_received).sum())).collect()
    }

    fn reap(&self, session: &str) {
        let relay = {
            let mut sessions = self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let relay = sessions.remove(session);
            self.shared.stats.sessions.set(sessions.len());
            relay
        };
        if let Some(relay) = relay {
            tracing::info!(%session, "relay reaped: its call has no record");
            self.shared.stats.relays_reaped.fetch_add(1, Ordering::Relaxed);
            self.recycle(relay);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relays(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    }

    fn recorded(list: &[&str]) -> HashSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_silent_relay_without_a_record_at_two_sweeps_is_reaped() {
        let mut reaper = Reaper::default();
        assert!(reaper.sweep(&relays(&[("a", 5)]), &recorded(&[])).is_empty(), "the first sweep only suspects");
        assert_eq!(reaper.sweep(&relays(&[("a", 5)]), &recorded(&[])), vec!["a".to_string()]);
    }

    #[test]
    fn a_recorded_relay_is_kept_and_forgiven() {
        let mut reaper = Reaper::default();
        assert!(reaper.sweep(&relays(&[("a", 0)]), &recorded(&[])).is_empty());
        // Its record came (written just after the allocation): no longer a suspect.
        assert!(reaper.sweep(&relays(&[("a", 0)]), &recorded(&["a"])).is_empty());
        assert!(reaper.sweep(&relays(&[("a", 0)]), &recorded(&[])).is_empty(), "suspected afresh, not reaped");
        assert_eq!(reaper.sweep(&relays(&[("a", 0)]), &recorded(&[])), vec!["a".to_string()]);
    }

    #[test]
    fn a_relay_carrying_audio_is_kept_without_a_record() {
        let mut reaper = Reaper::default();
        for received in [10, 60, 110, 160] {
            assert!(reaper.sweep(&relays(&[("a", received)]), &recorded(&[])).is_empty());
        }
        // Its audio stops: reaped at the sweep after it was found silent.
        assert!(reaper.sweep(&relays(&[("a", 160)]), &recorded(&[])).len() == 1);
    }

    #[test]
    fn only_the_relays_without_records_are_reaped() {
        let mut reaper = Reaper::default();
        let live = relays(&[("a", 0), ("b", 0), ("c", 0)]);
        reaper.sweep(&live, &recorded(&["b"]));
        let mut reaped = reaper.sweep(&live, &recorded(&["b"]));
        reaped.sort();
        assert_eq!(reaped, vec!["a".to_string(), "c".to_string()]);
    }
}
