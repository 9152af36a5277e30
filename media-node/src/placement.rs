//! Which media node takes a new call: the one with the most headroom, as the membership
//! heartbeats tell it (free RTP port pairs, draining or not, declining at a limit or not,
//! zone). Heartbeats are seconds
//! old, so a burst of calls would all go to the same node: two candidates are drawn at
//! random among the fit ones and the freer wins (the "power of two choices"), and every
//! allocation made here is subtracted from what the view believes (every release given
//! back) until the next heartbeat. The others follow as fallbacks, freest first — those the
//! view believes full too, last, as it may be out of date (a full node refuses).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::contracts::{NodeHeartbeat, Role};
use cluster::membership::{self, MemberEvent};
use cluster::registry::Registry;
use cluster::subjects::NodeId;

/// A media node as the view knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    free_pairs: u32,
    zone: String,
    draining: bool,
}

/// The media nodes alive, and their headroom.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    nodes: Arc<Mutex<HashMap<NodeId, Candidate>>>,
}

fn is_media(hb: &NodeHeartbeat) -> bool {
    hb.role == Role::Media as i32 || hb.role == Role::All as i32
}

impl Placement {
    /// A view kept up to date from the registry's heartbeats (nodes silent for `ttl` are gone).
    pub async fn watch(registry: Arc<dyn Registry>, ttl: Duration) -> Result<Placement, cluster::registry::RegistryError> {
        let mut events = membership::watch(registry, ttl).await?;
        let placement = Placement::default();
        let view = placement.clone();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    MemberEvent::Joined(hb) | MemberEvent::Updated(hb) => view.update(&hb),
                    MemberEvent::Left(node) | MemberEvent::Died(node) => view.forget(&node),
                }
            }
        });
        Ok(placement)
    }

    /// What a heartbeat says of a node.
    pub fn update(&self, hb: &NodeHeartbeat) {
        let Ok(id) = NodeId::new(hb.node_id.clone()) else { return };
        if !is_media(hb) {
            return;
        }
        let candidate = Candidate {
            // A node declining new calls (at a limit) is asked last, as a full one.
            free_pairs: hb.load.as_ref().filter(|l| !l.declining).map_or(0, |l| l.free_rtp_ports / 2),
            zone: hb.zone.clone(),
            draining: hb.draining,
        };
        self.nodes.lock().unwrap_or_else(|e| e.into_inner()).insert(id, candidate);
    }

    pub fn forget(&self, node: &str) {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner()).retain(|id, _| id.as_str() != node);
    }

    /// The nodes to ask, in order, for a call needing `pairs` port pairs (in `zone` only,
    /// when given); `random` draws the two candidates among those with room. Empty: the
    /// view knows no node (in that zone) taking calls.
    pub fn choose(&self, pairs: u32, zone: Option<&str>, random: impl FnMut(usize) -> usize) -> Vec<NodeId> {
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<(&NodeId, u32)> = nodes
            .iter()
            .filter(|(_, c)| !c.draining && zone.is_none_or(|z| c.zone == z))
            .map(|(id, c)| (id, c.free_pairs))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_str().cmp(b.0.as_str())));
        let mut order: Vec<NodeId> = all.iter().map(|(id, _)| (*id).clone()).collect();
        let fit: Vec<_> = all.iter().take_while(|(_, free)| *free >= pairs).collect();
        if fit.len() >= 2 {
            let mut random = random;
            let (i, j) = (random(fit.len()), random(fit.len()));
            let first = if fit[i].1 >= fit[j].1 { i } else { j };
            let chosen = order.remove(first);
            order.insert(0, chosen);
        }
        order
    }

    /// `node` gave `pairs` port pairs away (until its next heartbeat says how many are left).
    pub fn allocated(&self, node: &NodeId, pairs: u32) {
        if let Some(c) = self.nodes.lock().unwrap_or_else(|e| e.into_inner()).get_mut(node) {
            c.free_pairs = c.free_pairs.saturating_sub(pairs);
        }
    }

    /// `node` took back `pairs` port pairs (a call ended).
    pub fn released(&self, node: &NodeId, pairs: u32) {
        if let Some(c) = self.nodes.lock().unwrap_or_else(|e| e.into_inner()).get_mut(node) {
            c.free_pairs = c.free_pairs.saturating_add(pairs);
        }
    }

    /// `node` could not allocate: asked no more until its next heartbeat.
    pub fn refused(&self, node: &NodeId) {
        if let Some(c) = self.nodes.lock().unwrap_or_else(|e| e.into_inner()).get_mut(node) {
            c.free_pairs = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use cluster::contracts::NodeLoad;

    use super::*;

    fn hb(node: &str, role: Role, free_pairs: u32, zone: &str, draining: bool) -> NodeHeartbeat {
        NodeHeartbeat {
            node_id: node.into(),
            role: role as i32,
            load: Some(NodeLoad { free_rtp_ports: free_pairs * 2, ..Default::default() }),
            zone: zone.into(),
            draining,
            ..Default::default()
        }
    }

    fn ids(nodes: Vec<NodeId>) -> Vec<String> {
        nodes.into_iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_freer_of_two_drawn_goes_first_and_the_rest_follow_freest_first() {
        let p = Placement::default();
        p.update(&hb("a", Role::Media, 10, "x", false));
        p.update(&hb("b", Role::Media, 40, "y", false));
        p.update(&hb("c", Role::Media, 25, "y", false));
        p.update(&hb("edge-1", Role::Edge, 0, "", false));
        p.update(&hb("d", Role::Media, 90, "y", true));
        // The fit nodes freest first are b, c, a: drawing c and a, c is freer.
        let mut draws = [1, 2].into_iter();
        assert_eq!(ids(p.choose(2, None, |_| draws.next().unwrap())), ["c", "b", "a"]);
        assert_eq!(ids(p.choose(2, Some("x"), |_| 0)), ["a"], "pinned to a zone");
        assert!(p.choose(2, Some("z"), |_| 0).is_empty(), "no node in that zone");
        assert_eq!(ids(p.choose(11, None, |_| 0)), ["b", "c", "a"], "a is asked last: it has no room, as far as we know");
    }

    #[test]
    fn allocations_count_against_a_node_until_its_next_heartbeat() {
        let p = Placement::default();
        p.update(&hb("a", Role::Media, 3, "", false));
        p.update(&hb("b", Role::Media, 2, "", false));
        let (a, b) = (NodeId::new("a").unwrap(), NodeId::new("b").unwrap());
        assert_eq!(ids(p.choose(2, None, |_| 0)), ["a", "b"]);
        p.allocated(&a, 2);
        assert_eq!(ids(p.choose(2, None, |_| 0)), ["b", "a"], "one pair left on a");
        p.released(&a, 2);
        assert_eq!(ids(p.choose(2, None, |_| 0)), ["a", "b"]);
        p.refused(&a);
        assert_eq!(ids(p.choose(1, None, |_| 0)), ["b", "a"]);
        p.update(&hb("a", Role::Media, 3, "", false));
        assert_eq!(ids(p.choose(1, None, |_| 0)), ["a", "b"]);
        let mut declining = hb("a", Role::Media, 3, "", false);
        declining.load.as_mut().unwrap().declining = true;
        p.update(&declining);
        assert_eq!(ids(p.choose(1, None, |_| 0)), ["b", "a"], "a node at a limit is asked last");
        p.forget("a");
        p.refused(&b);
        assert_eq!(ids(p.choose(1, None, |_| 0)), ["b"]);
    }
}
