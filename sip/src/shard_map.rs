//! A hash map split into 64 independently growing shards, for tables that hold hundreds of
//! thousands of entries on a latency-sensitive loop (transactions live 64·T1 = 32 s, so at
//! thousands of calls per second their tables are large). A single map doubles all at once,
//! rehashing every key while the loop waits; here each growth touches one shard (1/64 of
//! the entries). Keys come from the network: shards are picked by a seeded quality hash and
//! each shard uses seeded foldhash.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

const SHARDS: usize = 64;

type Shard<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A map whose growth pauses are 1/64 of a plain map's.
pub struct ShardedMap<K, V> {
    picker: foldhash::quality::RandomState,
    shards: Box<[Shard<K, V>]>,
    len: usize,
}

impl<K: Hash + Eq, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    pub fn new() -> Self {
        let shards = (0..SHARDS).map(|_| Shard::with_hasher(foldhash::fast::RandomState::default())).collect();
        ShardedMap { picker: foldhash::quality::RandomState::default(), shards, len: 0 }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        (self.picker.hash_one(key) >> 58) as usize
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard(key)].get(key)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.shard(key);
        self.shards[i].get_mut(key)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Inserts, returning the value `key` had.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let i = self.shard(&key);
        let old = self.shards[i].insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.shard(key);
        let old = self.shards[i].remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every value, shard by shard (no particular order).
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(|s| s.values())
    }
}

#[cfg(test)]
mod tests {
    use super::ShardedMap;

    #[test]
    fn behaves_like_a_map_and_spreads_over_shards() {
        let mut m: ShardedMap<String, u32> = ShardedMap::new();
        for i in 0..10_000u32 {
            assert_eq!(m.insert(format!("z9hG4bK{i:x}"), i), None);
        }
        assert_eq!(m.insert("z9hG4bK0".into(), 7), Some(0));
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.get("z9hG4bKff"), Some(&255));
        *m.get_mut("z9hG4bKff").unwrap() += 1;
        assert_eq!(m.remove("z9hG4bKff"), Some(256));
        assert_eq!(m.remove("z9hG4bKff"), None);
        assert!(!m.contains_key("z9hG4bKff") && m.contains_key("z9hG4bK1"));
        assert_eq!((m.len(), m.values().count()), (9_999, 9_999));
        let busiest = m.shards.iter().map(|s| s.len()).max().unwrap();
        assert!(busiest < 10_000 / 64 * 2, "keys spread over the shards (busiest holds {busiest})");
    }
}
