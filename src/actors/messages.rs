//! The whole actor protocol in one place: every message, who sends it to whom, and its reply.
//!
//! ```text
//!                      (one shard of SessionHandle)
//! HTTP ──ToSession<M>──► Registry ──M──► SessionActor ──Writer::submit──► commit queue ──► Committer
//!                           ▲  ──Shutdown──►   │          (a handle: no       (Drain wakes   (sync thread: takes
//!                           │                  │           thread between)    it)            batches, answers)
//!                           └─ Passivate / SessionStopped ─┘
//! ```

use std::sync::Arc;

use actix::prelude::*;

use crate::domain::event::NewEvent;
use crate::domain::ids::{InteractionId, SessionId};
use crate::domain::interaction::{Decision, Interaction};
use crate::domain::session::Session;
use crate::domain::ValidationError;

/// Which session a message is for: session ids are unique per scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub scope: String,
    pub session_id: SessionId,
}

/// Why a session could not do what it was asked.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no session {0} in this scope")]
    SessionNotFound(String),
    #[error("no interaction {0} in this session")]
    InteractionNotFound(String),
    /// A decision or cancel that the interaction's state refuses (HTTP 409).
    #[error("{detail}")]
    Conflict {
        code: &'static str,
        detail: String,
        interaction: Box<Interaction>,
    },
    /// The write queue is full; nothing was stored.
    #[error("the write queue is full")]
    Overloaded,
    /// The database failed or could not be reached; nothing was stored.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),
    /// The request breaks a rule that only the session's state can check.
    #[error(transparent)]
    Invalid(ValidationError),
}

// ---------------------------------------------------------------------------------------------
// HTTP → Registry

/// Delivers `msg` to the session actor of `key`, starting it if needed. The registry forwards
/// in arrival order; the reply is the session actor's, or a mailbox error when the actor
/// stopped (crashed) before answering.
pub struct ToSession<M> {
    pub key: SessionKey,
    pub msg: M,
}

impl<M> Message for ToSession<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    type Result = Result<M::Result, MailboxError>;
}

/// Like [`ToSession`], but only to a live actor: when the session has none, the message comes
/// back (`Err`) and no actor is started. For operations on sessions that must already exist,
/// so that requests for unknown sessions cost no actor.
pub struct IfLive<M> {
    pub key: SessionKey,
    pub msg: M,
}

impl<M> Message for IfLive<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    type Result = Result<Result<M::Result, MailboxError>, M>;
}

// ---------------------------------------------------------------------------------------------
// Registry → SessionActor

/// A message the registry forwards, as the actor receives it: the actor counts them, and asks
/// to be passivated with that count, so the registry can tell whether anything it forwarded
/// is still on its way (see [`Passivate`]).
pub struct Forwarded<M>(pub M);

impl<M> Message for Forwarded<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    type Result = M::Result;
}

/// The committed state of a session from its live actor, sparing the database a read. The
/// registry answers `None` when no actor is live (the caller then reads the database).
#[derive(Message)]
#[rtype(result = "Option<Option<Session>>")]
pub struct PeekSession {
    pub key: SessionKey,
}

/// Registry → SessionActor: your committed session (`None`: it does not exist).
#[derive(Message)]
#[rtype(result = "Option<Session>")]
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

// ---------------------------------------------------------------------------------------------
// Registry → SessionActor (through ToSession)

/// A message for a session actor, forwarded by the registry.
pub trait SessionMessage: Message + Send + 'static
where
    Self::Result: Send,
{
    /// It may be the first message of a session (and so start an actor when the session is
    /// unknown). One that may not is answered "not found" without starting an actor when the
    /// session does not exist.
    const MAY_CREATE: bool;

    /// It may be held back for a gap in client `sequence` numbers (up to the reorder gap)
    /// before it is even planned, so its caller waits that much longer for an answer.
    fn may_wait_for_a_gap(&self) -> bool {
        false
    }
}

macro_rules! session_messages {
    ($($message:ty => $may_create:expr),* $(,)?) => {$(
        impl SessionMessage for $message {
            const MAY_CREATE: bool = $may_create;
        }
    )*};
}

impl SessionMessage for AppendEvents {
    const MAY_CREATE: bool = true;

    fn may_wait_for_a_gap(&self) -> bool {
        self.events.iter().any(|e| e.sequence.is_some())
    }
}

session_messages!(
    EnsureSession => true,
    // Sent at start-up for sessions known to exist.
    Wake => true,
    CreateInteraction => false,
    ActOnInteraction => false,
    WaitForInteraction => false,
    NextCommand => false,
);
#[cfg(any(test, feature = "test-hooks"))]
session_messages!(PanicForTest => true);

/// Create the session if it does not exist (PUT). `metadata` is used only on creation.
#[derive(Message)]
#[rtype(result = "Result<EnsureOutcome, SessionError>")]
pub struct EnsureSession {
    pub metadata: Option<crate::domain::json::JsonText>,
}

#[derive(Clone, Debug)]
pub struct EnsureOutcome {
    pub session: Session,
    /// This call created it (201) rather than found it (200).
    pub created: bool,
}

/// Store a validated batch of events (creating the session if needed), atomically.
#[derive(Message)]
#[rtype(result = "Result<AppendOutcome, SessionError>")]
pub struct AppendEvents {
    pub events: Vec<NewEvent>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    pub accepted: usize,
    pub duplicates: usize,
    pub event_count: i64,
    pub last_seq: i64,
    /// One per request event, in request order.
    pub events: Vec<EventAck>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventAck {
    /// The stored seq; for a duplicate, the seq of the stored original.
    pub seq: i64,
    pub duplicate: bool,
}

/// Create an interaction (idempotent by id): an approval/question (`pending` at once) or a
/// command (`queued` until handed out by [`NextCommand`]).
#[derive(Message)]
#[rtype(result = "Result<(Interaction, bool), SessionError>")]
pub struct CreateInteraction {
    pub id: InteractionId,
    pub kind: String,
    pub payload: crate::domain::json::JsonText,
    pub timeout_ms: i64,
    pub queued: bool,
}

/// What a caller asks of an interaction.
#[derive(Clone, Debug)]
pub enum Action {
    Decide(Decision),
    Cancel,
}

/// Apply a result, decision or cancel. The reply says whether this call completed it.
#[derive(Message)]
#[rtype(result = "Result<ActionOutcome, SessionError>")]
pub struct ActOnInteraction {
    pub id: InteractionId,
    pub action: Action,
}

#[derive(Clone, Debug)]
pub struct ActionOutcome {
    pub completed_now: bool,
    pub interaction: Interaction,
}

/// Answer when the interaction is no longer queued or pending. The reply is the receiver of
/// that answer, held by the caller itself: when the caller goes away (a dropped connection)
/// the receiver is dropped with it and the actor sees its waiter is gone.
#[derive(Message)]
#[rtype(result = "Ticket<Interaction>")]
pub struct WaitForInteraction {
    pub id: InteractionId,
}

/// Hand out the oldest queued command when no other command is pending, waiting up to `wait`.
/// `None` when none became available in time. Like a wait, the reply is a receiver the caller
/// holds, so a command is never handed to a caller that has gone away.
#[derive(Message)]
#[rtype(result = "Ticket<Option<Interaction>>")]
pub struct NextCommand {
    pub wait: std::time::Duration,
}

/// Where a long wait's answer will arrive; dropping it tells the session actor to stop waiting.
pub type Ticket<T> = tokio::sync::oneshot::Receiver<Result<T, SessionError>>;

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

/// Makes the session actor panic. Only for the test that a panicking actor still releases its
/// successor; nothing in the service sends it, and it cannot be reached over HTTP.
#[cfg(any(test, feature = "test-hooks"))]
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct PanicForTest;

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
