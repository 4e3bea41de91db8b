//! The writer: group commit for every session. Session actors submit writes; the writer queues
//! them (bounded: a full queue answers `Overloaded` at once, never a hang), hands the committer
//! as many as are waiting (up to a batch limit) whenever it is free, and answers each submitter
//! only after its transaction committed. Batches form by themselves under load: while one
//! commits, the next accumulates, so an idle server commits at once and a busy one in bulk.
//!
//! The committer is a sync actor on one thread that owns the blocking diesel work. One thread
//! keeps commit order equal to notification-id order and per-session order, on both backends.
//! After each commit the writer publishes the newest notification id on a watch channel:
//! long-polls and SSE streams wake on it instead of polling the database.

use std::collections::VecDeque;

use actix::prelude::*;
use tokio::sync::{oneshot, watch};

use super::messages::{CommitBatch, GetWriterLoad, SubmitWrite, WriteError, WriterLoad};
use crate::config::WriterSettings;
use crate::store::{self, DbPool, SessionWrite, StoreError};

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
    /// The newest committed notification id, for whoever waits for news.
    committed: watch::Sender<i64>,
}

impl Writer {
    pub fn start(
        pool: DbPool,
        settings: WriterSettings,
        committed: watch::Sender<i64>,
    ) -> Addr<Writer> {
        let committer = SyncArbiter::start(1, move || Committer::new(pool.clone()));
        Writer::create(|ctx| {
            // Unbounded mailbox: the bound that matters is `queue_capacity`, answered with 503.
            ctx.set_mailbox_capacity(0);
            Writer {
                committer,
                settings,
                queue: VecDeque::new(),
                in_flight: 0,
                committed,
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
                    Ok(Ok(newest)) => {
                        // Only wakes watchers when something new was written.
                        writer.committed.send_if_modified(|current| {
                            let newer = newest > *current;
                            *current = (*current).max(newest);
                            newer
                        });
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
    /// The id the next notification gets; `None` after a failure, re-read from the database,
    /// because a failed commit may leave us unsure what was written.
    next_notification_id: Option<i64>,
}

impl Committer {
    fn new(pool: DbPool) -> Self {
        Self {
            pool,
            next_notification_id: None,
        }
    }
}

impl Actor for Committer {
    type Context = SyncContext<Self>;
}

/// Commit a batch in one transaction.
impl Handler<CommitBatch> for Committer {
    type Result = Result<i64, StoreError>;

    fn handle(&mut self, msg: CommitBatch, _: &mut SyncContext<Self>) -> Self::Result {
        let mut conn = self.pool.get()?;
        let next = match self.next_notification_id {
            Some(next) => next,
            None => store::notifications::max_id(&mut conn)? + 1,
        };
        let started = std::time::Instant::now();
        let result = store::commit_batch(&mut conn, &msg.0, next);
        crate::metrics::COMMIT_SECONDS.observe(started.elapsed().as_secs_f64());
        crate::metrics::BATCH_WRITES.observe(msg.0.len() as f64);
        crate::metrics::BATCH_EVENTS
            .observe(msg.0.iter().map(|w| w.events.len()).sum::<usize>() as f64);
        match result {
            Ok(next) => {
                self.next_notification_id = Some(next);
                Ok(next - 1)
            }
            Err(e) => {
                self.next_notification_id = None;
                Err(e.into())
            }
        }
    }
}
