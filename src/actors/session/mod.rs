//! The session actor: the single writer of one (scope, session). Every operation on the
//! session (one of the [`commands`], or a deadline) is queued here in arrival order and applied
//! in groups: the actor takes what has queued ([`group`]), looks up in the database what the
//! group needs and memory lacks, has its [`state`] plan the group, sends the write to the
//! writer, and answers every caller of the group after the commit. At most one write is in
//! flight and the state advances only when the writer confirms, so ordering and "exactly once"
//! need no locks.
//!
//! Crash-only: if a commit or look-up fails, the actor cannot be sure of its state, so it
//! fails its callers with 503 and stops; the registry starts a fresh one that reloads.

mod cache;
pub(crate) mod commands;
mod group;
mod interactions;
mod load;
mod overlay;
mod reorder;
mod reply;
mod state;
mod timers;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::web;
use tokio::sync::oneshot;

use super::error::SessionError;
use super::key::SessionKey;
use super::messages::{
    sweep_interval, Enqueue, Evict, Passivate, SessionStopped, Shutdown, Sweep, Wake, WriteError,
};
use super::writer::Writer;
use crate::config::SessionSettings;
use crate::domain::time::now_millis;
use crate::store::sessions::SessionKeys;
use crate::store::DbPool;
use commands::Queued;
use group::GroupBuilder;
use load::LoadedState;
use overlay::{Lookups, Plan};
pub use reorder::ReorderTotals;
use reorder::{Held, ReorderBuffer};
use reply::Reply;
use state::SessionState;

/// The most events one group may carry; more wait for the next group.
const MAX_GROUP_EVENTS: usize = 5000;
/// A group in flight longer than this is reported as stuck by the periodic sweep.
const STUCK_AFTER: Duration = Duration::from_secs(30);
/// How soon a deadline is retried when its group could not be committed (queue full).
const DEADLINE_RETRY: Duration = Duration::from_millis(100);

/// How a session actor reaches its registry: by the two messages it sends it, not by the
/// registry's type. Weak: the registry holds the deps these are in, and a strong address of
/// itself there would keep it alive for ever; upgraded for the rare message (a strong
/// address per actor cost each about 100 bytes).
pub struct RegistryLink {
    pub passivate: actix::WeakRecipient<Passivate>,
    pub stopped: actix::WeakRecipient<SessionStopped>,
}

/// What every session actor needs from the rest of the system, shared by all of them (one
/// copy per actor cost about 120 bytes each).
pub struct SessionDeps {
    pub registry: RegistryLink,
    pub writer: Writer,
    pub pool: DbPool,
    pub settings: SessionSettings,
    /// What all sessions hold back for reordering, for the global caps.
    pub reorder_total: Arc<ReorderTotals>,
    /// Where a session created here gets its key.
    pub session_keys: Arc<SessionKeys>,
}

pub struct SessionActor {
    /// The committed state, and the key of the session.
    state: SessionState,
    generation: u64,
    deps: Arc<SessionDeps>,
    /// Resolves when the previous actor of this session has stopped. Loading waits for it, so
    /// the state read from the database holds everything that actor committed.
    predecessor: Option<oneshot::Receiver<()>>,
    /// Sequenced requests ahead of a gap.
    reorder: ReorderBuffer,
    /// A gap timer is armed (it is never cancelled: firing with nothing expired is harmless).
    gap_timer_armed: bool,
    /// The longest-waiting gap has timed out: give it up in the next group.
    gap_expired: bool,
    queue: VecDeque<Queued>,
    /// A group is being looked up or committed.
    busy: bool,
    /// The registry routes no more messages here: stop once the queue is done.
    shutting_down: bool,
    passivation_requested: bool,
    /// Messages the registry forwarded that this actor has received; see [`Passivate`].
    received: u64,
    /// Registry sweeps since the last activity: time kept in sweeps rather than `Instant`s,
    /// which cost every actor 32 bytes (see [`Self::sweeps_covering`]).
    idle_sweeps: u32,
    /// When the group in flight started (the sweep reports one that takes too long).
    busy_sweeps: u32,
    /// Reads of the session that arrived while a group was in flight: answered when it ends.
    snapshot_readers: Vec<oneshot::Sender<Option<crate::domain::session::Session>>>,
}

impl SessionActor {
    /// Starts the actor for `key`, which loads once `predecessor` (if any) resolves; in
    /// cluster mode under `lease`, which its writes are committed under.
    pub fn start(
        key: Arc<SessionKey>,
        generation: u64,
        deps: Arc<SessionDeps>,
        predecessor: Option<oneshot::Receiver<()>>,
        lease: Option<crate::store::LeaseClaim>,
    ) -> Addr<SessionActor> {
        let mut state = SessionState::new(key, deps.settings.dedup_cache);
        state.lease = lease;
        SessionActor::create(move |ctx| {
            // Unbounded mailbox: a bounded one parks the sender and retries later, which could
            // reorder messages. Load is bounded at the writer queue instead.
            ctx.set_mailbox_capacity(0);
            SessionActor {
                state,
                generation,
                deps,
                predecessor,
                reorder: ReorderBuffer::default(),
                gap_timer_armed: false,
                gap_expired: false,
                queue: VecDeque::new(),
                busy: false,
                shutting_down: false,
                passivation_requested: false,
                received: 0,
                idle_sweeps: 0,
                busy_sweeps: 0,
                snapshot_readers: Vec::new(),
            }
        })
    }

    fn enqueue(&mut self, op: Queued, ctx: &mut Context<Self>) {
        self.idle_sweeps = 0;
        self.queue.push_back(op);
        self.pump(ctx);
    }

    /// Starts the next group when nothing is in flight.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        let has_work = !self.queue.is_empty()
            || self.gap_expired
            || self.reorder.has_ready(self.state.next_sequence);
        if !has_work {
            if self.shutting_down && self.is_idle() {
                ctx.stop();
            }
            return;
        }
        self.idle_sweeps = 0;
        let (ops, behind) = self.take_group();
        self.arm_gap_timer(ctx);
        if ops.is_empty() {
            // Everything that came is waiting for a gap to fill.
            return;
        }
        self.busy = true;
        let needs = self.state.needs(&ops, behind);
        if needs.is_empty() {
            self.plan_and_write(ops, Lookups::default(), ctx);
            return;
        }
        let pool = self.deps.pool.clone();
        let key = self.state.key.clone();
        web::block(move || load::look_up(&pool, &key, needs))
            .into_actor(self)
            .map(move |result, actor, ctx| match result {
                Ok(Ok(found)) => {
                    let lookups = actor.state.absorb(found);
                    actor.plan_and_write(ops, lookups, ctx);
                }
                Ok(Err(e)) => actor.crash(ops, &e.to_string(), ctx),
                Err(e) => actor.crash(ops, &e.to_string(), ctx),
            })
            .spawn(ctx);
    }

    /// Takes the next group: queued operations in arrival order, except that requests with
    /// client sequences ahead of a gap go to the reorder buffer, and buffered ones join as soon
    /// as nothing is missing before them. Returns the group and the sequences it holds that are
    /// behind the expected one (late or repeated: the database tells which).
    fn take_group(&mut self) -> (Vec<Queued>, Vec<i64>) {
        let mut group = GroupBuilder::new(self.state.next_sequence);
        if std::mem::take(&mut self.gap_expired) {
            let gap = self.deps.settings.reorder_gap;
            if let Some(lowest) = self.reorder.lowest_expired(gap) {
                self.skip_to(&mut group, lowest, "its gap timed out");
            }
        }
        self.drain_ready(&mut group);
        while let Some(op) = self.queue.front() {
            if !group.ops.is_empty() && group.events + op.weight() > MAX_GROUP_EVENTS {
                break;
            }
            let Some(op) = self.queue.pop_front() else {
                break;
            };
            match op.lowest_sequence() {
                Some(min) if min > group.next => {
                    let held = op.held();
                    let total = &self.deps.reorder_total;
                    let settings = &self.deps.settings;
                    let over_cap = self.reorder.would_exceed(
                        held,
                        total,
                        Held {
                            events: settings.reorder_max_per_session,
                            bytes: settings.reorder_max_bytes_per_session,
                        },
                        Held {
                            events: settings.reorder_max_total,
                            bytes: settings.reorder_max_bytes_total,
                        },
                    );
                    if over_cap {
                        // Never drop, never wait unboundedly: give up every gap now.
                        while let Some(lowest) = self.reorder.lowest() {
                            self.skip_to(&mut group, lowest.min(min), "the reorder buffer is full");
                            self.drain_ready(&mut group);
                        }
                        if min > group.next {
                            self.skip_to(&mut group, min, "the reorder buffer is full");
                        }
                        group.add(op);
                    } else {
                        total.add(held);
                        self.reorder.push(op, min, held);
                    }
                }
                _ => group.add(op),
            }
            self.drain_ready(&mut group);
        }
        if self.queue.is_empty() {
            // Most sessions sit idle between bursts; a drained queue kept its buffer (about
            // 400 bytes per idle actor).
            self.queue = VecDeque::new();
        }
        (group.ops, group.behind)
    }

    fn drain_ready(&mut self, group: &mut GroupBuilder) {
        while let Some(buffered) = self.reorder.take_ready(group.next) {
            self.deps.reorder_total.remove(buffered.held);
            group.add(buffered.op);
        }
    }

    /// Gives up the gap below `sequence`: it becomes the expected one; anything below it that
    /// arrives later is applied flagged `out_of_order`.
    fn skip_to(&self, group: &mut GroupBuilder, sequence: i64, why: &str) {
        if sequence <= group.next {
            return;
        }
        log::info!(
            "session {}/{}: sequences {}..{} missing, giving up the gap because {why}",
            self.state.key.scope,
            self.state.key.session_id,
            group.next,
            sequence - 1
        );
        crate::metrics::REORDER_GAPS_SKIPPED.inc();
        group.skip_to(sequence);
    }

    fn arm_gap_timer(&mut self, ctx: &mut Context<Self>) {
        if self.gap_timer_armed {
            return;
        }
        let Some(wait) = self.reorder.next_expiry(self.deps.settings.reorder_gap) else {
            return;
        };
        self.gap_timer_armed = true;
        ctx.run_later(wait, |actor, ctx| {
            actor.gap_timer_armed = false;
            actor.gap_expired = true;
            actor.pump(ctx);
            actor.arm_gap_timer(ctx);
        });
    }

    /// Plans a group against the committed state and sends its write to the writer.
    fn plan_and_write(&mut self, ops: Vec<Queued>, lookups: Lookups, ctx: &mut Context<Self>) {
        let mut plan = self
            .state
            .plan(ops, &lookups, &self.deps.session_keys, now_millis());
        let Some(write) = plan.write.take() else {
            // Nothing to store (duplicates, reads, refusals): everything earlier has committed
            // already, so the answers are durable as they stand.
            self.committed(plan, ctx);
            return;
        };
        let metrics = (write.events.len() as u64, write.notifications.len() as u64);
        let ticket = match self.deps.writer.submit(write) {
            Ok(ticket) => ticket,
            Err(WriteError::Overloaded) => return self.refused(plan, ctx),
            Err(WriteError::Storage(e)) => return self.crash_plan(plan, &e, ctx),
            Err(WriteError::Fenced) => return self.fenced(plan, ctx),
        };
        ticket
            .into_actor(self)
            .map(move |result, actor, ctx| match result {
                Ok(Ok(())) => {
                    crate::metrics::EVENTS_STORED.inc_by(metrics.0);
                    crate::metrics::NOTIFICATIONS_WRITTEN.inc_by(metrics.1);
                    actor.committed(plan, ctx);
                }
                Ok(Err(WriteError::Overloaded)) => actor.refused(plan, ctx),
                Ok(Err(WriteError::Fenced)) => actor.fenced(plan, ctx),
                Ok(Err(WriteError::Storage(e))) => actor.crash_plan(plan, &e, ctx),
                Err(_) => actor.crash_plan(plan, "the committer dropped the write", ctx),
            })
            .spawn(ctx);
    }

    /// The group's write committed (or it had none): adopt its state, answer, wake waiters.
    fn committed(&mut self, plan: Plan, ctx: &mut Context<Self>) {
        let after = self.state.apply(plan);
        after.replies.into_iter().for_each(Reply::succeed);
        for id in &after.completed {
            self.state.wake_waiters(id);
        }
        for request in after.unserved_next {
            self.park_next(request, ctx);
        }
        for id in &after.deadlines_to_sync {
            self.sync_deadline(id, Duration::ZERO, ctx);
        }
        self.state.evict_finished_interactions();
        self.group_ended(ctx);
    }

    /// The writer's queue was full: nothing was written, the state stands. Callers get 503;
    /// deadlines that fired in the group are retried shortly.
    fn refused(&mut self, plan: Plan, ctx: &mut Context<Self>) {
        for id in plan.effects.fail(&SessionError::Overloaded) {
            self.sync_deadline(&id, DEADLINE_RETRY, ctx);
        }
        self.group_ended(ctx);
    }

    /// The group in flight is over and the state is what the database holds: answer the
    /// reads that waited for it, and start the next group.
    fn group_ended(&mut self, ctx: &mut Context<Self>) {
        self.busy = false;
        for reader in self.snapshot_readers.drain(..) {
            let _ = reader.send(self.state.session.clone());
        }
        self.pump(ctx);
    }

    fn crash(&mut self, ops: Vec<Queued>, why: &str, ctx: &mut Context<Self>) {
        let error = SessionError::StorageUnavailable(why.to_owned());
        for op in ops {
            op.fail(error.clone());
        }
        self.crash_all(why, ctx);
    }

    fn crash_plan(&mut self, plan: Plan, why: &str, ctx: &mut Context<Self>) {
        // Its deadlines are the successor's to load again.
        let _ = plan
            .effects
            .fail(&SessionError::StorageUnavailable(why.to_owned()));
        self.crash_all(why, ctx);
    }

    /// Fails everything this actor holds with 503 and stops; a successor reloads the truth.
    fn crash_all(&mut self, why: &str, ctx: &mut Context<Self>) {
        crate::log_limited!(
            log::Level::Error,
            "session {}/{}: storage failed, restarting the actor: {why}",
            self.state.key.scope,
            self.state.key.session_id
        );
        self.stop_failing_all(SessionError::StorageUnavailable(why.to_owned()), ctx);
    }

    /// The group's write was planned under a partition lease this node no longer holds at
    /// that epoch: nothing was written, and what this actor holds in memory may be stale. Its
    /// callers get 503 (they retry at the partition's owner) and it stops; a request that
    /// comes back to this node starts a new actor only under a lease it holds.
    fn fenced(&mut self, plan: Plan, ctx: &mut Context<Self>) {
        log::info!(
            "session {}/{}: its partition's lease was lost; stopping its actor",
            self.state.key.scope,
            self.state.key.session_id
        );
        crate::metrics::FENCED_COMMITS.inc();
        let _ = plan.effects.fail(&SessionError::NotOwner);
        self.stop_failing_all(SessionError::NotOwner, ctx);
    }

    /// Fails everything this actor holds with `error` and stops.
    fn stop_failing_all(&mut self, error: SessionError, ctx: &mut Context<Self>) {
        for op in self.queue.drain(..) {
            op.fail(error.clone());
        }
        if let Some(inter) = self.state.interactions.as_deref_mut() {
            for (_, waiters) in std::mem::take(&mut inter.waiters) {
                for reply in waiters {
                    let _ = reply.send(Err(error.clone()));
                }
            }
            for waiter in inter
                .next_waiters
                .take()
                .map(|p| p.queue)
                .unwrap_or_default()
            {
                let _ = waiter.reply.send(Err(error.clone()));
            }
        }
        for buffered in self.reorder.drain() {
            self.deps.reorder_total.remove(buffered.held);
            buffered.op.fail(error.clone());
        }
        // Unanswered, they read the database instead.
        self.snapshot_readers.clear();
        ctx.stop();
    }

    /// Nothing queued, in flight or waited on: safe to passivate. Armed deadlines do not
    /// count: the registry wakes a passivated session at its earliest one.
    fn is_idle(&self) -> bool {
        !self.busy
            && self.queue.is_empty()
            && self.state.has_no_waiters()
            && self.reorder.is_empty()
    }

    /// [`sweeps_covering`] at this server's sweep interval.
    fn sweeps_covering(&self, span: Duration) -> u32 {
        let interval = sweep_interval(self.deps.settings.idle_timeout);
        sweeps_covering(span, interval)
    }

    /// The periodic sweep: a group in flight for too long is logged and counted once.
    fn report_if_stuck(&mut self) {
        if !self.busy {
            self.busy_sweeps = 0;
            return;
        }
        self.busy_sweeps = self.busy_sweeps.saturating_add(1);
        // Exactly once: at the sweep that reaches the bound.
        if self.busy_sweeps == self.sweeps_covering(STUCK_AFTER) {
            crate::metrics::STUCK_SESSIONS.inc();
            log::warn!(
                "session {}/{}: a write has been in flight for more than {:?}; {} requests queued",
                self.state.key.scope,
                self.state.key.session_id,
                STUCK_AFTER,
                self.queue.len()
            );
        }
    }

    fn load(&mut self, ctx: &mut Context<Self>) {
        let predecessor = self.predecessor.take();
        let pool = self.deps.pool.clone();
        let key = self.state.key.clone();
        let cache = self.deps.settings.dedup_cache;
        async move {
            if let Some(gone) = predecessor {
                let _ = gone.await;
            }
            web::block(move || load::load_state(&pool, &key, cache)).await
        }
        .into_actor(self)
        .map(|result, actor, ctx| match result {
            Ok(Ok(loaded)) => actor.install(loaded, ctx),
            Ok(Err(e)) => actor.crash(Vec::new(), &e.to_string(), ctx),
            Err(e) => actor.crash(Vec::new(), &e.to_string(), ctx),
        })
        // `wait` holds the mailbox until the state is loaded: nothing is handled, dropped or
        // reordered before the actor knows its session.
        .wait(ctx);
    }

    fn install(&mut self, loaded: LoadedState, ctx: &mut Context<Self>) {
        self.state.install(loaded);
        // Deadlines survive restarts: one that passed while nobody watched fires now.
        self.sync_deadlines(ctx);
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.load(ctx);
    }
}

/// "Stopped" is reported when the actor is dropped: a successor waits for this report, so it
/// must come on every end (stop, crash, a panic in a handler). actix 0.13 also runs `stopped`
/// when a handler panics (dropping its context polls it once more), but the drop is the
/// guarantee that does not rest on that; and nothing of the actor runs after it.
impl Drop for SessionActor {
    fn drop(&mut self) {
        let Some(registry) = self.deps.registry.stopped.upgrade() else {
            return; // shutting down
        };
        registry.do_send(SessionStopped {
            key: self.state.key.clone(),
            generation: self.generation,
        });
    }
}

/// How many consecutive sweeps, `interval` apart, guarantee that at least `span` has passed
/// since something that happened before the first of them: the first may come at once.
fn sweeps_covering(span: Duration, interval: Duration) -> u32 {
    let whole = span.as_nanos().div_ceil(interval.as_nanos().max(1));
    u32::try_from(whole).unwrap_or(u32::MAX).saturating_add(1)
}

/// An operation for the queue, forwarded by the registry.
impl Handler<Enqueue> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) {
        self.note_forwarded();
        self.enqueue(msg.0, ctx);
    }
}

/// The committed session. Answered after loading (the mailbox waits for it), and the state
/// only advances after a commit, so this never shows more than the database holds. While a
/// group is in flight its commit may already be visible elsewhere (its notifications are
/// published as soon as it commits, before the answer reaches this actor), so the read waits
/// for the group and never shows less than what has been announced either.
impl Handler<super::messages::GetSnapshot> for SessionActor {
    type Result = ResponseFuture<Option<Option<crate::domain::session::Session>>>;

    fn handle(&mut self, _: super::messages::GetSnapshot, _: &mut Context<Self>) -> Self::Result {
        if !self.busy {
            let session = self.state.session.clone();
            return Box::pin(async move { Some(session) });
        }
        let (answer, answered) = oneshot::channel();
        self.snapshot_readers.push(answer);
        // Dropped unanswered when the actor crashes: the caller reads the database.
        Box::pin(async move { answered.await.ok() })
    }
}

/// Started for its deadlines; loading arms them.
impl Handler<Wake> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Wake, _: &mut Context<Self>) {
        self.note_forwarded();
        self.idle_sweeps = 0;
    }
}

/// The registry's periodic sweep (see [`Sweep`]).
impl Handler<Sweep> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Sweep, _: &mut Context<Self>) {
        self.state.prune_waiters();
        self.report_if_stuck();
        self.idle_sweeps = self.idle_sweeps.saturating_add(1);
        if self.idle_sweeps >= self.sweeps_covering(self.deps.settings.idle_timeout) {
            self.request_passivation_if_idle();
        }
    }
}

/// The registry is over its cap and this actor is among the least recently used.
impl Handler<Evict> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Evict, _: &mut Context<Self>) {
        self.request_passivation_if_idle();
    }
}

impl SessionActor {
    /// Asks the registry to passivate this actor, once, if it holds no work.
    fn request_passivation_if_idle(&mut self) {
        if !self.is_idle() || self.passivation_requested {
            return;
        }
        self.passivation_requested = true;
        let Some(registry) = self.deps.registry.passivate.upgrade() else {
            return; // shutting down
        };
        registry.do_send(Passivate {
            key: self.state.key.clone(),
            generation: self.generation,
            received: Some(self.received),
            wake_at: self.state.earliest_deadline(),
        });
    }
}

impl SessionActor {
    /// Counts a message from the registry (see [`Passivate`]); after one, a refused
    /// passivation request may be made again once idle.
    fn note_forwarded(&mut self) {
        self.received += 1;
        self.passivation_requested = false;
    }
}

/// Passivated by the registry: finish the queue, then stop.
impl Handler<Shutdown> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        // Not idle: the group that finishes the work stops the actor (see `pump`); work that
        // ends without a group (a `commands/next` wait running out) leaves an actor that no
        // address and no timer refers to, which actix stops. Arm no timer here: a periodic
        // one would keep it alive, and its successor waiting, forever.
        self.shutting_down = true;
        if self.is_idle() {
            ctx.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_counts_cover_the_span_even_when_the_first_sweep_comes_at_once() {
        let ms = Duration::from_millis;
        // Idle 100 ms, sweeps every 50 ms: the sweeps at 0+, 50+ and 100+ ms after activity.
        assert_eq!(sweeps_covering(ms(100), ms(50)), 3);
        // Not a whole number of intervals: round up, then the extra first sweep.
        assert_eq!(sweeps_covering(ms(120), ms(50)), 4);
        // The stuck report at the default 5 s interval: 30 s is 6 intervals, plus one.
        assert_eq!(sweeps_covering(Duration::from_secs(30), ms(5000)), 7);
        assert_eq!(sweeps_covering(Duration::ZERO, ms(50)), 1);
        assert_eq!(
            sweeps_covering(Duration::from_secs(u64::MAX), Duration::from_nanos(1)),
            u32::MAX
        );
        // A zero interval cannot divide by zero.
        assert_eq!(sweeps_covering(ms(1), Duration::ZERO), 1_000_001);
    }
}
