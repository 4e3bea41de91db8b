//! The session actor: the single writer of one (scope, session). Every operation on the
//! session (events, PUT, interaction create/decide/cancel/wait, `commands/next`, deadlines) is
//! queued here in arrival order and applied in groups: the actor takes what has queued, looks
//! up in the database what the group needs and memory lacks, plans the group against its
//! committed state ([`plan`]), sends the write to the writer, and answers every caller of the
//! group after the commit. At most one write is in flight and the state advances only when the
//! writer confirms, so ordering and "exactly once" need no locks.
//!
//! Crash-only: if a commit or look-up fails, the actor cannot be sure of its state, so it
//! fails its callers with 503 and stops; the registry starts a fresh one that reloads.

mod cache;
mod interactions;
mod load;
mod ops;
mod plan;
mod reorder;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::web;
use tokio::sync::oneshot;

use super::messages::{
    ActOnInteraction, ActionOutcome, AppendEvents, AppendOutcome, CreateInteraction, EnsureOutcome,
    EnsureSession, Evict, Forwarded, NextCommand, Passivate, SessionError, SessionKey,
    SessionStopped, Shutdown, Sweep, WaitForInteraction, Wake, WriteError,
};
use super::registry::Registry;
use super::writer::Writer;
use crate::config::SessionSettings;
use crate::domain::interaction::Interaction;
use crate::domain::time::now_millis;
use crate::store::DbPool;
use cache::DedupCache;
use interactions::{InteractionState, Standing};
use load::{Found, LoadedState, Needs};
use ops::{GroupBuilder, Op, Reply};
use plan::{Committed, Plan, Planner};
use reorder::ReorderBuffer;

/// The most events one group may carry; more wait for the next group.
const MAX_GROUP_EVENTS: usize = 5000;
/// Interaction ids known not to exist, remembered to spare look-ups.
const ABSENT_CACHE: usize = 1024;
/// A group in flight longer than this is reported as stuck by the periodic sweep.
const STUCK_AFTER: Duration = Duration::from_secs(30);
/// How soon a deadline is retried when its group could not be committed (queue full).
const DEADLINE_RETRY: Duration = Duration::from_millis(100);

/// What a look-up found that the plan of its group needs.
#[derive(Default)]
struct Lookups {
    /// Dedup keys of the group that the session has stored, with their seqs.
    stored_keys: HashMap<String, i64>,
    /// Stored events naming interactions about to be created.
    event_counts: HashMap<String, i64>,
    /// Stored client sequences behind the expected one, with their events' dedup keys.
    sequences: HashMap<i64, String>,
}

/// What every session actor needs from the rest of the system, shared by all of them (one
/// copy per actor cost about 120 bytes each).
pub struct SessionDeps {
    /// Weak: see [`Registry::start`]. Upgraded for the rare message to it (passivate,
    /// stopped); a strong address per actor cost each about 100 bytes.
    pub registry: actix::WeakAddr<Registry>,
    pub writer: Writer,
    pub pool: DbPool,
    pub settings: SessionSettings,
    /// Events held back for reordering across all sessions, for the global cap.
    pub reorder_total: Arc<AtomicUsize>,
}

/// What the planner sees of a session that has no [`InteractionState`].
static NO_INTERACTIONS: BTreeMap<String, Interaction> = BTreeMap::new();
static NO_STANDING: Standing = Standing::EMPTY;

pub struct SessionActor {
    /// Shared with the registry's map entry.
    key: Arc<SessionKey>,
    generation: u64,
    deps: Arc<SessionDeps>,
    /// Resolves when the previous actor of this session has stopped. Loading waits for it, so
    /// the state read from the database holds everything that actor committed.
    predecessor: Option<oneshot::Receiver<()>>,
    /// The committed session; `None` until it exists in the database.
    session: Option<crate::domain::session::Session>,
    dedup: DedupCache,
    /// `None` until the session has an interaction or a caller waiting for one.
    interactions: Option<Box<InteractionState>>,
    /// The client `sequence` expected next (committed).
    next_sequence: i64,
    /// Sequenced requests ahead of a gap.
    reorder: ReorderBuffer,
    /// A gap timer is armed (it is never cancelled: firing with nothing expired is harmless).
    gap_timer_armed: bool,
    /// The longest-waiting gap has timed out: give it up in the next group.
    gap_expired: bool,
    queue: VecDeque<Op>,
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
}

impl SessionActor {
    /// Starts the actor for `key`, which loads once `predecessor` (if any) resolves.
    pub fn start(
        key: Arc<SessionKey>,
        generation: u64,
        deps: Arc<SessionDeps>,
        predecessor: Option<oneshot::Receiver<()>>,
    ) -> Addr<SessionActor> {
        let dedup = DedupCache::new(deps.settings.dedup_cache);
        SessionActor::create(move |ctx| {
            // Unbounded mailbox: a bounded one parks the sender and retries later, which could
            // reorder messages. Load is bounded at the writer queue instead.
            ctx.set_mailbox_capacity(0);
            SessionActor {
                key,
                generation,
                deps,
                predecessor,
                session: None,
                dedup,
                interactions: None,
                next_sequence: 0,
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
            }
        })
    }

    fn enqueue(&mut self, op: Op, ctx: &mut Context<Self>) {
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
            || self.reorder.has_ready(self.next_sequence);
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
        let mut needs = self.needs(&ops);
        needs.sequences = behind;
        if needs.is_empty() {
            self.plan_and_write(ops, Lookups::default(), ctx);
            return;
        }
        let pool = self.deps.pool.clone();
        let key = self.key.clone();
        web::block(move || load::look_up(&pool, &key, needs))
            .into_actor(self)
            .map(move |result, actor, ctx| match result {
                Ok(Ok(found)) => {
                    let lookups = actor.absorb(found);
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
    fn take_group(&mut self) -> (Vec<Op>, Vec<i64>) {
        let mut group = GroupBuilder::new(self.next_sequence);
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
            match op.sequence_range() {
                Some(min) if min > group.next => {
                    let events = op.weight();
                    let total = &self.deps.reorder_total;
                    let settings = &self.deps.settings;
                    let over_cap = self.reorder.events() + events
                        > settings.reorder_max_per_session
                        || total.load(Ordering::Relaxed) + events > settings.reorder_max_total;
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
                        total.fetch_add(events, Ordering::Relaxed);
                        self.reorder.push(op, min, events);
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
            self.deps
                .reorder_total
                .fetch_sub(buffered.events, Ordering::Relaxed);
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
            self.key.scope,
            self.key.session_id,
            group.next,
            sequence - 1
        );
        crate::metrics::REORDER_GAPS_SKIPPED.inc();
        group.next = sequence;
        group.ops.push(Op::SkipTo(sequence));
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

    /// What the group needs from the database that memory cannot answer.
    fn needs(&self, ops: &[Op]) -> Needs {
        let mut needs = Needs::default();
        let mut dedup_keys = HashSet::new();
        let mut ids = HashSet::new();
        let mut creates = HashSet::new();
        for op in ops {
            match op {
                Op::Append { events, .. } => {
                    for e in events {
                        if !self.dedup.complete && self.dedup.get(&e.dedup_key).is_none() {
                            dedup_keys.insert(e.dedup_key.clone());
                        }
                        if let Some(iid) = &e.interaction_id {
                            ids.insert(iid.as_str().to_owned());
                        }
                    }
                }
                Op::Create { msg, .. } => {
                    ids.insert(msg.id.as_str().to_owned());
                    creates.insert(msg.id.as_str().to_owned());
                }
                Op::Act { id, .. } | Op::Wait { id, .. } => {
                    ids.insert(id.as_str().to_owned());
                }
                Op::Ensure { .. } | Op::Next { .. } | Op::Timeout { .. } | Op::SkipTo(_) => {}
            }
        }
        let inter = self.interactions.as_deref();
        let unknown = |id: &String| !inter.is_some_and(|i| i.known.contains_key(id));
        let complete = inter.is_none_or(|i| i.complete);
        let absent = |id: &String| inter.is_some_and(|i| i.absent.contains(id));
        needs.dedup_keys = dedup_keys.into_iter().collect();
        needs.interaction_ids = ids
            .into_iter()
            .filter(|id| unknown(id) && !complete && !absent(id))
            .collect();
        let has_events = self.session.as_ref().is_some_and(|s| s.event_count > 0);
        let orphans_counted = inter.is_none_or(|i| i.orphan_events.is_some());
        needs.count_events_for = creates
            .into_iter()
            .filter(|id| unknown(id) && has_events && !orphans_counted)
            .collect();
        needs
    }

    /// Takes the interactions a look-up found into memory (they are committed truth) and
    /// returns what the plan needs besides. Found dedup keys go to the plan, not into the
    /// bounded cache: inserting them there could evict a key the plan relies on.
    fn absorb(&mut self, found: Found) -> Lookups {
        if !found.interactions.is_empty() || !found.absent.is_empty() {
            let inter = self.interactions_mut();
            for i in found.interactions {
                inter.remember(i);
            }
            if inter.absent.len() + found.absent.len() > ABSENT_CACHE {
                inter.absent.clear();
            }
            inter.absent.extend(found.absent);
        }
        Lookups {
            stored_keys: found.dedup.into_iter().collect(),
            event_counts: found.event_counts,
            sequences: found.sequences,
        }
    }

    /// Plans a group against the committed state and sends its write to the writer.
    fn plan_and_write(&mut self, ops: Vec<Op>, lookups: Lookups, ctx: &mut Context<Self>) {
        // Out of the state while the planner reads it; back below if any are still waiting.
        let mut parked = self
            .interactions
            .as_deref_mut()
            .and_then(|i| i.next_waiters.take());
        let mut planner = Planner::new(
            Committed {
                key: &self.key,
                session: self.session.as_ref(),
                interactions: self
                    .interactions
                    .as_ref()
                    .map_or(&NO_INTERACTIONS, |i| &i.known),
                standing: self
                    .interactions
                    .as_ref()
                    .map_or(&NO_STANDING, |i| &i.standing),
                dedup: &self.dedup,
                next_position: self.interactions.as_ref().map_or(1, |i| i.next_position),
                stored_keys: &lookups.stored_keys,
                event_counts: self
                    .interactions
                    .as_deref()
                    .and_then(|i| i.orphan_events.as_ref())
                    .unwrap_or(&lookups.event_counts),
                next_sequence: self.next_sequence,
                stored_sequences: &lookups.sequences,
            },
            now_millis(),
        );
        for op in ops {
            planner.apply(op);
        }
        let mut none_parked = VecDeque::new();
        planner.serve_next(parked.as_mut().map_or(&mut none_parked, |p| &mut p.queue));
        let mut plan = planner.finish();
        if let Some(parked) = parked.filter(|p| !p.queue.is_empty()) {
            self.interactions_mut().next_waiters = Some(parked);
        }
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
                Ok(Err(WriteError::Storage(e))) => actor.crash_plan(plan, &e, ctx),
                Err(_) => actor.crash_plan(plan, "the committer dropped the write", ctx),
            })
            .spawn(ctx);
    }

    /// The group's write committed (or it had none): adopt its state, answer, wake waiters.
    fn committed(&mut self, plan: Plan, ctx: &mut Context<Self>) {
        crate::metrics::DUPLICATES_DROPPED.inc_by(plan.duplicates);
        for id in &plan.completed {
            if let Some(i) = plan.interactions.get(id) {
                crate::metrics::INTERACTIONS_COMPLETED
                    .with_label_values(&[i.completed_by.map_or("unknown", |c| c.as_str())])
                    .inc();
            }
        }
        self.session = plan.session;
        // In seq order, so the bounded cache keeps the newest keys.
        let mut new_keys = plan.new_keys;
        new_keys.sort_by_key(|(_, seq)| *seq);
        for (key, seq) in new_keys {
            self.dedup.insert(&key, seq);
        }
        let touches_interactions = !plan.interactions.is_empty()
            || !plan.waits.is_empty()
            || !plan.orphan_events.is_empty();
        // Only these can have gained or lost a deadline: the rest were synced when they
        // last changed (or when the actor loaded them).
        let mut deadlines_to_sync = plan.timeouts;
        if touches_interactions || self.interactions.is_some() {
            let inter = self.interactions_mut();
            inter.adopt_orphan_events(&plan.created, plan.orphan_events);
            for (id, interaction) in plan.interactions {
                inter.absent.remove(&id);
                deadlines_to_sync.push(id);
                inter.remember(interaction);
            }
            inter.next_position = plan.next_position;
            for (id, reply) in plan.waits {
                inter.waiters.entry(id).or_default().push(reply);
            }
        }
        self.next_sequence = plan.next_sequence;
        plan.replies.into_iter().for_each(Reply::succeed);
        for id in &plan.completed {
            self.wake_waiters(id);
        }
        for (wait, reply) in plan.unserved_next {
            self.park_next(wait, reply, ctx);
        }
        for id in &deadlines_to_sync {
            self.sync_deadline(id, Duration::ZERO, ctx);
        }
        self.evict_finished_interactions();
        self.busy = false;
        self.pump(ctx);
    }

    /// The writer's queue was full: nothing was written, the state stands. Callers get 503;
    /// deadlines that fired in the group are retried shortly.
    fn refused(&mut self, plan: Plan, ctx: &mut Context<Self>) {
        for reply in plan.replies {
            reply.fail(SessionError::Overloaded);
        }
        for (_, reply) in plan.waits {
            let _ = reply.send(Err(SessionError::Overloaded));
        }
        for (_, reply) in plan.unserved_next {
            let _ = reply.send(Err(SessionError::Overloaded));
        }
        for id in plan.timeouts {
            self.sync_deadline(&id, DEADLINE_RETRY, ctx);
        }
        self.busy = false;
        self.pump(ctx);
    }

    fn crash(&mut self, ops: Vec<Op>, why: &str, ctx: &mut Context<Self>) {
        let error = SessionError::StorageUnavailable(why.to_owned());
        for op in ops {
            op.fail(error.clone());
        }
        self.crash_plan_parts(Vec::new(), why, ctx);
    }

    fn crash_plan(&mut self, plan: Plan, why: &str, ctx: &mut Context<Self>) {
        let error = SessionError::StorageUnavailable(why.to_owned());
        for (_, reply) in plan.waits {
            let _ = reply.send(Err(error.clone()));
        }
        for (_, reply) in plan.unserved_next {
            let _ = reply.send(Err(error.clone()));
        }
        self.crash_plan_parts(plan.replies, why, ctx);
    }

    /// Fails everything this actor holds with 503 and stops; a successor reloads the truth.
    fn crash_plan_parts(&mut self, replies: Vec<Reply>, why: &str, ctx: &mut Context<Self>) {
        log::error!(
            "session {}/{}: storage failed, restarting the actor: {why}",
            self.key.scope,
            self.key.session_id
        );
        let error = SessionError::StorageUnavailable(why.to_owned());
        for reply in replies {
            reply.fail(error.clone());
        }
        for op in self.queue.drain(..) {
            op.fail(error.clone());
        }
        if let Some(inter) = self.interactions.as_deref_mut() {
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
            self.deps
                .reorder_total
                .fetch_sub(buffered.events, Ordering::Relaxed);
            buffered.op.fail(error.clone());
        }
        ctx.stop();
    }

    /// Nothing queued, in flight or waited on: safe to passivate. Armed deadlines do not
    /// count: the registry wakes a passivated session at its earliest one.
    fn is_idle(&self) -> bool {
        !self.busy
            && self.queue.is_empty()
            && self
                .interactions
                .as_deref()
                .is_none_or(|i| i.waiters.is_empty() && i.next_waiters.is_none())
            && self.reorder.is_empty()
    }

    /// The earliest deadline of the session's pending interactions.
    fn earliest_deadline(&self) -> Option<i64> {
        let inter = self.interactions.as_deref()?;
        inter
            .deadlines
            .keys()
            .filter_map(|id| inter.known.get(id))
            .filter_map(|i| i.deadline)
            .min()
    }

    /// [`sweeps_covering`] at this server's sweep interval.
    fn sweeps_covering(&self, span: Duration) -> u32 {
        let interval = super::registry::sweep_interval(self.deps.settings.idle_timeout);
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
                self.key.scope,
                self.key.session_id,
                STUCK_AFTER,
                self.queue.len()
            );
        }
    }

    fn load(&mut self, ctx: &mut Context<Self>) {
        let predecessor = self.predecessor.take();
        let pool = self.deps.pool.clone();
        let key = self.key.clone();
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
        self.session = loaded.session;
        for (key, seq) in loaded.recent_keys.iter().rev() {
            self.dedup.insert(key, *seq);
        }
        self.dedup.complete = loaded.keys_complete;
        self.next_sequence = loaded.next_sequence;
        if loaded.max_position > 0 || !loaded.interactions_complete {
            let inter = self.interactions_mut();
            inter.complete = loaded.interactions_complete;
            inter.next_position = loaded.max_position + 1;
            for i in loaded.interactions {
                inter.remember(i);
            }
        }
        if !loaded.no_events_name_interactions {
            self.interactions_mut().orphan_events = None;
        }
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
        let Some(registry) = self.deps.registry.upgrade() else {
            return; // shutting down
        };
        registry.do_send(SessionStopped {
            key: self.key.clone(),
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

/// Returns the answer of a queued operation once its group has committed.
fn answer<T: Send + 'static>(
    rx: oneshot::Receiver<Result<T, SessionError>>,
) -> ResponseFuture<Result<T, SessionError>> {
    Box::pin(async move {
        rx.await.unwrap_or_else(|_| {
            Err(SessionError::StorageUnavailable(
                "the session actor stopped".into(),
            ))
        })
    })
}

/// Create the session if needed (PUT).
impl Handler<EnsureSession> for SessionActor {
    type Result = ResponseFuture<Result<EnsureOutcome, SessionError>>;

    fn handle(&mut self, msg: EnsureSession, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, rx) = oneshot::channel();
        let metadata = msg.metadata;
        self.enqueue(Op::Ensure { metadata, reply }, ctx);
        answer(rx)
    }
}

/// Store a batch of events.
impl Handler<AppendEvents> for SessionActor {
    type Result = ResponseFuture<Result<AppendOutcome, SessionError>>;

    fn handle(&mut self, msg: AppendEvents, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, rx) = oneshot::channel();
        let events = msg.events;
        self.enqueue(Op::Append { events, reply }, ctx);
        answer(rx)
    }
}

/// Create an interaction or command.
impl Handler<CreateInteraction> for SessionActor {
    type Result = ResponseFuture<Result<(Interaction, bool), SessionError>>;

    fn handle(&mut self, msg: CreateInteraction, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, rx) = oneshot::channel();
        self.enqueue(Op::Create { msg, reply }, ctx);
        answer(rx)
    }
}

/// Result, resolve, reject or cancel.
impl Handler<ActOnInteraction> for SessionActor {
    type Result = ResponseFuture<Result<ActionOutcome, SessionError>>;

    fn handle(&mut self, msg: ActOnInteraction, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, rx) = oneshot::channel();
        let (id, action) = (msg.id, msg.action);
        self.enqueue(Op::Act { id, action, reply }, ctx);
        answer(rx)
    }
}

/// Wait for an interaction to leave queued/pending: the caller gets the receiver.
impl Handler<WaitForInteraction> for SessionActor {
    type Result = MessageResult<WaitForInteraction>;

    fn handle(&mut self, msg: WaitForInteraction, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, rx) = oneshot::channel();
        self.enqueue(Op::Wait { id: msg.id, reply }, ctx);
        MessageResult(rx)
    }
}

/// Hand out the next command: the caller gets the receiver.
impl Handler<NextCommand> for SessionActor {
    type Result = MessageResult<NextCommand>;

    fn handle(&mut self, msg: NextCommand, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, rx) = oneshot::channel();
        let wait = msg.wait;
        self.enqueue(Op::Next { wait, reply }, ctx);
        MessageResult(rx)
    }
}

/// The committed session. Answered after loading (the mailbox waits for it), and the state
/// only advances after a commit, so this never shows more than the database holds.
impl Handler<super::messages::GetSnapshot> for SessionActor {
    type Result = Option<crate::domain::session::Session>;

    fn handle(&mut self, _: super::messages::GetSnapshot, _: &mut Context<Self>) -> Self::Result {
        self.session.clone()
    }
}

/// See [`super::messages::PanicForTest`].
#[cfg(any(test, feature = "test-hooks"))]
impl Handler<super::messages::PanicForTest> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: super::messages::PanicForTest, _: &mut Context<Self>) {
        panic!("PanicForTest: session {}", self.key.session_id);
    }
}

/// Started for its deadlines; loading arms them.
impl Handler<Wake> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Wake, _: &mut Context<Self>) {
        self.idle_sweeps = 0;
    }
}

/// The registry's periodic sweep (see [`Sweep`]).
impl Handler<Sweep> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Sweep, _: &mut Context<Self>) {
        self.prune_waiters();
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
        let Some(registry) = self.deps.registry.upgrade() else {
            return; // shutting down
        };
        registry.do_send(Passivate {
            key: self.key.clone(),
            generation: self.generation,
            received: Some(self.received),
            wake_at: self.earliest_deadline(),
        });
    }
}

/// What the registry forwards: counted (see [`Passivate`]), then handled as itself. Every
/// message type the registry forwards is listed here (it can forward only those).
macro_rules! forwarded {
    // Handlers whose result type serves any message with the same result.
    ($($message:ty),* $(,)?) => {$(
        impl Handler<Forwarded<$message>> for SessionActor {
            type Result = <SessionActor as Handler<$message>>::Result;

            fn handle(
                &mut self,
                msg: Forwarded<$message>,
                ctx: &mut Context<Self>,
            ) -> Self::Result {
                self.note_forwarded();
                <Self as Handler<$message>>::handle(self, msg.0, ctx)
            }
        }
    )*};
    // Handlers answering `MessageResult<M>`, which is tied to its message type.
    (message_result: $($message:ty),* $(,)?) => {$(
        impl Handler<Forwarded<$message>> for SessionActor {
            type Result = MessageResult<Forwarded<$message>>;

            fn handle(
                &mut self,
                msg: Forwarded<$message>,
                ctx: &mut Context<Self>,
            ) -> Self::Result {
                self.note_forwarded();
                MessageResult(<Self as Handler<$message>>::handle(self, msg.0, ctx).0)
            }
        }
    )*};
}

forwarded!(
    EnsureSession,
    AppendEvents,
    CreateInteraction,
    ActOnInteraction,
    Wake,
);
#[cfg(any(test, feature = "test-hooks"))]
forwarded!(super::messages::PanicForTest);
forwarded!(message_result: WaitForInteraction, NextCommand);

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
