//! The session actor: the single writer of one (scope, session). Every operation on the
//! session is queued here in arrival order and applied in groups: the actor takes what has
//! queued, decides dedup, assigns `seq`, applies side effects and builds the notifications
//! against its committed state, sends the whole group to the writer as one write, and answers
//! every caller of the group after the commit. At most one write is in flight, and the state
//! advances only when the writer confirms, so ordering and single emission need no locks.
//!
//! Crash-only: if a commit fails the actor cannot be sure of its state, so it fails its callers
//! with 503 and stops; the registry starts a fresh one that reloads from the database.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use actix::prelude::*;
use actix_web::web;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::messages::{
    AppendEvents, AppendOutcome, EnsureOutcome, EnsureSession, EventAck, Passivate, SessionError,
    SessionKey, SessionStopped, Shutdown, SubmitWrite, WriteError,
};
use super::registry::Registry;
use super::writer::Writer;
use crate::config::SessionSettings;
use crate::domain::event::NewEvent;
use crate::domain::session::{Session, SideEffect};
use crate::domain::time::now_millis;
use crate::store::models::{EventRow, SessionRow};
use crate::store::{self, DbPool, NewNotification, SessionWrite, StoreError};

/// The most events one group may carry; more wait for the next group.
const MAX_GROUP_EVENTS: usize = 5000;

/// What a session actor needs from the rest of the system.
#[derive(Clone)]
pub struct SessionDeps {
    pub registry: Addr<Registry>,
    pub writer: Addr<Writer>,
    pub pool: DbPool,
    pub settings: SessionSettings,
}

pub struct SessionActor {
    key: SessionKey,
    generation: u64,
    deps: SessionDeps,
    /// Resolves when the previous actor of this session has stopped. Loading waits for it, so
    /// the state read from the database holds everything that actor committed.
    predecessor: Option<oneshot::Receiver<()>>,
    /// Dropped with the actor: that is how a successor learns this one is gone.
    _gone: oneshot::Sender<()>,
    /// The committed session; `None` until it exists in the database.
    session: Option<Session>,
    dedup: DedupCache,
    queue: VecDeque<Op>,
    /// A group is being looked up or committed.
    busy: bool,
    /// The registry routes no more messages here: stop once the queue is done.
    shutting_down: bool,
    passivation_requested: bool,
    last_activity: Instant,
}

impl SessionActor {
    /// Starts the actor for `key`; returns its address and the receiver that resolves when it
    /// has stopped.
    pub fn start(
        key: SessionKey,
        generation: u64,
        deps: SessionDeps,
        predecessor: Option<oneshot::Receiver<()>>,
    ) -> (Addr<SessionActor>, oneshot::Receiver<()>) {
        let (gone, gone_rx) = oneshot::channel();
        let dedup = DedupCache::new(deps.settings.dedup_cache);
        let addr = SessionActor::create(move |ctx| {
            // Unbounded mailbox: a bounded one parks the sender and retries later, which could
            // reorder messages. Load is bounded at the writer queue instead.
            ctx.set_mailbox_capacity(0);
            SessionActor {
                key,
                generation,
                deps,
                predecessor,
                _gone: gone,
                session: None,
                dedup,
                queue: VecDeque::new(),
                busy: false,
                shutting_down: false,
                passivation_requested: false,
                last_activity: Instant::now(),
            }
        });
        (addr, gone_rx)
    }

    fn enqueue(&mut self, op: Op, ctx: &mut Context<Self>) {
        self.last_activity = Instant::now();
        self.queue.push_back(op);
        self.pump(ctx);
    }

    /// Starts the next group when nothing is in flight.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        if self.queue.is_empty() {
            if self.shutting_down {
                ctx.stop();
            }
            return;
        }
        self.busy = true;
        self.last_activity = Instant::now();
        let ops = self.take_group();
        let unknown = self.keys_to_look_up(&ops);
        if unknown.is_empty() {
            self.plan_and_write(ops, HashMap::new(), ctx);
            return;
        }
        let pool = self.deps.pool.clone();
        let key = self.key.clone();
        web::block(move || -> Result<Vec<(String, i64)>, StoreError> {
            let mut conn = pool.get()?;
            Ok(store::events::find_dedup_keys(
                &mut conn,
                &key.scope,
                key.session_id.as_str(),
                &unknown,
            )?)
        })
        .into_actor(self)
        .map(move |result, actor, ctx| match result {
            Ok(Ok(found)) => actor.plan_and_write(ops, found.into_iter().collect(), ctx),
            Ok(Err(e)) => actor.crash(ops, &e.to_string(), ctx),
            Err(e) => actor.crash(ops, &e.to_string(), ctx),
        })
        .spawn(ctx);
    }

    fn take_group(&mut self) -> Vec<Op> {
        let mut ops = Vec::new();
        let mut events = 0;
        while let Some(op) = self.queue.front() {
            let n = op.event_count();
            if !ops.is_empty() && events + n > MAX_GROUP_EVENTS {
                break;
            }
            events += n;
            ops.extend(self.queue.pop_front());
        }
        ops
    }

    /// Dedup keys that the in-memory cache cannot answer and the database must.
    fn keys_to_look_up(&self, ops: &[Op]) -> Vec<String> {
        if self.dedup.complete {
            return Vec::new();
        }
        let mut unknown: Vec<String> = ops
            .iter()
            .flat_map(Op::events)
            .filter(|e| self.dedup.get(&e.dedup_key).is_none())
            .map(|e| e.dedup_key.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        unknown.sort();
        unknown
    }

    /// Applies a group to a copy of the committed state and sends the result to the writer.
    fn plan_and_write(
        &mut self,
        ops: Vec<Op>,
        stored_keys: HashMap<String, i64>,
        ctx: &mut Context<Self>,
    ) {
        let plan = GroupPlan::build(
            &self.key,
            self.session.clone(),
            ops,
            |k| self.dedup.get(k).or_else(|| stored_keys.get(k).copied()),
            now_millis(),
        );
        let Some(write) = plan.write else {
            // Nothing to store (duplicates, an existing session): everything earlier has
            // committed already, so the answers are durable as they stand.
            let duplicates = plan.replies.iter().map(Reply::duplicates).sum();
            crate::metrics::DUPLICATES_DROPPED.inc_by(duplicates);
            plan.replies.into_iter().for_each(Reply::succeed);
            self.busy = false;
            self.pump(ctx);
            return;
        };
        let counts = WriteCounts {
            stored: write.events.len() as u64,
            duplicates: plan.replies.iter().map(Reply::duplicates).sum(),
            notifications: write.notifications.len() as u64,
        };
        let replies = plan.replies;
        let (session, new_keys) = (plan.session, plan.new_keys);
        self.deps
            .writer
            .send(SubmitWrite(write))
            .into_actor(self)
            .map(move |result, actor, ctx| match result {
                Ok(Ok(())) => {
                    crate::metrics::EVENTS_STORED.inc_by(counts.stored);
                    crate::metrics::DUPLICATES_DROPPED.inc_by(counts.duplicates);
                    crate::metrics::NOTIFICATIONS_WRITTEN.inc_by(counts.notifications);
                    actor.session = session;
                    for (key, seq) in new_keys {
                        actor.dedup.insert(&key, seq);
                    }
                    replies.into_iter().for_each(Reply::succeed);
                    actor.busy = false;
                    actor.pump(ctx);
                }
                Ok(Err(WriteError::Overloaded)) => {
                    // Nothing was written: the state stands, later requests may still fit.
                    for reply in replies {
                        reply.fail(SessionError::Overloaded);
                    }
                    actor.busy = false;
                    actor.pump(ctx);
                }
                Ok(Err(WriteError::Storage(e))) => actor.crash_replies(replies, &e, ctx),
                Err(e) => actor.crash_replies(replies, &e.to_string(), ctx),
            })
            .spawn(ctx);
    }

    fn crash(&mut self, ops: Vec<Op>, why: &str, ctx: &mut Context<Self>) {
        let error = SessionError::StorageUnavailable(why.to_owned());
        for op in ops {
            op.fail(error.clone());
        }
        self.crash_replies(Vec::new(), why, ctx);
    }

    /// Fails everything this actor holds with 503 and stops; a successor reloads the truth.
    fn crash_replies(&mut self, replies: Vec<Reply>, why: &str, ctx: &mut Context<Self>) {
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
        ctx.stop();
    }

    fn is_idle(&self) -> bool {
        !self.busy && self.queue.is_empty()
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
            web::block(move || load_state(&pool, &key, cache)).await
        }
        .into_actor(self)
        .map(|result, actor, ctx| match result {
            Ok(Ok(loaded)) => {
                actor.session = loaded.session;
                for (key, seq) in loaded.recent_keys.iter().rev() {
                    actor.dedup.insert(key, *seq);
                }
                actor.dedup.complete = loaded.keys_complete;
            }
            Ok(Err(e)) => actor.crash(Vec::new(), &e.to_string(), ctx),
            Err(e) => actor.crash(Vec::new(), &e.to_string(), ctx),
        })
        // `wait` holds the mailbox until the state is loaded: nothing is handled, dropped or
        // reordered before the actor knows its session.
        .wait(ctx);
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.load(ctx);
        let idle = self.deps.settings.idle_timeout;
        let check_every = (idle / 4).max(std::time::Duration::from_millis(50));
        ctx.run_interval(check_every, move |actor, _| {
            if actor.is_idle()
                && !actor.passivation_requested
                && actor.last_activity.elapsed() >= idle
            {
                actor.passivation_requested = true;
                actor.deps.registry.do_send(Passivate {
                    key: actor.key.clone(),
                    generation: actor.generation,
                });
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.deps.registry.do_send(SessionStopped {
            key: self.key.clone(),
            generation: self.generation,
        });
    }
}

/// Create the session if needed (PUT).
impl Handler<EnsureSession> for SessionActor {
    type Result = ResponseFuture<Result<EnsureOutcome, SessionError>>;

    fn handle(&mut self, msg: EnsureSession, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        self.enqueue(
            Op::Ensure {
                metadata: msg.metadata,
                reply,
            },
            ctx,
        );
        Box::pin(async move { answer.await.unwrap_or_else(|_| Err(actor_gone())) })
    }
}

/// Store a batch of events.
impl Handler<AppendEvents> for SessionActor {
    type Result = ResponseFuture<Result<AppendOutcome, SessionError>>;

    fn handle(&mut self, msg: AppendEvents, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        self.enqueue(
            Op::Append {
                events: msg.events,
                reply,
            },
            ctx,
        );
        Box::pin(async move { answer.await.unwrap_or_else(|_| Err(actor_gone())) })
    }
}

/// Passivated by the registry: finish the queue, then stop.
impl Handler<Shutdown> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        self.shutting_down = true;
        if self.is_idle() {
            ctx.stop();
        }
    }
}

fn actor_gone() -> SessionError {
    SessionError::StorageUnavailable("the session actor stopped".into())
}

/// A queued operation and where its answer goes.
enum Op {
    Ensure {
        metadata: Option<serde_json::Map<String, serde_json::Value>>,
        reply: oneshot::Sender<Result<EnsureOutcome, SessionError>>,
    },
    Append {
        events: Vec<NewEvent>,
        reply: oneshot::Sender<Result<AppendOutcome, SessionError>>,
    },
}

impl Op {
    fn events(&self) -> &[NewEvent] {
        match self {
            Op::Ensure { .. } => &[],
            Op::Append { events, .. } => events,
        }
    }

    fn event_count(&self) -> usize {
        self.events().len().max(1)
    }

    fn fail(self, error: SessionError) {
        // A caller that went away (closed connection) no longer needs the answer.
        match self {
            Op::Ensure { reply, .. } => drop(reply.send(Err(error))),
            Op::Append { reply, .. } => drop(reply.send(Err(error))),
        }
    }
}

/// An answer decided by a group, sent after its commit.
enum Reply {
    Ensure(
        oneshot::Sender<Result<EnsureOutcome, SessionError>>,
        EnsureOutcome,
    ),
    Append(
        oneshot::Sender<Result<AppendOutcome, SessionError>>,
        AppendOutcome,
    ),
}

impl Reply {
    fn succeed(self) {
        // A caller that went away (closed connection) no longer needs the answer.
        match self {
            Reply::Ensure(tx, outcome) => drop(tx.send(Ok(outcome))),
            Reply::Append(tx, outcome) => drop(tx.send(Ok(outcome))),
        }
    }

    fn duplicates(&self) -> u64 {
        match self {
            Reply::Ensure(..) => 0,
            Reply::Append(_, outcome) => outcome.duplicates as u64,
        }
    }

    fn fail(self, error: SessionError) {
        match self {
            Reply::Ensure(tx, _) => drop(tx.send(Err(error))),
            Reply::Append(tx, _) => drop(tx.send(Err(error))),
        }
    }
}

/// What a committed group adds to the metrics.
struct WriteCounts {
    stored: u64,
    duplicates: u64,
    notifications: u64,
}

/// The outcome of applying one group to the committed state.
struct GroupPlan {
    session: Option<Session>,
    write: Option<SessionWrite>,
    replies: Vec<Reply>,
    new_keys: Vec<(String, i64)>,
}

impl GroupPlan {
    fn build(
        key: &SessionKey,
        committed: Option<Session>,
        ops: Vec<Op>,
        stored_seq: impl Fn(&str) -> Option<i64>,
        now: i64,
    ) -> GroupPlan {
        let existed = committed.is_some();
        let mut session = committed;
        let mut notifications = Vec::new();
        let mut rows = Vec::new();
        let mut new_keys: HashMap<String, i64> = HashMap::new();
        let mut replies = Vec::with_capacity(ops.len());
        let mut changed = false;

        for op in ops {
            match op {
                Op::Ensure { metadata, reply } => {
                    let created = session.is_none();
                    let s = ensure(key, &mut session, metadata, now, &mut notifications);
                    changed |= created;
                    let outcome = EnsureOutcome {
                        session: s.clone(),
                        created,
                    };
                    replies.push(Reply::Ensure(reply, outcome));
                }
                Op::Append { events, reply } => {
                    changed |= session.is_none();
                    let s = ensure(key, &mut session, None, now, &mut notifications);
                    let mut acks = Vec::with_capacity(events.len());
                    let mut accepted = 0;
                    for event in events {
                        let known = new_keys
                            .get(&event.dedup_key)
                            .copied()
                            .or_else(|| stored_seq(&event.dedup_key));
                        if let Some(seq) = known {
                            acks.push(EventAck {
                                seq,
                                duplicate: true,
                            });
                            continue;
                        }
                        s.last_seq += 1;
                        s.event_count += 1;
                        let seq = s.last_seq;
                        let effect = s.apply(&event);
                        note_side_effect(key, s, &effect, now, &mut notifications);
                        new_keys.insert(event.dedup_key.clone(), seq);
                        rows.push(event_row(key, seq, &event, now));
                        acks.push(EventAck {
                            seq,
                            duplicate: false,
                        });
                        accepted += 1;
                    }
                    if accepted > 0 {
                        s.updated_at = now;
                        changed = true;
                    }
                    let outcome = AppendOutcome {
                        accepted,
                        duplicates: acks.len() - accepted,
                        event_count: s.event_count,
                        last_seq: s.last_seq,
                        events: acks,
                    };
                    replies.push(Reply::Append(reply, outcome));
                }
            }
        }

        let write = match (&session, changed) {
            (Some(s), true) => {
                if !rows.is_empty() {
                    notifications.push(NewNotification {
                        kind: "events.appended",
                        at: now,
                        body: json!({"event_count": s.event_count, "last_seq": s.last_seq})
                            .to_string(),
                    });
                }
                Some(SessionWrite {
                    session: SessionRow::from_session(s),
                    create: !existed,
                    events: rows,
                    notifications,
                })
            }
            _ => None,
        };
        GroupPlan {
            session,
            write,
            replies,
            new_keys: new_keys.into_iter().collect(),
        }
    }
}

/// The session, created now (with its `session.created` notification) if it does not exist.
fn ensure<'a>(
    key: &SessionKey,
    session: &'a mut Option<Session>,
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    now: i64,
    notifications: &mut Vec<NewNotification>,
) -> &'a mut Session {
    session.get_or_insert_with(|| {
        let s = Session::new(
            key.scope.clone(),
            key.session_id.clone(),
            metadata.unwrap_or_default(),
            now,
        );
        notifications.push(NewNotification {
            kind: "session.created",
            at: now,
            body: json!({"status": s.status.as_str()}).to_string(),
        });
        s
    })
}

fn note_side_effect(
    key: &SessionKey,
    session: &Session,
    effect: &SideEffect,
    now: i64,
    notifications: &mut Vec<NewNotification>,
) {
    match effect {
        SideEffect::StatusChanged | SideEffect::ConversationLinked => {
            notifications.push(NewNotification {
                kind: "session.updated",
                at: now,
                body: json!({
                    "status": session.status.as_str(),
                    "external_conversation_id": session.external_conversation_id,
                })
                .to_string(),
            });
        }
        SideEffect::ConversationConflict { kept, offered } => {
            crate::metrics::CONVERSATION_CONFLICTS.inc();
            log::warn!(
                "session {}/{}: conversation_started offers conversation id {offered:?} but \
                 {kept:?} is linked; keeping {kept:?}",
                key.scope,
                key.session_id
            );
        }
        SideEffect::InvalidStatus(status) => log::warn!(
            "session {}/{}: session_status_changed with invalid status {status:?}; stored, \
             status unchanged",
            key.scope,
            key.session_id
        ),
        SideEffect::MissingConversationId => log::warn!(
            "session {}/{}: conversation_started without data.conversation_id; stored, no effect",
            key.scope,
            key.session_id
        ),
        SideEffect::EndsInteraction(_) | SideEffect::None => {}
    }
}

fn event_row(key: &SessionKey, seq: i64, event: &NewEvent, now: i64) -> EventRow {
    EventRow {
        scope: key.scope.clone(),
        session_id: key.session_id.as_str().to_owned(),
        seq,
        event_id: event.event_id.as_ref().map(|id| id.as_str().to_owned()),
        dedup_key: event.dedup_key.clone(),
        event_type: event.event_type.as_str().to_owned(),
        occurred_at_us: event.occurred_at_us,
        received_at: now,
        interaction_id: event
            .interaction_id
            .as_ref()
            .map(|id| id.as_str().to_owned()),
        sequence: event.sequence,
        out_of_order: false,
        data: event.data_json(),
    }
}

struct LoadedState {
    session: Option<Session>,
    /// Newest first.
    recent_keys: Vec<(String, i64)>,
    /// The keys above are all the session has.
    keys_complete: bool,
}

fn load_state(pool: &DbPool, key: &SessionKey, cache: usize) -> Result<LoadedState, StoreError> {
    let mut conn = pool.get()?;
    let session = store::sessions::find(&mut conn, &key.scope, key.session_id.as_str())?
        .map(SessionRow::into_session)
        .transpose()?;
    let Some(session) = session else {
        return Ok(LoadedState {
            session: None,
            recent_keys: Vec::new(),
            keys_complete: true,
        });
    };
    let recent_keys = store::events::recent_dedup_keys(
        &mut conn,
        &key.scope,
        key.session_id.as_str(),
        cache as i64,
    )?;
    Ok(LoadedState {
        keys_complete: session.event_count <= cache as i64,
        session: Some(session),
        recent_keys,
    })
}

/// The newest dedup keys of a session, as 128-bit fingerprints (a key can be 130 bytes; a
/// fingerprint is 16), oldest evicted first. `complete` says whether it holds every key the
/// session has stored; when it does not, a miss must be checked in the database.
struct DedupCache {
    seqs: HashMap<u128, i64>,
    order: VecDeque<u128>,
    capacity: usize,
    complete: bool,
}

impl DedupCache {
    fn new(capacity: usize) -> Self {
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

    fn get(&self, key: &str) -> Option<i64> {
        self.seqs.get(&Self::fingerprint(key)).copied()
    }

    fn insert(&mut self, key: &str, seq: i64) {
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
    fn dedup_cache_evicts_oldest_and_becomes_incomplete() {
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
