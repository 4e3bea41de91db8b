//! Why a session could not do what it was asked: the actors' error type, turned into HTTP
//! once, at the edge (`crate::error`).

use crate::domain::interaction::Interaction;
use crate::domain::ValidationError;

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
        /// The session the interaction belongs to, for the answer that shows it.
        session_id: String,
        interaction: Box<Interaction>,
    },
    /// The write queue is full; nothing was stored.
    #[error("the write queue is full")]
    Overloaded,
    /// The database failed or could not be reached; nothing was stored.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),
    /// This node does not hold the lease of the session's partition (any more); nothing was
    /// stored.
    #[error("this node does not own the session's partition")]
    NotOwner,
    /// The request breaks a rule that only the session's state can check.
    #[error(transparent)]
    Invalid(ValidationError),
}
