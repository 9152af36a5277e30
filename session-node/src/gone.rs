//! Nodes of one kind (media nodes, edges) this session node saw die: kept while they are
//! gone, for calls that look later (a call resumed after its relay's node died), and told
//! at once to the calls running (each subscribes).

use std::collections::HashSet;
use std::sync::Mutex;

use tokio::sync::broadcast;

pub(crate) struct Gone {
    nodes: Mutex<HashSet<String>>,
    told: broadcast::Sender<String>,
}

impl Gone {
    pub fn new() -> Gone {
        Gone { nodes: Mutex::default(), told: broadcast::channel(64).0 }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashSet<String>) -> R) -> R {
        f(&mut self.nodes.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// `node` died: kept, and the calls told. How many are gone now.
    pub fn died(&self, node: &str) -> usize {
        let n = self.with(|nodes| {
            nodes.insert(node.to_owned());
            nodes.len()
        });
        let _ = self.told.send(node.to_owned());
        n
    }

    /// `node` is back (its heartbeats again). How many are gone now.
    pub fn back(&self, node: &str) -> usize {
        self.with(|nodes| {
            nodes.remove(node);
            nodes.len()
        })
    }

    pub fn contains(&self, node: &str) -> bool {
        self.with(|nodes| nodes.contains(node))
    }

    /// The nodes that die from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.told.subscribe()
    }
}
