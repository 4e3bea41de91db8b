//! Cluster mode (PostgreSQL): several nodes serve one database, and each session has one
//! owner at a time. Sessions hash into a fixed number of partitions ([`partition`]); a lease
//! row per partition names its owner and an epoch, on the database's clock, and the live
//! nodes spread the partitions among themselves ([`balance`]). SQLite runs as one node.

/// Session keys a node reserves at a time (see `store::sessions::SessionKeys`).
pub const SESSION_KEY_BLOCK: i64 = 100_000;

pub mod balance;
pub mod keeper;
pub mod listener;
pub mod partition;

use std::sync::Arc;

use crate::actors::messages::SessionKey;
use crate::store::LeaseClaim;

/// This node as a member of the cluster: who it is, what it holds (and where the others'
/// partitions are served), and how long a lease lasts.
pub struct Member {
    pub node_id: Arc<str>,
    pub ownership: Arc<keeper::Ownership>,
    /// Renewed less recently than this, the node's leases may have expired: not ready.
    pub lease_ttl: std::time::Duration,
}

impl Member {
    /// The lease under which this node may load and write `key`'s session, when it holds
    /// the session's partition.
    pub fn claim(&self, key: &SessionKey) -> Option<LeaseClaim> {
        let partitions = self.ownership.partitions();
        if partitions == 0 {
            return None;
        }
        let partition = partition::partition_of(&key.scope, key.session_id.as_str(), partitions);
        let epoch = self.ownership.epoch_of(partition)?;
        Some(LeaseClaim {
            node_id: self.node_id.clone(),
            partition,
            epoch,
        })
    }
}
