//! The writer: group commit for every session. Session actors submit writes through the
//! [`Writer`] handle straight into the commit queue (bounded: a full queue answers
//! `Overloaded` at once, never a hang). The committer, a sync actor on its own thread, takes everything
//! waiting (up to a batch limit) as soon as its previous commit is done, commits it in one
//! transaction and answers each submitter itself, only after the commit. Batches form by
//! themselves under load: while one commits, the next accumulates, so an idle server commits
//! at once and a busy one in bulk.
//!
//! The committer takes the next batch itself rather than being handed it, and answers each
//! submitter on the oneshot it queued with: no thread stands between a session actor and the
//! committer, either way. One committer thread keeps commit
//! order equal to notification-id order and per-session order, on both backends. After each
//! commit the committer publishes the commit's notifications on the [`NotificationFeed`]
//! (before answering anyone): long-polls and SSE streams wake on it and read the new rows from
//! memory, instead of polling the database.
//!
//! The full-text search index is filled off the commit path, in batches
//! (`store::search::index_words`): on SQLite by the committer between commits (SQLite has one
//! write lock), at most every [`SEARCH_INDEX_INTERVAL`] while commits go on and whenever the
//! queue runs empty; on PostgreSQL by a thread of its own, every [`SEARCH_INDEX_INTERVAL`],
//! in its own transactions, so its work never holds a commit up. Indexing inside every small
//! group commit cost single events 13-24 %.
//!
//! On SQLite a third thread, the checkpointer, copies the WAL into the database file after
//! commits (at most every [`CHECKPOINT_INTERVAL`]). A commit checkpoints by itself only once
//! the WAL passes 10,000 pages, and then little is left to copy.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::messages::{Checkpoint, Drain, WriteError};
use crate::config::WriterSettings;
use crate::store::{self, DbPool, NotificationFeed, PooledConnection, SessionWrite, StoreError};

/// A write waiting for its commit, with the submitter's answer.
struct Queued {
    write: SessionWrite,
    reply: oneshot::Sender<Result<(), WriteError>>,
}

/// The writes between admission and commit, shared by the writer (which adds) and the
/// committer (which takes). One lock, held only to move writes in or out.
#[derive(Default)]
struct CommitQueue {
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<Queued>,
    /// Writes the committer took and has not answered yet; they count against the capacity.
    in_flight: usize,
    /// The committer is draining the queue: a new write needs no [`Drain`] to be seen.
    /// Set by the writer when it sends one, cleared by the committer when it finds the queue
    /// empty, both under the lock, so no write is left waiting with the committer idle.
    draining: bool,
    /// The committer thread is gone: every write is refused.
    committer_lost: bool,
    /// When the commit running now began.
    committing_since: Option<Instant>,
    /// When a commit last failed for a reason other than its writes (the database is down,
    /// locked, slow or full); cleared by the next commit that succeeds.
    failed_at: Option<Instant>,
    /// Tests: the next commit first sleeps this long, as on a frozen disk.
    #[cfg(any(test, feature = "test-hooks"))]
    stall_next: Option<Duration>,
}

impl CommitQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding the lock leaves plain data behind, still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Where session actors submit their writes: a handle to the commit queue and the committer,
/// cheap to clone, used from any thread. There is no writer actor in between: a submitter puts
/// its write in the queue and awaits the committer's own answer.
#[derive(Clone)]
pub struct Writer {
    /// PostgreSQL's search indexer runs while a writer handle does.
    _search_indexer: Option<Arc<SearchIndexer>>,
    committer: Addr<Committer>,
    settings: WriterSettings,
    queue: Arc<CommitQueue>,
}

/// How full the writer is (for readiness and metrics).
#[derive(Clone, Copy, Debug)]
pub struct WriterLoad {
    pub queued: usize,
    pub capacity: usize,
    /// A commit has been running for longer than the database timeout.
    pub stalled: bool,
    /// The last commit failed, recently, for a reason other than its writes.
    pub failing: bool,
}

/// Where a submitted write's answer arrives: after its commit, or its failure.
pub type CommitTicket = oneshot::Receiver<Result<(), WriteError>>;

/// The most often the WAL is checkpointed while commits go on. Each checkpoint fsyncs the
/// database file and copies pages that later commits may change again, so running them
/// back to back would spend the second core on rewriting the same pages.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// The most often the search index is filled while commits go on: how far search text may
/// lag behind commits under load.
pub const SEARCH_INDEX_INTERVAL: Duration = Duration::from_millis(500);
/// The most rows one pass of the search index takes, so a pass never holds commits up long.
const SEARCH_INDEX_BATCH: i64 = 20_000;

/// How long a failed commit keeps readiness failed when no commit follows it.
const FAILURE_REMEMBERED: Duration = Duration::from_secs(10);

impl Writer {
    /// Starts the committer (and on SQLite the checkpointer), each on its own thread.
    pub fn start(
        pool: DbPool,
        settings: WriterSettings,
        feed: Arc<NotificationFeed>,
        wal_checkpoints: bool,
    ) -> Writer {
        let queue = Arc::new(CommitQueue::default());
        let checkpoints = wal_checkpoints.then(|| {
            let running = Arc::new(AtomicBool::new(false));
            let (pool, flag) = (pool.clone(), running.clone());
            Checkpoints {
                checkpointer: SyncArbiter::start(1, move || Checkpointer {
                    pool: pool.clone(),
                    running: flag.clone(),
                }),
                running,
                last: Instant::now(),
            }
        });
        let indexer_pool = pool.clone();
        let fills_search_index = wal_checkpoints;
        let committer = {
            let (queue, settings) = (queue.clone(), settings.clone());
            SyncArbiter::start(1, move || {
                Committer::new(
                    pool.clone(),
                    feed.clone(),
                    queue.clone(),
                    &settings,
                    checkpoints.clone(),
                    fills_search_index,
                )
            })
        };
        // An empty drain: the committer first catches the search index up with what an
        // earlier run committed.
        committer.do_send(Drain);
        Writer {
            _search_indexer: (!wal_checkpoints).then(|| SearchIndexer::start(indexer_pool)),
            committer,
            settings,
            queue,
        }
    }

    /// In cluster mode: announce each commit that wrote notifications to the other nodes,
    /// whenever `others_listen` says they may be listening.
    pub fn announce_commits(&self, others_listen: Announce) {
        self.committer.do_send(AnnounceCommits(others_listen));
    }

    /// Queues a write for the next commit. The ticket answers after that commit; a full queue
    /// (`Overloaded`) or a lost committer is refused at once. Must run inside an actix
    /// arbiter: waking the committer spawns a watch on it there.
    pub fn submit(&self, write: SessionWrite) -> Result<CommitTicket, WriteError> {
        let (reply, answer) = oneshot::channel();
        let wake = {
            let mut state = self.queue.lock();
            if state.committer_lost {
                return Err(WriteError::Storage("the committer stopped".into()));
            }
            if state.waiting.len() + state.in_flight >= self.settings.queue_capacity {
                return Err(WriteError::Overloaded);
            }
            state.waiting.push_back(Queued { write, reply });
            !std::mem::replace(&mut state.draining, true)
        };
        if wake {
            self.wake_committer();
        }
        Ok(answer)
    }

    /// Wakes the committer. Its answer comes when the queue is empty; an error means its
    /// thread is gone, and then nobody would ever commit what waits: refuse it all.
    fn wake_committer(&self) {
        let drained = self.committer.send(Drain);
        let queue = self.queue.clone();
        actix_rt::spawn(async move {
            if let Err(e) = drained.await {
                log::error!("committer unreachable: {e}");
                let waiting = {
                    let mut state = queue.lock();
                    state.committer_lost = true;
                    std::mem::take(&mut state.waiting)
                };
                for queued in waiting {
                    let _ = queued.reply.send(Err(WriteError::Storage(e.to_string())));
                }
            }
        });
    }

    /// Tests: the next commit hangs for `stall` before it starts, as on a frozen filesystem.
    #[cfg(any(test, feature = "test-hooks"))]
    #[doc(hidden)]
    pub fn stall_next_commit(&self, stall: Duration) {
        self.queue.lock().stall_next = Some(stall);
    }

    /// How full the queue is, and whether commits go through.
    pub fn load(&self) -> WriterLoad {
        let state = self.queue.lock();
        let timeout = self.settings.commit_timeout;
        WriterLoad {
            queued: state.waiting.len() + state.in_flight,
            capacity: self.settings.queue_capacity,
            stalled: state
                .committing_since
                .is_some_and(|since| since.elapsed() > timeout),
            // Recent: with no writes coming, readiness must not stay failed for ever.
            failing: state
                .failed_at
                .is_some_and(|at| at.elapsed() < FAILURE_REMEMBERED),
        }
    }
}

/// The checkpointer and when it last ran (SQLite only); driven by the committer.
#[derive(Clone)]
struct Checkpoints {
    checkpointer: Addr<Checkpointer>,
    /// Set while a checkpoint runs; the checkpointer clears it.
    running: Arc<AtomicBool>,
    last: Instant,
}

impl Checkpoints {
    /// Starts a checkpoint unless one is running or the last began under
    /// [`CHECKPOINT_INTERVAL`] ago; then a later commit asks again.
    fn soon(&mut self) {
        if self.last.elapsed() < CHECKPOINT_INTERVAL || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.last = Instant::now();
        self.checkpointer.do_send(Checkpoint);
    }
}

/// Runs the group-commit transactions on its own thread.
pub struct Committer {
    pool: DbPool,
    queue: Arc<CommitQueue>,
    max_batch: usize,
    /// A failed commit that took less than this may have failed because of a write in it.
    commit_timeout: Duration,
    /// The connection commits run on, kept between batches so its page cache stays warm;
    /// dropped after a failure so the next batch starts on a fresh one.
    conn: Option<PooledConnection>,
    /// When `conn` last committed: one idle for longer is pinged first, as the pool does with
    /// its connections, so a database restart costs no failed batch.
    last_commit: Instant,
    /// The id the next notification gets; `None` after a failure, re-read from the database,
    /// because a failed commit may leave us unsure what was written.
    next_notification_id: Option<i64>,
    /// Where committed notifications are published.
    feed: Arc<NotificationFeed>,
    checkpoints: Option<Checkpoints>,
    /// This committer fills the search index (SQLite; PostgreSQL's indexer is a thread).
    fills_search_index: bool,
    /// Committed rows may be missing from the search index (at start: a previous run may
    /// have stopped before indexing its last commits).
    search_behind: bool,
    /// When the search index was last filled.
    last_search_pass: Instant,
    /// Whether other nodes may be listening for this node's commits (cluster mode); then each
    /// commit that wrote notifications is announced after it (see `store::leases`).
    announce: Option<Announce>,
    /// Tests: the next commit panics, as a bug in it would.
    #[cfg(test)]
    panic_next: bool,
}

/// Asked after each commit: may other nodes be listening?
pub type Announce = Arc<dyn Fn() -> bool + Send + Sync>;

/// From now on, announce commits to the other nodes whenever `when` says they may listen.
#[derive(Message)]
#[rtype(result = "()")]
struct AnnounceCommits(Announce);

impl Handler<AnnounceCommits> for Committer {
    type Result = ();

    fn handle(&mut self, msg: AnnounceCommits, _: &mut SyncContext<Self>) {
        self.announce = Some(msg.0);
    }
}

impl Actor for Committer {
    type Context = SyncContext<Self>;
}

/// Commit batches until the queue is empty.
impl Handler<Drain> for Committer {
    type Result = ();

    fn handle(&mut self, _: Drain, _: &mut SyncContext<Self>) {
        while let Some(batch) = self.take_batch() {
            let (writes, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|q| (q.write, q.reply)).unzip();
            self.commit_and_answer(writes, replies);
            self.queue.lock().committing_since = None;
            if self.last_search_pass.elapsed() >= SEARCH_INDEX_INTERVAL {
                self.fill_search_index();
            }
        }
        // Idle: catch the index up, pass by pass, unless writes arrive.
        while self.search_behind && self.queue.lock().waiting.is_empty() {
            if !self.fill_search_index() {
                break;
            }
        }
    }
}

impl Committer {
    fn new(
        pool: DbPool,
        feed: Arc<NotificationFeed>,
        queue: Arc<CommitQueue>,
        settings: &WriterSettings,
        checkpoints: Option<Checkpoints>,
        fills_search_index: bool,
    ) -> Self {
        Self {
            pool,
            queue,
            max_batch: settings.max_batch.max(1),
            commit_timeout: settings.commit_timeout,
            conn: None,
            last_commit: Instant::now(),
            next_notification_id: None,
            feed,
            checkpoints,
            fills_search_index,
            search_behind: fills_search_index,
            last_search_pass: Instant::now(),
            announce: None,
            #[cfg(test)]
            panic_next: false,
        }
    }

    /// One pass of the search index, when it is behind; `false` when it could not run (no
    /// connection yet, or the pass failed: the rows wait for the next one).
    fn fill_search_index(&mut self) -> bool {
        if !self.search_behind {
            return true;
        }
        self.last_search_pass = Instant::now();
        let Ok(conn) = writer_connection(&mut self.conn, &self.pool) else {
            return false;
        };
        match store::search::index_words(conn, SEARCH_INDEX_BATCH) {
            Ok(pass) => {
                self.search_behind = pass.behind > 0;
                crate::metrics::SEARCH_INDEX_BEHIND.set(pass.behind);
                true
            }
            Err(e) => {
                crate::log_limited!(log::Level::Warn, "filling the search index failed: {e}");
                conn.mark_failed();
                self.conn = None;
                false
            }
        }
    }

    /// Commits `writes` together and answers each. When the commit fails and one of the
    /// writes may be the cause (see [`blames_the_writes`]), the two halves are committed
    /// separately, down to single writes: only a write that cannot be stored gets the error,
    /// and the other sessions' writes commit.
    fn commit_and_answer(
        &mut self,
        mut writes: Vec<SessionWrite>,
        mut replies: Vec<oneshot::Sender<Result<(), WriteError>>>,
    ) {
        let started = Instant::now();
        let outcome = self.commit_or_reset(&writes);
        if let Err(StoreError::Fenced(partitions)) = &outcome {
            // Those writes are refused alone; the others are committed without them.
            let (fenced, kept): (Vec<_>, Vec<_>) =
                writes.into_iter().zip(replies).partition(|(w, _)| {
                    w.lease
                        .as_ref()
                        .is_some_and(|l| partitions.contains(&l.partition))
                });
            {
                let mut state = self.queue.lock();
                state.in_flight = state.in_flight.saturating_sub(fenced.len());
            }
            for (_, reply) in fenced {
                let _ = reply.send(Err(WriteError::Fenced));
            }
            if !kept.is_empty() {
                let (writes, replies) = kept.into_iter().unzip();
                self.commit_and_answer(writes, replies);
            }
            return;
        }
        match &outcome {
            Ok(()) => {
                self.queue.lock().failed_at = None;
                if let Some(checkpoints) = &mut self.checkpoints {
                    checkpoints.soon();
                }
            }
            Err(e)
                if writes.len() > 1
                    && blames_the_writes(e, started.elapsed(), self.commit_timeout) =>
            {
                crate::log_limited!(
                    log::Level::Warn,
                    "commit of {} session writes failed ({e}); committing them in two halves",
                    writes.len()
                );
                crate::metrics::SPLIT_COMMITS.inc();
                let half = writes.len() / 2;
                let (later_writes, later_replies) =
                    (writes.split_off(half), replies.split_off(half));
                self.commit_and_answer(writes, replies);
                self.commit_and_answer(later_writes, later_replies);
                return;
            }
            Err(e) => {
                crate::log_limited!(
                    log::Level::Error,
                    "commit of {} session writes failed: {e}",
                    replies.len()
                );
                if writes.len() > 1 || !blames_the_writes(e, started.elapsed(), self.commit_timeout)
                {
                    self.queue.lock().failed_at = Some(Instant::now());
                }
            }
        }
        let outcome = outcome.map_err(|e| WriteError::Storage(e.to_string()));
        {
            let mut state = self.queue.lock();
            state.in_flight = state.in_flight.saturating_sub(replies.len());
        }
        for reply in replies {
            // A submitter that went away no longer needs the answer.
            let _ = reply.send(outcome.clone());
        }
    }

    /// The next batch: everything waiting, up to the batch limit; `None` (and the committer
    /// counts as idle again) when nothing waits.
    fn take_batch(&mut self) -> Option<Vec<Queued>> {
        let mut state = self.queue.lock();
        if state.waiting.is_empty() {
            state.draining = false;
            return None;
        }
        let take = state.waiting.len().min(self.max_batch);
        state.in_flight = take;
        state.committing_since = Some(Instant::now());
        Some(state.waiting.drain(..take).collect())
    }

    /// Commits `writes`; after a failure the next batch starts afresh.
    fn commit_or_reset(&mut self, writes: &[SessionWrite]) -> Result<(), StoreError> {
        let result = self.commit(writes);
        // A fenced batch was rolled back cleanly, before anything was written.
        if result.is_err() && !matches!(result, Err(StoreError::Fenced(_))) {
            if let Some(conn) = self.conn.as_mut() {
                conn.mark_failed();
            }
            self.conn = None;
            self.next_notification_id = None;
            // The commit may have reached the database even so.
            self.feed.forget();
        }
        result
    }

    /// Commits `writes` and publishes their notifications.
    fn commit(&mut self, writes: &[SessionWrite]) -> Result<(), StoreError> {
        #[cfg(test)]
        if std::mem::take(&mut self.panic_next) {
            panic!("the committer panics, as the test asked");
        }
        #[cfg(any(test, feature = "test-hooks"))]
        {
            let stall = self.queue.lock().stall_next.take();
            if let Some(stall) = stall {
                std::thread::sleep(stall);
            }
        }
        if self.last_commit.elapsed() >= store::TRUSTED_AFTER_USE {
            if let Some(mut idle) = self.conn.take() {
                match store::ping(&mut idle) {
                    Ok(()) => self.conn = Some(idle),
                    Err(e) => {
                        log::info!("the committer's idle connection was lost ({e}); reconnecting");
                        idle.mark_failed();
                    }
                }
            }
        }
        self.last_commit = Instant::now();
        let conn = writer_connection(&mut self.conn, &self.pool)?;
        let next = match self.next_notification_id {
            Some(next) => next,
            None => store::notifications::max_id(conn)? + 1,
        };
        crate::metrics::BATCH_WRITES.observe(writes.len() as f64);
        crate::metrics::BATCH_EVENTS
            .observe(writes.iter().map(|w| w.events.len()).sum::<usize>() as f64);
        let started = Instant::now();
        let result = store::commit_batch(conn, writes, next);
        crate::metrics::COMMIT_SECONDS.observe(started.elapsed().as_secs_f64());
        let committed = result?;
        self.next_notification_id = Some(committed.next_id);
        self.search_behind |=
            self.fills_search_index && writes.iter().any(|w| !w.events.is_empty());
        let newest = committed.notifications.last().map(|n| n.id);
        self.feed.publish(committed.notifications);
        if let (Some(newest), Some(others_listen)) = (newest, &self.announce) {
            // A hint, after the commit: a failure costs other nodes' readers a delay, not a row.
            if let (true, store::DbConnection::Pg(pg)) = (others_listen(), &mut ***conn) {
                if let Err(e) = store::leases::announce_commit(pg, newest) {
                    crate::log_limited!(log::Level::Warn, "announcing a commit failed: {e}");
                }
            }
        }
        Ok(())
    }
}

/// The committer's connection in `slot`, made and prepared for writing when there is none.
fn writer_connection<'c>(
    slot: &'c mut Option<PooledConnection>,
    pool: &DbPool,
) -> Result<&'c mut PooledConnection, StoreError> {
    match slot {
        Some(conn) => Ok(conn),
        None => {
            let mut conn = pool.get()?;
            store::prepare_writer_connection(&mut conn)?;
            Ok(slot.insert(conn))
        }
    }
}

/// Whether a failed commit may have failed because of one of its writes, rather than the
/// database (unreachable, locked, slow, full, read-only): a statement the database refused,
/// quickly, on a connection that is still there. Only then does committing the writes in
/// smaller groups help; for the rest it would repeat the failure for every group.
fn blames_the_writes(error: &StoreError, took: Duration, timeout: Duration) -> bool {
    use diesel::result::{DatabaseErrorKind as Kind, Error};
    let StoreError::Query(Error::DatabaseError(kind, info)) = error else {
        return false;
    };
    if matches!(
        kind,
        Kind::ClosedConnection
            | Kind::UnableToSendCommand
            | Kind::SerializationFailure
            | Kind::ReadOnlyTransaction
    ) {
        return false;
    }
    let message = info.message().to_ascii_lowercase();
    let environmental = [
        "lock",
        "busy",
        "full",
        "timeout",
        "cancel",
        "disk",
        "i/o",
        "connection",
        "terminat",
        "read-only",
        "readonly",
        "shutdown",
        "recovery",
        "memory",
    ];
    took < timeout / 4 && !environmental.iter().any(|word| message.contains(word))
}

/// PostgreSQL's search indexer: a thread that fills the full-text index every
/// [`SEARCH_INDEX_INTERVAL`], pass by pass until it has caught up, in transactions of its own
/// beside the committer's. It stops when the last writer handle is dropped.
struct SearchIndexer {
    stop: Arc<AtomicBool>,
}

impl SearchIndexer {
    fn start(pool: DbPool) -> Arc<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("search-indexer".into())
            .spawn(move || {
                while !stopped.load(Ordering::Acquire) {
                    Self::catch_up(&pool, &stopped);
                    std::thread::sleep(SEARCH_INDEX_INTERVAL);
                }
            });
        if let Err(e) = spawned {
            log::error!("the search indexer did not start ({e}); search text finds nothing new");
        }
        Arc::new(Self { stop })
    }

    fn catch_up(pool: &DbPool, stop: &AtomicBool) {
        while !stop.load(Ordering::Acquire) {
            let pass = store::with_connection(pool, |conn| {
                Ok(store::search::index_words(conn, SEARCH_INDEX_BATCH)?)
            });
            match pass {
                Ok(pass) => {
                    crate::metrics::SEARCH_INDEX_BEHIND.set(pass.behind);
                    if pass.behind == 0 {
                        return;
                    }
                }
                Err(e) => {
                    crate::log_limited!(log::Level::Warn, "filling the search index failed: {e}");
                    return;
                }
            }
        }
    }
}

impl Drop for SearchIndexer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Runs SQLite WAL checkpoints on their own thread, beside the committer.
pub struct Checkpointer {
    pool: DbPool,
    /// Cleared when a checkpoint is done, so the committer may ask for the next.
    running: Arc<AtomicBool>,
}

impl Actor for Checkpointer {
    type Context = SyncContext<Self>;
}

impl Handler<Checkpoint> for Checkpointer {
    type Result = ();

    fn handle(&mut self, _: Checkpoint, _: &mut SyncContext<Self>) {
        let done = store::with_connection(&self.pool, store::checkpoint);
        self.running.store(false, Ordering::Release);
        // Nothing is lost when a checkpoint fails: the pages stay in the WAL for the next one.
        let result = match done {
            Ok(()) => "ok",
            Err(e) => {
                log::warn!("WAL checkpoint failed: {e}");
                "failed"
            }
        };
        crate::metrics::WAL_CHECKPOINTS
            .with_label_values(&[result])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::models::SessionRow;
    use crate::store::{DatabaseTarget, PoolSettings};

    /// Tests: make the committer's next commit panic.
    #[derive(Message)]
    #[rtype(result = "()")]
    struct PanicNextCommit;

    impl Handler<PanicNextCommit> for Committer {
        type Result = ();

        fn handle(&mut self, _: PanicNextCommit, _: &mut SyncContext<Self>) {
            self.panic_next = true;
        }
    }

    fn writer_on_fresh_database(name: &str) -> (Writer, Arc<NotificationFeed>, DbPool) {
        let path = std::env::temp_dir().join(format!("orch-{name}-{}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let settings = PoolSettings {
            max_size: 3,
            connection_timeout: Duration::from_secs(5),
        };
        let pool = store::connect(&DatabaseTarget::Sqlite(path), &settings).expect("pool");
        let feed = Arc::new(NotificationFeed::new(100, 1 << 20));
        let settings = WriterSettings {
            queue_capacity: 100,
            max_batch: 10,
            commit_timeout: Duration::from_secs(5),
        };
        (
            Writer::start(pool.clone(), settings, feed.clone(), true),
            feed,
            pool,
        )
    }

    fn new_session(id: &str) -> SessionWrite {
        // Every session has a key of its own.
        static KEYS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
        let key = KEYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SessionWrite {
            notifications: vec![store::NewNotification {
                kind: "session.created",
                at: 1,
                body: "{}".into(),
            }],
            ..SessionWrite::new(SessionRow::new_active("default", id, key, 1), true)
        }
    }

    async fn submit(writer: &Writer, write: SessionWrite) -> Result<(), WriteError> {
        let ticket = writer.submit(write)?;
        actix_rt::time::timeout(Duration::from_secs(10), ticket)
            .await
            .expect("answered, not left waiting")
            .unwrap_or_else(|_| {
                Err(WriteError::Storage(
                    "the committer dropped the write".into(),
                ))
            })
    }

    #[actix_rt::test]
    async fn every_submitter_is_answered_after_its_commit() {
        let (writer, feed, _) = writer_on_fresh_database("writer-commits");
        let answers = (0..50).map(|n| submit(&writer, new_session(&format!("s{n}"))));
        let answers = futures_util::future::join_all(answers).await;
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        // Each answer came after its commit, which published its notification first.
        let published = feed
            .read("default", 0, None, 100, usize::MAX)
            .expect("the feed covers it");
        assert_eq!(published.len(), 50);
        let load = writer.load();
        assert_eq!(load.queued, 0);
    }

    /// A write the database refuses (here a second creation of a session, which the plain
    /// INSERT of new sessions refuses) fails only itself: the others in its group commit.
    #[actix_rt::test]
    async fn a_write_that_cannot_be_stored_fails_alone() {
        let (writer, _feed, pool) = writer_on_fresh_database("writer-split");
        submit(&writer, new_session("taken"))
            .await
            .expect("committed");
        let writes = (0..10).map(|n| {
            let id = if n == 6 {
                "taken".to_owned()
            } else {
                format!("s{n}")
            };
            submit(&writer, new_session(&id))
        });
        let answers = futures_util::future::join_all(writes).await;
        for (n, answer) in answers.iter().enumerate() {
            if n == 6 {
                assert!(matches!(answer, Err(WriteError::Storage(_))), "{answer:?}");
            } else {
                assert_eq!(answer, &Ok(()), "write {n}");
            }
        }
        let stored = store::with_connection(&pool, |conn| Ok(store::notifications::max_id(conn)?))
            .expect("read");
        assert_eq!(stored, 1 + 9, "every other write committed, once");
        assert!(
            crate::metrics::SPLIT_COMMITS.get() >= 1,
            "the group was split"
        );
        let load = writer.load();
        assert!(!load.failing, "the database is fine; one write was not");
    }

    #[test]
    fn only_quick_refusals_of_a_statement_blame_the_writes() {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        let refused = |kind, message: &str| {
            StoreError::Query(Error::DatabaseError(kind, Box::new(message.to_owned())))
        };
        let (quick, slow, timeout) = (
            Duration::from_millis(3),
            Duration::from_secs(2),
            Duration::from_secs(5),
        );
        let unique = refused(
            Kind::UniqueViolation,
            "UNIQUE constraint failed: sessions.id",
        );
        assert!(blames_the_writes(&unique, quick, timeout));
        assert!(
            !blames_the_writes(&unique, slow, timeout),
            "slow: the database's"
        );
        let encoding = refused(
            Kind::Unknown,
            "invalid byte sequence for encoding \"UTF8\": 0x00",
        );
        assert!(blames_the_writes(&encoding, quick, timeout));
        for environmental in [
            refused(Kind::Unknown, "database is locked"),
            refused(Kind::Unknown, "database or disk is full"),
            refused(Kind::Unknown, "canceling statement due to lock timeout"),
            refused(Kind::ClosedConnection, "server closed the connection"),
            refused(Kind::SerializationFailure, "could not serialize access"),
            StoreError::Corrupt("x".into()),
        ] {
            assert!(
                !blames_the_writes(&environmental, quick, timeout),
                "{environmental}"
            );
        }
    }

    #[actix_rt::test]
    async fn a_committer_that_dies_leaves_no_write_waiting() {
        let (writer, _feed, _) = writer_on_fresh_database("writer-lost");
        submit(&writer, new_session("before"))
            .await
            .expect("committed");
        writer
            .committer
            .send(PanicNextCommit)
            .await
            .expect("committer");
        // The write in the panicking commit loses its answer: refused, not hung.
        let lost = submit(&writer, new_session("during")).await;
        assert!(matches!(lost, Err(WriteError::Storage(_))), "{lost:?}");
        // Nobody is left to commit: later writes are refused (those that queued before the
        // writer heard of it are refused then), none is left waiting.
        for n in 0..3 {
            let refused = submit(&writer, new_session(&format!("after{n}"))).await;
            assert!(
                matches!(refused, Err(WriteError::Storage(_))),
                "{refused:?}"
            );
        }
        let refused = submit(&writer, new_session("long-after")).await;
        assert_eq!(
            refused,
            Err(WriteError::Storage("the committer stopped".into()))
        );
    }
}
