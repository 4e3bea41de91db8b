//! The session actor's bounded memory of dedup keys.

use std::collections::{HashMap, VecDeque};

use sha2::{Digest, Sha256};

/// A 128-bit fingerprint of a dedup key (a key can be 130 bytes). Bytes rather than `u128`:
/// 16-byte alignment would pad every entry to 32 bytes.
type Fingerprint = [u8; 16];

/// Above this many keys a hash index is kept; below it a scan is as fast, and the map would
/// cost every idle session actor about 150 bytes.
const INDEX_FROM: usize = 16;

/// The newest dedup keys of a session, as fingerprints with their seqs, oldest evicted first.
/// `complete` says whether it holds every key the session has stored; when it does not, a miss
/// must be checked in the database.
pub(super) struct DedupCache {
    /// Oldest first.
    entries: VecDeque<(Fingerprint, i64)>,
    /// Built once more than [`INDEX_FROM`] keys are held. Boxed: inline, the empty map cost
    /// every actor 40 bytes more than a pointer.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<Fingerprint, i64>>>,
    /// u32: one of these lives in every session actor, and the setting never needs more.
    capacity: u32,
    pub(super) complete: bool,
}

impl DedupCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            index: None,
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX).max(1),
            complete: true,
        }
    }

    fn fingerprint(key: &str) -> Fingerprint {
        let digest = Sha256::digest(key.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        bytes
    }

    fn lookup(&self, fp: &Fingerprint) -> Option<i64> {
        match &self.index {
            Some(index) => index.get(fp).copied(),
            None => self.entries.iter().find(|(f, _)| f == fp).map(|(_, s)| *s),
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<i64> {
        self.lookup(&Self::fingerprint(key))
    }

    pub(super) fn insert(&mut self, key: &str, seq: i64) {
        let fp = Self::fingerprint(key);
        if self.lookup(&fp).is_some() {
            // A key maps to the one event that stored it; nothing to add.
            return;
        }
        self.entries.push_back((fp, seq));
        match &mut self.index {
            Some(index) => {
                index.insert(fp, seq);
            }
            None if self.entries.len() > INDEX_FROM => {
                self.index = Some(Box::new(self.entries.iter().copied().collect()));
            }
            None => {}
        }
        while self.entries.len() > self.capacity as usize {
            if let Some((old, _)) = self.entries.pop_front() {
                if let Some(index) = &mut self.index {
                    index.remove(&old);
                }
            }
            self.complete = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_and_becomes_incomplete() {
        let mut cache = DedupCache::new(2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        assert!(cache.complete);
        cache.insert("c", 3);
        assert!(!cache.complete);
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get("b"), Some(2));
        assert_eq!(cache.get("c"), Some(3));
    }

    #[test]
    fn finds_every_held_key_before_and_after_the_index_exists() {
        let capacity = INDEX_FROM * 3;
        let mut cache = DedupCache::new(capacity);
        for n in 0..capacity * 2 {
            cache.insert(&format!("e:{n}"), n as i64);
            cache.insert(&format!("e:{n}"), -1); // a repeat keeps the first seq
            assert_eq!(cache.index.is_some(), n + 1 > INDEX_FROM, "after {n}");
            let oldest_held = (n + 1).saturating_sub(capacity);
            for m in 0..=n {
                let expected = (m >= oldest_held).then_some(m as i64);
                assert_eq!(cache.get(&format!("e:{m}")), expected, "key {m} after {n}");
            }
            assert_eq!(cache.complete, n < capacity);
        }
    }
}
