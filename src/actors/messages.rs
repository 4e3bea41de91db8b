//! The actor protocol in one place: every message, who sends it to whom, and its reply. What
//! a session is asked to do travels as one of these: a [`Queued`] operation (see
//! `session::commands`, one type per operation) inside [`Deliver`] and [`Enqueue`].
//!
//! ```text
//!                    (one shard of SessionHandle)
//! HTTP ──Deliver──► Registry ──Enqueue──► SessionActor ──Writer::submit──► commit queue ──► Committer
//!  ▲                   ▲  ──Shutdown──►   │    │        (a handle: no       (Drain wakes   (sync thread: takes
//!  │                   │                  │    │         thread between)    it)            batches, answers)
//!  │                   └─ Passivate / SessionStopped ─┘
//!  └──────── the answer, on the operation's reply channel, after the commit ───┘
//! ```

use std::sync::Arc;

use actix::prelude::*;

use super::session::commands::Queued;
use crate::domain::session::Session;

pub use super::error::SessionError;
pub use super::key::SessionKey;

// ---------------------------------------------------------------------------------------------
// HTTP (through SessionHandle) → Registry → SessionActor

/// Queue an operation at the session actor of `key`, starting the actor if needed; the
/// registry forwards in arrival order. The caller's answer comes on the operation's own reply
/// channel, straight from the session actor. With `only_if_live`, the operation comes back
/// (`Err`) when the session has no live actor, and no actor is started: for operations on
/// sessions that must already exist, so that requests for unknown sessions cost no actor.
pub(crate) struct Deliver {
    pub key: SessionKey,
    pub queued: Queued,
    pub only_if_live: bool,
}

impl Message for Deliver {
    type Result = Result<(), Queued>;
}

/// Registry → SessionActor: an operation for your queue. The actor counts these, and asks to
/// be passivated with that count, so the registry can tell whether anything it forwarded is
/// still on its way (see [`Passivate`]).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Enqueue(pub Queued);

/// The committed state of a session from its live actor, sparing the database a read. The
/// registry answers `None` when no actor is live (the caller then reads the database).
#[derive(Message)]
#[rtype(result = "Option<Option<Session>>")]
pub struct PeekSession {
    pub key: SessionKey,
}

/// Registry → SessionActor: your committed session (`Some(None)`: it does not exist), as of
/// a moment after this message arrived; `None` when the actor stopped first (read the
/// database).
#[derive(Message)]
#[rtype(result = "Option<Option<Session>>")]
pub struct GetSnapshot;

/// How many session actors are live (for metrics and tests).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct LiveSessionCount;

/// The registry is over its cap of live actors and this one is among the least recently used:
/// if idle, ask to be passivated now (as [`Sweep`] would after the idle timeout).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Evict;

/// Start the session actor, so that its deadlines fire (sent by the registry for
/// [`WakeAt`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake;

/// Start the session's actor at `at` (milliseconds since the epoch; at once when past): at
/// start-up for sessions with pending interactions, and for actors passivated while they
/// had deadlines. The registry keeps only this timer, not the actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WakeAt {
    pub key: SessionKey,
    pub at: i64,
}

/// Registry → SessionActor: you have been passivated; finish what you hold, then stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Periodic housekeeping, sent by the registry to every live actor: drop waiters whose
/// callers left, report a write stuck in flight, ask to be passivated when idle long enough.
/// One registry timer instead of one per actor (a timer cost each idle actor ~130 bytes).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Sweep;

/// How often every live actor is swept: often enough that an idle actor stops within a
/// quarter of its idle timeout after it, and a stuck write is reported within seconds.
pub fn sweep_interval(idle_timeout: std::time::Duration) -> std::time::Duration {
    (idle_timeout / 4).clamp(
        std::time::Duration::from_millis(50),
        std::time::Duration::from_secs(5),
    )
}

// ---------------------------------------------------------------------------------------------
// SessionActor → Registry

/// "I have been idle long enough": the registry stops routing to this generation and replies
/// with [`Shutdown`], which lands behind every message already forwarded.
///
/// `received` is how many forwarded messages the actor had received when it found itself
/// idle. The registry passivates only if that is every message it forwarded: one still in the
/// mailbox (sent just before this request was handled) may arm a deadline or a long poll, and
/// the actor would then drain for as long as those run while its successor, and every request
/// to the session, waited. Refused, the actor asks again at a later sweep. `None` skips the
/// check: tests use it to force a passivation while the actor is busy.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Passivate {
    pub key: Arc<SessionKey>,
    pub generation: u64,
    pub received: Option<u64>,
    /// The earliest deadline of the actor's pending interactions: the registry wakes the
    /// session then (see [`WakeAt`]).
    pub wake_at: Option<i64>,
}

/// "I have stopped" (passivated, crashed or panicked): the registry forgets this generation,
/// and a successor waiting for it may load. Sent when the actor is dropped, after which nothing
/// of it runs; it never has a write in flight when it stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionStopped {
    pub key: Arc<SessionKey>,
    pub generation: u64,
}

// ---------------------------------------------------------------------------------------------
// Writer → Committer

/// Why a write submitted to the writer was not committed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("the write queue is full")]
    Overloaded,
    #[error("{0}")]
    Storage(String),
    /// Planned under a partition lease this node no longer holds at that epoch.
    #[error("the partition's lease was lost")]
    Fenced,
}

/// Writes are waiting in the commit queue and the committer is idle: commit until the queue
/// is empty (sent to the sync committer thread). Each write is answered by the committer
/// itself after its commit; the reply to this message only tells the submitter that woke it
/// that the committer is still there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

/// Copy committed WAL pages into the SQLite file (sent to the checkpointer thread).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Checkpoint;
