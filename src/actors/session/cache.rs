//! The session actor's bounded memory of dedup keys.

use std::collections::{HashMap, VecDeque};

use sha2::{Digest, Sha256};

/// The newest dedup keys of a session, as 128-bit fingerprints (a key can be 130 bytes; a
/// fingerprint is 16), oldest evicted first. `complete` says whether it holds every key the
/// session has stored; when it does not, a miss must be checked in the database.
pub(super) struct DedupCache {
    seqs: HashMap<u128, i64>,
    order: VecDeque<u128>,
    capacity: usize,
    pub(super) complete: bool,
}

impl DedupCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            seqs: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            complete: true,
        }
    }

    fn fingerprint(key: &str) -> u128 {
        let digest = Sha256::digest(key.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        u128::from_le_bytes(bytes)
    }

    pub(super) fn get(&self, key: &str) -> Option<i64> {
        self.seqs.get(&Self::fingerprint(key)).copied()
    }

    pub(super) fn insert(&mut self, key: &str, seq: i64) {
        let fp = Self::fingerprint(key);
        if self.seqs.insert(fp, seq).is_none() {
            self.order.push_back(fp);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seqs.remove(&old);
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
}
