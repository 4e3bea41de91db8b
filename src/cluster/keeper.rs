//! The lease keeper: a thread that keeps this node's place in the cluster. Every third of the
//! lease TTL it says the node is alive, renews the leases it holds, and moves towards its
//! share of the partitions ([`super::balance`]): it takes free ones and hands back what it has
//! beyond its share. What it holds is published as [`Ownership`] for the rest of the node.
//! When the node stops cleanly it hands every partition back at once and leaves, so the
//! others take them over without waiting for the leases to expire.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;

use super::balance;
use crate::config::ClusterSettings;
use crate::store::sessions::SessionKeys;
use crate::store::{leases, DbConnection, DbPool};

/// The partitions this node holds, with their epochs, as of the keeper's last renewal.
#[derive(Default)]
pub struct Ownership {
    held: RwLock<Held>,
}

#[derive(Default)]
struct Held {
    partitions: HashMap<u32, i64>,
    /// Where the other nodes' partitions are served, as of the last round.
    elsewhere: HashMap<u32, Arc<str>>,
    /// How many partitions there are.
    count: u32,
    /// When the keeper last renewed (its leases hold until a TTL after).
    renewed_at: Option<Instant>,
}

impl Ownership {
    /// The epoch of `partition` when this node holds it.
    pub fn epoch_of(&self, partition: u32) -> Option<i64> {
        self.read().partitions.get(&partition).copied()
    }

    /// Where `partition` is served when another node holds it (as of the keeper's last round).
    pub fn owner_url(&self, partition: u32) -> Option<Arc<str>> {
        self.read().elsewhere.get(&partition).cloned()
    }

    /// This node holds every partition.
    pub fn holds_all(&self) -> bool {
        let held = self.read();
        held.count > 0 && held.partitions.len() == held.count as usize
    }

    /// How many partitions this node holds.
    pub fn held(&self) -> usize {
        self.read().partitions.len()
    }

    /// The keeper reached the database within `within`: what it holds is current.
    pub fn is_current(&self, within: Duration) -> bool {
        self.read()
            .renewed_at
            .is_some_and(|at| at.elapsed() < within)
    }

    /// How many partitions there are (0 until the keeper has read it).
    pub fn partitions(&self) -> u32 {
        self.read().count
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Held> {
        self.held.read().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(
        &self,
        partitions: HashMap<u32, i64>,
        elsewhere: HashMap<u32, Arc<str>>,
        count: u32,
        renewed_at: Instant,
    ) {
        let mut held = self.held.write().unwrap_or_else(|e| e.into_inner());
        *held = Held {
            partitions,
            elsewhere,
            count,
            renewed_at: Some(renewed_at),
        };
    }
}

/// Told of the partitions a round took over from other nodes (and how many there are).
pub type OnTaken = Arc<dyn Fn(&[u32], u32) + Send + Sync>;

/// The running keeper. Dropping it stops the thread without handing anything back (the
/// leases then expire); [`LeaseKeeper::leave`] hands everything back.
pub struct LeaseKeeper {
    ownership: Arc<Ownership>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pool: DbPool,
    node_id: String,
}

impl LeaseKeeper {
    /// Joins the cluster as `settings.node_id`, reached at `advertise_url`: a first round
    /// here, so the node holds its partitions before it serves, then a thread for the rest.
    /// What it holds is published in `ownership`. Blocks on the database.
    pub fn start(
        pool: DbPool,
        settings: ClusterSettings,
        advertise_url: String,
        ownership: Arc<Ownership>,
        session_keys: Arc<SessionKeys>,
        on_taken: OnTaken,
    ) -> Result<Self, String> {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        let DbConnection::Pg(pg) = &mut **conn else {
            return Err("cluster mode needs PostgreSQL".into());
        };
        let ttl_ms = settings.lease_ttl.as_millis() as i64;
        let resumed = leases::resume(pg, &settings.node_id, ttl_ms).map_err(|e| e.to_string())?;
        if resumed > 0 {
            log::info!(
                "node {} resumed the {resumed} partition leases it held before it restarted",
                settings.node_id
            );
        }
        let parts = Parts {
            settings: &settings,
            advertise_url: &advertise_url,
            ownership: &ownership,
            session_keys: &session_keys,
        };
        // Its sessions' deadlines are armed by start-up, which follows.
        round(pg, &parts, Instant::now()).map_err(|e| e.to_string())?;
        drop(conn);
        let stop = Arc::new(AtomicBool::new(false));
        let node_id = settings.node_id.clone();
        let thread = {
            let (pool, ownership, stop) = (pool.clone(), ownership.clone(), stop.clone());
            std::thread::Builder::new()
                .name("lease-keeper".into())
                .spawn(move || {
                    let parts = Parts {
                        settings: &settings,
                        advertise_url: &advertise_url,
                        ownership: &ownership,
                        session_keys: &session_keys,
                    };
                    keep(&pool, &parts, &on_taken, &stop)
                })
                .expect("spawn the lease keeper")
        };
        Ok(Self {
            ownership,
            stop,
            thread: Mutex::new(Some(thread)),
            pool,
            node_id,
        })
    }

    /// Stops the keeper and hands every partition back; the node is no longer one of the
    /// cluster's. (The caller has stopped serving.)
    pub fn leave(&self) {
        self.stop_thread();
        let left =
            self.pool
                .get()
                .map_err(|e| e.to_string())
                .and_then(|mut conn| match &mut **conn {
                    DbConnection::Pg(pg) => {
                        leases::leave(pg, &self.node_id).map_err(|e| e.to_string())
                    }
                    DbConnection::Sqlite(_) => Ok(()),
                });
        match left {
            Ok(()) => log::info!("node {} left the cluster, its partitions handed back", self.node_id),
            Err(e) => log::warn!(
                "node {} could not hand its partitions back ({e}); they are free when their leases expire",
                self.node_id
            ),
        }
        self.ownership.publish(
            HashMap::new(),
            HashMap::new(),
            self.ownership.partitions(),
            Instant::now(),
        );
        crate::metrics::PARTITIONS_OWNED.set(0);
    }

    fn stop_thread(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            thread.thread().unpark();
        }
    }
}

/// What a round works with.
struct Parts<'a> {
    settings: &'a ClusterSettings,
    advertise_url: &'a str,
    ownership: &'a Ownership,
    session_keys: &'a SessionKeys,
}

/// The keeper's loop: a round every third of the TTL until told to stop.
fn keep(pool: &DbPool, parts: &Parts<'_>, on_taken: &OnTaken, stop: &AtomicBool) {
    let every = parts.settings.lease_ttl / 3;
    let mut started = Instant::now();
    loop {
        // Parked, so that a stop wakes it at once. (A round was made before the thread.)
        let until = started + every;
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::park_timeout(until.saturating_duration_since(Instant::now()));
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        started = Instant::now();
        let round = pool
            .get()
            .map_err(|e| e.to_string())
            .and_then(|mut conn| match &mut **conn {
                DbConnection::Pg(pg) => round(pg, parts, started).map_err(|e| e.to_string()),
                DbConnection::Sqlite(_) => Err("cluster mode needs PostgreSQL".into()),
            });
        match round {
            Ok(taken) if !taken.is_empty() => on_taken(&taken, parts.ownership.partitions()),
            Ok(_) => {}
            Err(e) => crate::log_limited!(
                log::Level::Warn,
                "node {}: lease round failed ({e}); its leases hold until they expire",
                parts.settings.node_id
            ),
        }
    }
}

/// One round: alive, renewed, balanced; then published. A block of session keys is reserved
/// when the node is running low. Returns the partitions it took.
fn round(
    conn: &mut PgConnection,
    parts: &Parts<'_>,
    started: Instant,
) -> diesel::QueryResult<Vec<u32>> {
    let Parts {
        settings,
        advertise_url,
        ownership,
        session_keys,
    } = parts;
    if session_keys.wants_block(super::SESSION_KEY_BLOCK) {
        let (start, end) = leases::reserve_session_keys(conn, super::SESSION_KEY_BLOCK)?;
        session_keys.add_block(start, end);
    }
    let me = settings.node_id.as_str();
    let ttl_ms = settings.lease_ttl.as_millis() as i64;
    let count = leases::partitions(conn)?;
    leases::heartbeat(conn, me, advertise_url)?;
    let mut held: HashMap<u32, i64> = leases::renew(conn, me, ttl_ms)?.into_iter().collect();
    crate::metrics::LEASES_RENEWED.inc_by(held.len() as u64);
    let before = ownership.read().partitions.clone();
    let lost = before
        .iter()
        .filter(|(p, epoch)| held.get(p) != Some(epoch))
        .count();
    if lost > 0 {
        crate::metrics::LEASES_LOST.inc_by(lost as u64);
        log::warn!("node {me}: {lost} partition leases expired before they were renewed");
    }
    let live: Vec<String> = leases::live_nodes(conn, ttl_ms)?
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    let stored = leases::leases(conn)?;
    let elsewhere: HashMap<u32, Arc<str>> = stored
        .iter()
        .filter(|l| l.owner.as_deref().is_some_and(|o| o != me))
        .filter_map(|l| Some((l.partition as u32, Arc::from(l.owner_url.as_deref()?))))
        .collect();
    let rows: Vec<balance::Lease> = stored
        .into_iter()
        .map(|l| balance::Lease {
            partition: l.partition as u32,
            owner: l.owner,
        })
        .collect();
    let moves = balance::moves(me, &live, &rows, count);
    let mut taken = Vec::new();
    for partition in moves.take {
        if let Some(epoch) = leases::take(conn, me, partition, ttl_ms)? {
            held.insert(partition, epoch);
            taken.push(partition);
            crate::metrics::LEASES_TAKEN.inc();
        }
    }
    if !moves.release.is_empty() {
        leases::release(conn, me, &moves.release)?;
        for partition in &moves.release {
            held.remove(partition);
        }
    }
    crate::metrics::PARTITIONS_OWNED.set(held.len() as i64);
    // The leases renewed in this round hold a TTL after it began.
    ownership.publish(held, elsewhere, count, started);
    Ok(taken)
}
