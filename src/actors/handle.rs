//! The handle the rest of the service uses to reach sessions. It hides the actors: callers
//! say which session and what to do, and get the session's answer or a [`SessionError`].
//!
//! Sessions are sharded over several registries, each on its own thread (an actix arbiter)
//! together with the session actors it starts. A session always maps to the same shard, so
//! "exactly one actor per session" and arrival order hold per shard exactly as they did for a
//! single registry, while sessions on different shards never wait for each other's thread.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::messages::{
    Deliver, LiveSessionCount, Passivate, PeekSession, SessionError, SessionKey, WakeAt,
};
use super::registry::{Registry, RegistryDeps};
#[cfg(any(test, feature = "test-hooks"))]
use super::session::commands::PanicForTest;
use super::session::commands::{Command, Queued};
use super::writer::Writer;
use crate::config::SessionSettings;
use crate::domain::session::Session;
use crate::store::sessions::SessionKeys;
use crate::store::DbPool;

/// Cheap to clone: every clone reaches the same shards.
#[derive(Clone)]
pub struct SessionHandle {
    shards: Arc<Shards>,
}

struct Shards {
    registries: Vec<Addr<Registry>>,
    /// The threads the registries and their session actors run on; stopped with the handle.
    arbiters: Vec<Arbiter>,
    /// Generations are numbered across shards, so a number names one actor of the service.
    generations: Arc<AtomicU64>,
    /// For the existence check of sessions that have no live actor.
    pool: DbPool,
    /// How long [`SessionHandle::ask`] waits for an answer (see there).
    deadline: Duration,
    /// How long a sequenced request may wait for a gap, besides.
    reorder_gap: Duration,
}

impl Drop for Shards {
    fn drop(&mut self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

impl SessionHandle {
    /// Starts `shards` registries (at least one), each on a new thread; `deadline` bounds
    /// every [`Self::ask`]. Must run inside an actix system.
    pub fn start(
        pool: DbPool,
        writer: Writer,
        settings: SessionSettings,
        session_keys: Arc<SessionKeys>,
        shards: usize,
        deadline: Duration,
        cluster: Option<Arc<crate::cluster::Member>>,
    ) -> SessionHandle {
        let generations = Arc::new(AtomicU64::new(1));
        let reorder_total = Arc::new(super::session::ReorderTotals::default());
        let shard_count = shards.max(1);
        let mut registries = Vec::with_capacity(shard_count);
        let mut arbiters = Vec::with_capacity(shard_count);
        let db = pool.clone();
        for _ in 0..shard_count {
            let arbiter = Arbiter::new();
            let deps = RegistryDeps {
                pool: pool.clone(),
                writer: writer.clone(),
                settings: settings.clone(),
                generations: generations.clone(),
                max_live: settings.max_live_sessions.div_ceil(shard_count).max(1),
                reorder_total: reorder_total.clone(),
                session_keys: session_keys.clone(),
                cluster: cluster.clone(),
            };
            registries.push(Registry::start(&arbiter.handle(), deps));
            arbiters.push(arbiter);
        }
        SessionHandle {
            shards: Arc::new(Shards {
                registries,
                arbiters,
                generations,
                pool: db,
                deadline,
                reorder_gap: settings.reorder_gap,
            }),
        }
    }

    /// The registry that owns `key`'s session.
    fn registry(&self, key: &SessionKey) -> &Addr<Registry> {
        let registries = &self.shards.registries;
        &registries[shard_of(key, registries.len())]
    }

    /// Has the session of `key` perform `command` and returns its answer. A commit is waited
    /// for at most the deadline the handle was started with (the database timeout; plus the
    /// reorder gap for events that may wait for one): when the database stalls, callers get
    /// `StorageUnavailable` then rather than waiting for it. The operation itself is not
    /// withdrawn; it may still commit later, which a retry (idempotent) then finds. A long
    /// wait ([`Command::WAITS_ITS_OWN_TIME`]) bounds itself; dropping this future (the caller
    /// went away) releases the session's waiter.
    pub(crate) async fn ask<C: Command>(
        &self,
        key: SessionKey,
        command: C,
    ) -> Result<C::Answer, SessionError> {
        let mut deadline = self.shards.deadline;
        if command.events().iter().any(|e| e.sequence.is_some()) {
            deadline += self.shards.reorder_gap;
        }
        let (queued, answer) = Queued::ask(command);
        let answered = async move {
            self.deliver(key, queued, C::MAY_CREATE).await?;
            answer.await.unwrap_or_else(|_| Err(gone("it stopped")))
        };
        if C::WAITS_ITS_OWN_TIME {
            return answered.await;
        }
        match actix_rt::time::timeout(deadline, answered).await {
            Ok(answer) => answer,
            Err(_) => Err(SessionError::StorageUnavailable(format!(
                "no commit within {} ms",
                deadline.as_millis()
            ))),
        }
    }

    /// Makes the actor of `key` panic (see [`PanicForTest`]); answers once it has.
    #[cfg(any(test, feature = "test-hooks"))]
    #[doc(hidden)]
    pub async fn panic_session_for_test(&self, key: SessionKey) -> Result<(), SessionError> {
        self.ask(key, PanicForTest).await
    }

    /// Puts `queued` into the mailbox of `key`'s session actor. An actor is started if there
    /// is none, unless the operation needs an existing session (`may_create` false) and the
    /// session does not exist.
    async fn deliver(
        &self,
        key: SessionKey,
        queued: Queued,
        may_create: bool,
    ) -> Result<(), SessionError> {
        let registry = self.registry(&key);
        let mut queued = queued;
        if !may_create {
            let probe = Deliver {
                key: key.clone(),
                queued,
                only_if_live: true,
            };
            match registry.send(probe).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(returned)) => queued = returned,
                Err(e) => return Err(gone(e)),
            }
            if !self.exists(&key).await? {
                return Err(SessionError::SessionNotFound(key.session_id.to_string()));
            }
        }
        // Fire and forget: a registry that has stopped drops the operation, and with it the
        // reply channel, which the caller sees.
        registry.do_send(Deliver {
            key,
            queued,
            only_if_live: false,
        });
        Ok(())
    }

    /// Whether the session is stored. A session created after this check is simply later
    /// than the request that asked.
    async fn exists(&self, key: &SessionKey) -> Result<bool, SessionError> {
        let pool = self.shards.pool.clone();
        let (scope, id) = (key.scope.clone(), key.session_id.as_str().to_owned());
        let found = actix_web::web::block(move || {
            crate::store::with_connection(&pool, |conn| {
                Ok(crate::store::sessions::exists(conn, &scope, &id)?)
            })
        })
        .await
        .map_err(|e| SessionError::StorageUnavailable(e.to_string()))?;
        found.map_err(|e| SessionError::StorageUnavailable(e.to_string()))
    }

    /// The committed session from its live actor, sparing the database a read: `None` when no
    /// actor is live (the caller reads the database), `Some(None)` when it does not exist.
    pub async fn peek(&self, key: SessionKey) -> Option<Option<Session>> {
        let registry = self.registry(&key);
        registry.send(PeekSession { key }).await.ok().flatten()
    }

    /// Starts the actor of `key` at `at` (milliseconds since the epoch; at once when past),
    /// so that the deadlines of its pending interactions fire.
    pub fn wake_at(&self, key: SessionKey, at: i64) {
        self.registry(&key).do_send(WakeAt { key, at });
    }

    /// Session actors live now, over all shards.
    pub async fn live_count(&self) -> usize {
        let counts = self
            .shards
            .registries
            .iter()
            .map(|registry| registry.send(LiveSessionCount));
        futures_util::future::join_all(counts)
            .await
            .into_iter()
            .map(|count| count.unwrap_or(0))
            .sum()
    }

    /// Session actors started since the service began (every start, including restarts after
    /// passivation or a crash).
    pub fn started_count(&self) -> u64 {
        self.shards.generations.load(Ordering::Relaxed) - 1
    }

    /// Hands a passivation request to the registry of its session (tests use it to passivate
    /// at a chosen moment; actors send theirs to their own registry).
    pub async fn passivate(&self, msg: Passivate) {
        let _ = self.registry(&msg.key).send(msg).await;
    }
}

fn gone(why: impl std::fmt::Display) -> SessionError {
    SessionError::StorageUnavailable(format!("the session actor stopped: {why}"))
}

/// The shard of a session: a hash of its key, the same for the life of the process.
fn shard_of(key: &SessionKey, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    // A fixed hasher (no random seed), so every handle maps a key to the same shard.
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
    (hash % shards as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::SessionId;

    fn key(scope: &str, id: &str) -> SessionKey {
        SessionKey {
            scope: scope.into(),
            session_id: SessionId::parse(id).unwrap(),
        }
    }

    #[test]
    fn a_session_always_maps_to_the_same_shard() {
        let k = key("a", "s-1");
        let first = shard_of(&k, 4);
        for _ in 0..100 {
            assert_eq!(shard_of(&k.clone(), 4), first);
        }
        assert_eq!(shard_of(&k, 1), 0);
        assert_eq!(shard_of(&k, 0), 0);
    }

    #[test]
    fn sessions_spread_over_every_shard() {
        let mut per_shard = [0usize; 4];
        for n in 0..4000 {
            per_shard[shard_of(&key("scope", &format!("s-{n}")), 4)] += 1;
        }
        for count in per_shard {
            assert!((700..1300).contains(&count), "{per_shard:?}");
        }
        // The same id in two scopes is two sessions, free to land apart.
        let spread: std::collections::HashSet<usize> = (0..64)
            .map(|n| shard_of(&key(&format!("scope-{n}"), "same"), 4))
            .collect();
        assert!(spread.len() > 1);
    }
}
