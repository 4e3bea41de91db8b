//! The registry: the only map from (scope, session id) to a session actor. It handles one
//! message at a time, so "get or start" is atomic: racing first requests for a session find
//! or start the same actor, never two. It forwards each message into the actor's mailbox as it
//! handles it, so a session sees its messages in arrival order.
//!
//! Passivation: an idle actor asks to be passivated, saying how many forwarded messages it has
//! received; if that is all of them, the registry stops routing to it and sends it
//! [`Shutdown`], which then finds it still idle. If a message for that
//! session comes while the old actor is still finishing, the new actor is started with a
//! "predecessor gone" signal that the registry releases when the old one reports stopped, and
//! loads only after it, so it never reads state older than a commit. The signal exists only
//! for such successors: a channel per actor cost every idle actor about 80 bytes.
//!
//! Live actors are capped ([`RegistryDeps::max_live`]): past the cap, the least recently used
//! are asked to leave ([`Evict`]), and those that are idle passivate as above. An actor that
//! holds work (a deadline, a waiter, a queue) stays until it is idle.
//!
//! A registry is one shard of [`super::SessionHandle`]; it runs on its own thread with the
//! actors it starts.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::messages::{
    sweep_interval, Deliver, Enqueue, Evict, GetSnapshot, LiveSessionCount, Passivate, PeekSession,
    SessionKey, SessionStopped, Shutdown, Sweep, Wake, WakeAt,
};
use super::session::commands::Queued;
use super::session::{RegistryLink, SessionActor, SessionDeps};
use super::writer::Writer;
use crate::actors::error::SessionError;
use crate::config::SessionSettings;
use crate::store::sessions::SessionKeys;
use crate::store::DbPool;

struct Live {
    addr: Addr<SessionActor>,
    generation: u64,
    /// Messages forwarded to it; see [`Passivate`].
    forwarded: u64,
    /// Its place in [`Registry::recency`].
    last_use: u64,
}

/// An actor told to stop (or found stopped) that has not yet reported [`SessionStopped`].
struct Draining {
    generation: u64,
    /// Dropped when it reports stopped: that releases the successors waiting to load.
    release: Vec<oneshot::Sender<()>>,
}

/// What a registry is started with.
pub struct RegistryDeps {
    pub pool: DbPool,
    pub writer: Writer,
    pub settings: SessionSettings,
    /// The next generation number, shared by every shard.
    pub generations: Arc<AtomicU64>,
    /// Live actors this registry keeps before it asks the least recently used to leave.
    pub max_live: usize,
    /// What all sessions of every shard hold back for reordering.
    pub reorder_total: Arc<super::session::ReorderTotals>,
    /// The keys of new sessions, shared by every shard.
    pub session_keys: Arc<SessionKeys>,
    /// In cluster mode: this node, whose leases decide which sessions it may start.
    pub cluster: Option<Arc<crate::cluster::Member>>,
}

pub struct Registry {
    /// What every session actor shares (one allocation, not a copy per actor).
    deps: Arc<SessionDeps>,
    /// In cluster mode: whose leases decide which sessions this node may start.
    cluster: Option<Arc<crate::cluster::Member>>,
    /// Keyed by the same allocation the actor holds as its key: one copy of the key strings
    /// per live session instead of two.
    live: HashMap<Arc<SessionKey>, Live>,
    draining: HashMap<Arc<SessionKey>, Draining>,
    generations: Arc<AtomicU64>,
    max_live: usize,
    /// Live sessions by last use, oldest first: a counter value per forwarded message.
    recency: BTreeMap<u64, Arc<SessionKey>>,
    uses: u64,
}

impl Registry {
    /// Starts a registry on `arbiter`; the session actors it starts run there too.
    pub fn start(arbiter: &ArbiterHandle, deps: RegistryDeps) -> Addr<Registry> {
        let RegistryDeps {
            pool,
            writer,
            settings,
            generations,
            max_live,
            reorder_total,
            session_keys,
            cluster,
        } = deps;
        Registry::start_in_arbiter(arbiter, move |ctx| {
            ctx.set_mailbox_capacity(0);
            ctx.run_interval(sweep_interval(settings.idle_timeout), |registry, _| {
                for live in registry.live.values() {
                    live.addr.do_send(Sweep);
                }
            });
            Registry {
                cluster,
                deps: Arc::new(SessionDeps {
                    registry: RegistryLink {
                        passivate: ctx.address().downgrade().recipient(),
                        stopped: ctx.address().downgrade().recipient(),
                    },
                    writer,
                    pool,
                    settings,
                    reorder_total,
                    session_keys,
                }),
                live: HashMap::new(),
                draining: HashMap::new(),
                generations,
                max_live,
                recency: BTreeMap::new(),
                uses: 0,
            }
        })
    }

    /// Marks `key`'s live actor as just used and counts a message forwarded to it.
    fn touch(&mut self, key: &SessionKey) -> Option<&mut Live> {
        self.uses += 1;
        let live = self.live.get_mut(key)?;
        if let Some(key) = self.recency.remove(&live.last_use) {
            self.recency.insert(self.uses, key);
        }
        live.last_use = self.uses;
        Some(live)
    }

    /// Over the cap: asks the least recently used actors to leave. Each is moved to the newest
    /// end, so one that stays because it holds work is not asked again at once.
    fn ask_oldest_to_leave(&mut self) {
        let over = self.live.len().saturating_sub(self.max_live);
        for _ in 0..over.min(8) {
            let Some((_, key)) = self.recency.pop_first() else {
                return;
            };
            let Some(live) = self.live.get_mut(&key) else {
                continue;
            };
            live.addr.do_send(Evict);
            self.uses += 1;
            live.last_use = self.uses;
            self.recency.insert(self.uses, key);
        }
    }

    /// Forgets `key`'s live entry and its place in the recency order.
    fn remove_live(&mut self, key: &SessionKey) -> Option<(Arc<SessionKey>, Live)> {
        let (key, live) = self.live.remove_entry(key)?;
        self.recency.remove(&live.last_use);
        Some((key, live))
    }

    /// The live actor of `key`, or `None` after forgetting one that stopped.
    fn live_actor(&mut self, key: &SessionKey) -> Option<&mut Live> {
        let connected = self.live.get(key).map(|live| live.addr.connected())?;
        if !connected {
            // Stopped (crashed) before its SessionStopped reached us: its successor must still
            // wait for that report.
            if let Some((key, dead)) = self.remove_live(key) {
                self.start_draining(key, dead.generation);
            }
            return None;
        }
        self.touch(key)
    }

    /// The live actor of `key`, started now if there is none; `None` in cluster mode when
    /// this node does not hold the lease of the session's partition.
    fn actor_for(&mut self, key: &SessionKey) -> Option<&mut Live> {
        if self.live_actor(key).is_some() {
            return self.live.get_mut(key);
        }
        let lease = match &self.cluster {
            Some(member) => Some(member.claim(key)?),
            None => None,
        };
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let key = Arc::new(key.clone());
        let predecessor = self.draining.get_mut(&key).map(|draining| {
            let (release, gone) = oneshot::channel();
            draining.release.push(release);
            gone
        });
        let addr = SessionActor::start(
            key.clone(),
            generation,
            self.deps.clone(),
            predecessor,
            lease,
        );
        self.uses += 1;
        self.recency.insert(self.uses, key.clone());
        // Vacant: a connected actor returned above, a stopped one was removed.
        self.live.insert(
            key.clone(),
            Live {
                addr,
                generation,
                forwarded: 0,
                last_use: self.uses,
            },
        );
        if self.live.len() > self.max_live {
            self.ask_oldest_to_leave();
        }
        self.live.get_mut(&key)
    }

    fn start_draining(&mut self, key: Arc<SessionKey>, generation: u64) {
        // An earlier generation may still be draining (in theory: its successor loads only
        // after it reports stopped, and cannot stop before loading). Its waiting successors
        // then wait for this one too, which stops later: later is safe, earlier is not.
        let release = self
            .draining
            .remove(&key)
            .map(|earlier| earlier.release)
            .unwrap_or_default();
        self.draining.insert(
            key,
            Draining {
                generation,
                release,
            },
        );
    }
}

impl Actor for Registry {
    type Context = Context<Self>;
}

/// Queue an operation at its session's actor, starting the actor if needed (unless only a
/// live one will do: then the operation comes back).
impl Handler<Deliver> for Registry {
    type Result = Result<(), Queued>;

    fn handle(&mut self, msg: Deliver, _: &mut Context<Self>) -> Self::Result {
        let live = if msg.only_if_live {
            match self.live_actor(&msg.key) {
                Some(live) => live,
                None => return Err(msg.queued),
            }
        } else {
            match self.actor_for(&msg.key) {
                Some(live) => live,
                None => {
                    msg.queued.fail(SessionError::NotOwner);
                    return Ok(());
                }
            }
        };
        live.forwarded += 1;
        // Into the mailbox now, in arrival order; the answer goes straight to the caller.
        live.addr.do_send(Enqueue(msg.queued));
        Ok(())
    }
}

/// An idle actor asks to stop: route no more to it, then tell it to shut down.
impl Handler<Passivate> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Passivate, ctx: &mut Context<Self>) {
        let current = self.live.get(&msg.key).is_some_and(|l| {
            l.generation == msg.generation && msg.received.is_none_or(|r| r == l.forwarded)
        });
        if !current {
            return;
        }
        if let Some((key, live)) = self.remove_live(&msg.key) {
            live.addr.do_send(Shutdown);
            if let Some(at) = msg.wake_at {
                Self::wake_later(&key, at, ctx);
            }
            self.start_draining(key, live.generation);
        }
    }
}

/// Schedule a session's wake-up.
impl Handler<WakeAt> for Registry {
    type Result = ();

    fn handle(&mut self, msg: WakeAt, ctx: &mut Context<Self>) {
        Self::wake_later(&msg.key, msg.at, ctx);
    }
}

impl Registry {
    /// Starts `key`'s actor (if it is not live) at `at`, milliseconds since the epoch.
    fn wake_later(key: &SessionKey, at: i64, ctx: &mut Context<Self>) {
        let wait = u64::try_from(at - crate::domain::time::now_millis()).unwrap_or(0);
        let key = key.clone();
        ctx.run_later(
            std::time::Duration::from_millis(wait),
            move |registry, _| {
                // Not held here any more: the partition's owner wakes it.
                if let Some(live) = registry.actor_for(&key) {
                    live.forwarded += 1;
                    live.addr.do_send(Wake);
                }
            },
        );
    }
}

/// An actor stopped (passivated or crashed): forget it.
impl Handler<SessionStopped> for Registry {
    type Result = ();

    fn handle(&mut self, msg: SessionStopped, _: &mut Context<Self>) {
        if self
            .live
            .get(&msg.key)
            .is_some_and(|l| l.generation == msg.generation)
        {
            self.remove_live(&msg.key);
        }
        if self
            .draining
            .get(&msg.key)
            .is_some_and(|d| d.generation == msg.generation)
        {
            self.draining.remove(&msg.key);
        }
    }
}

/// A live actor's committed session, without starting an actor for a read.
impl Handler<PeekSession> for Registry {
    type Result = ResponseFuture<Option<Option<crate::domain::session::Session>>>;

    fn handle(&mut self, msg: PeekSession, _: &mut Context<Self>) -> Self::Result {
        match self.live.get(&msg.key).filter(|l| l.addr.connected()) {
            Some(live) => {
                let request = live.addr.send(GetSnapshot);
                Box::pin(async move { request.await.ok().flatten() })
            }
            None => Box::pin(async { None }),
        }
    }
}

/// Count the live session actors (those still draining are not live).
impl Handler<LiveSessionCount> for Registry {
    type Result = usize;

    fn handle(&mut self, _: LiveSessionCount, _: &mut Context<Self>) -> usize {
        self.live.len()
    }
}
