//! The writer: group commit for every session. Session actors submit writes; the writer queues
//! them (bounded: a full queue answers `Overloaded` at once, never a hang), hands the committer
//! as many as are waiting (up to a batch limit) whenever it is free, and answers each submitter
//! only after its transaction committed. Batches form by themselves under load: while one
//! commits, the next accumulates, so an idle server commits at once and a busy one in bulk.
//!
//! The committer is a sync actor on one thread that owns the blocking diesel work. One thread
//! keeps commit order equal to notification-id order and per-session order, on both backends.
//! After each commit the committer publishes the commit's notifications on the
//! [`NotificationFeed`] (before answering anyone): long-polls and SSE streams wake on it and
//! read the new rows from memory, instead of polling the database.
//!
//! On SQLite a third thread, the checkpointer, copies the WAL into the database file after
//! commits (at most every [`CHECKPOINT_INTERVAL`]). A commit checkpoints by itself only once
//! the WAL passes 10,000 pages, and then little is left to copy.

use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::messages::{
    Checkpoint, CommitBatch, GetWriterLoad, SubmitWrite, WriteError, WriterLoad,
};
use crate::config::WriterSettings;
use crate::store::{self, DbPool, NotificationFeed, PooledConnection, SessionWrite, StoreError};

struct Queued {
    write: SessionWrite,
    reply: oneshot::Sender<Result<(), WriteError>>,
}

pub struct Writer {
    committer: Addr<Committer>,
    settings: WriterSettings,
    queue: VecDeque<Queued>,
    /// Writes handed to the committer and not yet answered; they count against the capacity.
    in_flight: usize,
    /// SQLite only.
    checkpoints: Option<Checkpoints>,
}

/// The most often the WAL is checkpointed while commits go on. Each checkpoint fsyncs the
/// database file and copies pages that later commits may change again, so running them
/// back to back would spend the second core on rewriting the same pages.
pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

struct Checkpoints {
    checkpointer: Addr<Checkpointer>,
    running: bool,
    last: std::time::Instant,
}

impl Writer {
    pub fn start(
        pool: DbPool,
        settings: WriterSettings,
        feed: Arc<NotificationFeed>,
        wal_checkpoints: bool,
    ) -> Addr<Writer> {
        let checkpoints = wal_checkpoints.then(|| {
            let pool = pool.clone();
            Checkpoints {
                checkpointer: SyncArbiter::start(1, move || Checkpointer { pool: pool.clone() }),
                running: false,
                last: std::time::Instant::now(),
            }
        });
        let committer = SyncArbiter::start(1, move || Committer::new(pool.clone(), feed.clone()));
        Writer::create(|ctx| {
            // Unbounded mailbox: the bound that matters is `queue_capacity`, answered with 503.
            ctx.set_mailbox_capacity(0);
            Writer {
                committer,
                settings,
                queue: VecDeque::new(),
                in_flight: 0,
                checkpoints,
            }
        })
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight > 0 || self.queue.is_empty() {
            return;
        }
        let take = self.queue.len().min(self.settings.max_batch);
        let (writes, replies): (Vec<_>, Vec<_>) =
            self.queue.drain(..take).map(|q| (q.write, q.reply)).unzip();
        self.in_flight = replies.len();
        self.committer
            .send(CommitBatch(writes))
            .into_actor(self)
            .map(move |result, writer, ctx| {
                let outcome = match result {
                    Ok(Ok(())) => {
                        writer.checkpoint_soon(ctx);
                        Ok(())
                    }
                    Ok(Err(e)) => {
                        log::error!("commit of {} session writes failed: {e}", replies.len());
                        Err(WriteError::Storage(e.to_string()))
                    }
                    Err(e) => {
                        log::error!("committer unreachable: {e}");
                        Err(WriteError::Storage(e.to_string()))
                    }
                };
                for reply in replies {
                    // A submitter that went away no longer needs the answer.
                    let _ = reply.send(outcome.clone());
                }
                writer.in_flight = 0;
                writer.flush(ctx);
            })
            .spawn(ctx);
    }
}

impl Writer {
    /// Starts a checkpoint unless one is running or the last began under
    /// [`CHECKPOINT_INTERVAL`] ago; then the next commit asks again.
    fn checkpoint_soon(&mut self, ctx: &mut Context<Self>) {
        let Some(checkpoints) = &mut self.checkpoints else {
            return;
        };
        if checkpoints.running || checkpoints.last.elapsed() < CHECKPOINT_INTERVAL {
            return;
        }
        checkpoints.running = true;
        checkpoints.last = std::time::Instant::now();
        checkpoints
            .checkpointer
            .send(Checkpoint)
            .into_actor(self)
            .map(|_, writer, _| {
                if let Some(checkpoints) = &mut writer.checkpoints {
                    checkpoints.running = false;
                }
            })
            .spawn(ctx);
    }
}

impl Actor for Writer {
    type Context = Context<Self>;
}

/// Queue a write; the answer comes after its commit, or at once when the queue is full.
impl Handler<SubmitWrite> for Writer {
    type Result = ResponseFuture<Result<(), WriteError>>;

    fn handle(&mut self, msg: SubmitWrite, ctx: &mut Context<Self>) -> Self::Result {
        if self.queue.len() + self.in_flight >= self.settings.queue_capacity {
            return Box::pin(async { Err(WriteError::Overloaded) });
        }
        let (reply, answer) = oneshot::channel();
        self.queue.push_back(Queued {
            write: msg.0,
            reply,
        });
        self.flush(ctx);
        Box::pin(async move {
            answer
                .await
                .unwrap_or_else(|_| Err(WriteError::Storage("the writer stopped".into())))
        })
    }
}

/// Report how full the queue is.
impl Handler<GetWriterLoad> for Writer {
    type Result = WriterLoad;

    fn handle(&mut self, _: GetWriterLoad, _: &mut Context<Self>) -> WriterLoad {
        WriterLoad {
            queued: self.queue.len() + self.in_flight,
            capacity: self.settings.queue_capacity,
        }
    }
}

/// Runs the group-commit transactions on its own thread.
pub struct Committer {
    pool: DbPool,
    /// The connection commits run on, kept between batches so its page cache stays warm;
    /// dropped after a failure so the next batch starts on a fresh one.
    conn: Option<PooledConnection>,
    /// When `conn` last committed: one idle for longer is pinged first, as the pool does with
    /// its connections, so a database restart costs no failed batch.
    last_commit: std::time::Instant,
    /// The id the next notification gets; `None` after a failure, re-read from the database,
    /// because a failed commit may leave us unsure what was written.
    next_notification_id: Option<i64>,
    /// Where committed notifications are published.
    feed: Arc<NotificationFeed>,
}

impl Actor for Committer {
    type Context = SyncContext<Self>;
}

/// Commit a batch in one transaction.
impl Handler<CommitBatch> for Committer {
    type Result = Result<(), StoreError>;

    fn handle(&mut self, msg: CommitBatch, _: &mut SyncContext<Self>) -> Self::Result {
        let result = self.commit(msg.0);
        if result.is_err() {
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
}

impl Committer {
    fn new(pool: DbPool, feed: Arc<NotificationFeed>) -> Self {
        Self {
            pool,
            conn: None,
            last_commit: std::time::Instant::now(),
            next_notification_id: None,
            feed,
        }
    }

    /// Commits `writes` and publishes their notifications.
    fn commit(&mut self, writes: Vec<SessionWrite>) -> Result<(), StoreError> {
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
        self.last_commit = std::time::Instant::now();
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let mut conn = self.pool.get()?;
                store::prepare_writer_connection(&mut conn)?;
                self.conn.insert(conn)
            }
        };
        let next = match self.next_notification_id {
            Some(next) => next,
            None => store::notifications::max_id(conn)? + 1,
        };
        crate::metrics::BATCH_WRITES.observe(writes.len() as f64);
        crate::metrics::BATCH_EVENTS
            .observe(writes.iter().map(|w| w.events.len()).sum::<usize>() as f64);
        let started = std::time::Instant::now();
        let result = store::commit_batch(conn, writes, next);
        crate::metrics::COMMIT_SECONDS.observe(started.elapsed().as_secs_f64());
        let committed = result?;
        self.next_notification_id = Some(committed.next_id);
        self.feed.publish(next, committed.notifications);
        Ok(())
    }
}

/// Runs SQLite WAL checkpoints on their own thread, beside the committer.
pub struct Checkpointer {
    pool: DbPool,
}

impl Actor for Checkpointer {
    type Context = SyncContext<Self>;
}

impl Handler<Checkpoint> for Checkpointer {
    type Result = ();

    fn handle(&mut self, _: Checkpoint, _: &mut SyncContext<Self>) {
        let done = store::with_connection(&self.pool, store::checkpoint);
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
