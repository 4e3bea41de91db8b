//! A session's interactions in memory and everything that waits on them: the
//! [`InteractionState`] (committed interactions, ids known to be absent, orphan event counts),
//! the deadline timers of pending interactions, `wait` callers and parked `commands/next`
//! callers. The actor calls in here after a commit or a load; the rules of what an interaction
//! may do live in `crate::domain::interaction` and the group planner.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use actix::prelude::*;

use super::load::INTERACTION_CACHE;
use super::ops::Op;
use super::plan::{self, NextWaiter, WaitReply};
use super::{SessionActor, ABSENT_CACHE};
use crate::domain::interaction::{Interaction, InteractionStatus};
use crate::domain::time::now_millis;

/// `commands/next` callers parked until a command can be handed out or their wait ends.
#[derive(Default)]
pub(super) struct NextWaiters {
    pub(super) queue: VecDeque<NextWaiter>,
    next_id: u64,
}

/// The session's interactions in memory and the callers waiting on them. Made on first use and
/// boxed: most sessions never have an interaction, and inline these maps cost every live actor
/// about 100 bytes. Its absence means what [`InteractionState::default`] says.
pub(super) struct InteractionState {
    /// Committed interactions in memory: every open one, plus recent finished ones.
    pub(super) known: BTreeMap<String, Interaction>,
    /// `known` holds every interaction of the session.
    pub(super) complete: bool,
    /// Ids looked up and known not to exist (only this actor creates interactions).
    pub(super) absent: BTreeSet<String>,
    pub(super) next_position: i64,
    /// Armed deadline timers of pending interactions.
    pub(super) deadlines: BTreeMap<String, SpawnHandle>,
    /// `wait` callers by interaction id.
    pub(super) waiters: BTreeMap<String, Vec<WaitReply>>,
    /// `commands/next` callers waiting for a command; `None` while there are none.
    pub(super) next_waiters: Option<Box<NextWaiters>>,
    /// How many stored events name each interaction id that does not exist yet, so that a
    /// create starts its interaction's event count without asking the database (hooks post
    /// events before their approvals, so nearly every create would). `None` while unknown:
    /// after loading a session whose stored events name interactions; creates then count in
    /// the database.
    pub(super) orphan_events: Option<HashMap<String, i64>>,
}

impl Default for InteractionState {
    /// A session without interactions: all of them (none) are known, the first gets position 1.
    fn default() -> Self {
        Self {
            known: BTreeMap::new(),
            complete: true,
            absent: BTreeSet::new(),
            next_position: 1,
            deadlines: BTreeMap::new(),
            waiters: BTreeMap::new(),
            next_waiters: None,
            orphan_events: Some(HashMap::new()),
        }
    }
}

impl InteractionState {
    /// Keeps the orphan counts in step with a committed group: the interactions it created
    /// took theirs, and its events naming ids that still do not exist add to them. Past
    /// [`ABSENT_CACHE`] ids the counts are dropped, and creates count in the database again.
    pub(super) fn adopt_orphan_events(&mut self, created: &[String], new: HashMap<String, i64>) {
        let Some(counts) = self.orphan_events.as_mut() else {
            return;
        };
        for id in created {
            counts.remove(id);
        }
        for (id, n) in new {
            *counts.entry(id).or_default() += n;
        }
        if counts.len() > ABSENT_CACHE {
            self.orphan_events = None;
        }
    }
}

impl SessionActor {
    /// The interaction state, made now if the session had none.
    pub(super) fn interactions_mut(&mut self) -> &mut InteractionState {
        self.interactions.get_or_insert_with(Default::default)
    }

    pub(super) fn wake_waiters(&mut self, id: &str) {
        let Some(inter) = self.interactions.as_deref_mut() else {
            return;
        };
        let Some(waiters) = inter.waiters.remove(id) else {
            return;
        };
        if let Some(i) = inter.known.get(id) {
            for reply in waiters {
                let _ = reply.send(Ok(i.clone()));
            }
        }
    }

    pub(super) fn park_next(
        &mut self,
        wait: Duration,
        reply: plan::NextReply,
        ctx: &mut Context<Self>,
    ) {
        if wait.is_zero() || reply.is_closed() {
            let _ = reply.send(Ok(None));
            return;
        }
        let parked = self
            .interactions_mut()
            .next_waiters
            .get_or_insert_with(Default::default);
        // Ids only tell apart the waiters parked at the same time, so a counter that starts
        // over with an empty queue is enough.
        parked.next_id += 1;
        let id = parked.next_id;
        parked.queue.push_back(NextWaiter { id, reply });
        // The actor owns the wait's end, so a command is never handed to a caller that has
        // already been told "nothing".
        ctx.run_later(wait, move |actor, _| {
            let Some(inter) = actor.interactions.as_deref_mut() else {
                return;
            };
            let Some(parked) = inter.next_waiters.as_mut() else {
                return;
            };
            if let Some(pos) = parked.queue.iter().position(|w| w.id == id) {
                if let Some(waiter) = parked.queue.remove(pos) {
                    let _ = waiter.reply.send(Ok(None));
                }
            }
            if parked.queue.is_empty() {
                inter.next_waiters = None;
            }
        });
    }

    /// Arms the deadline timer of a pending interaction, or disarms a finished one's.
    pub(super) fn sync_deadline(&mut self, id: &str, at_least: Duration, ctx: &mut Context<Self>) {
        let Some(inter) = self.interactions.as_deref_mut() else {
            return;
        };
        let deadline = inter
            .known
            .get(id)
            .filter(|i| i.status == InteractionStatus::Pending)
            .and_then(|i| i.deadline);
        match deadline {
            Some(deadline) if !inter.deadlines.contains_key(id) => {
                let remaining = Duration::from_millis((deadline - now_millis()).max(0) as u64);
                let id_owned = id.to_owned();
                let handle = ctx.run_later(remaining.max(at_least), move |actor, ctx| {
                    if let Some(inter) = actor.interactions.as_deref_mut() {
                        inter.deadlines.remove(&id_owned);
                    }
                    actor.enqueue(Op::Timeout { id: id_owned }, ctx);
                });
                inter.deadlines.insert(id.to_owned(), handle);
            }
            None => {
                if let Some(handle) = inter.deadlines.remove(id) {
                    ctx.cancel_future(handle);
                }
            }
            Some(_) => {}
        }
    }

    /// [`Self::sync_deadline`] for every interaction in memory (after loading them).
    pub(super) fn sync_deadlines(&mut self, ctx: &mut Context<Self>) {
        let Some(inter) = self.interactions.as_deref() else {
            return;
        };
        let ids: Vec<String> = inter.known.keys().cloned().collect();
        for id in ids {
            self.sync_deadline(&id, Duration::ZERO, ctx);
        }
    }

    /// Keeps memory bounded: finished interactions beyond the cache are dropped (they are
    /// looked up again when needed). It waits for a quarter of the cache in excess and then
    /// drops down to the cache, so a busy session sorts its finished ones once in a while
    /// rather than after every commit.
    pub(super) fn evict_finished_interactions(&mut self) {
        let Some(inter) = self.interactions.as_deref_mut() else {
            return;
        };
        if inter.known.len() <= INTERACTION_CACHE + INTERACTION_CACHE / 4 {
            return;
        }
        let mut finished: Vec<(i64, String)> = inter
            .known
            .values()
            .filter(|i| !i.status.is_open())
            .map(|i| (i.position, i.id.as_str().to_owned()))
            .collect();
        finished.sort();
        let excess = inter.known.len() - INTERACTION_CACHE;
        for (_, id) in finished.into_iter().take(excess) {
            inter.known.remove(&id);
            inter.complete = false;
        }
    }

    /// Drops waiters whose callers went away (closed connections), so they cannot pile up.
    pub(super) fn prune_waiters(&mut self) {
        let Some(inter) = self.interactions.as_deref_mut() else {
            return;
        };
        inter.waiters.retain(|_, replies| {
            replies.retain(|r| !r.is_closed());
            !replies.is_empty()
        });
        if let Some(parked) = inter.next_waiters.as_mut() {
            parked.queue.retain(|w| !w.reply.is_closed());
            if parked.queue.is_empty() {
                inter.next_waiters = None;
            }
        }
    }
}
