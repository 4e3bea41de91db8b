//! Database rows: what is read from and written to each table, distinct from the domain types
//! and from the HTTP DTOs. JSON payloads are stored as text on both backends.

use diesel::prelude::*;

use super::schema::{event_search, events, interactions, notifications, sessions};
use super::StoreError;
use crate::domain::ids::{InteractionId, SessionId};
use crate::domain::interaction::{CompletedBy, DecidedBy, Interaction, InteractionStatus, Outcome};
use crate::domain::json::JsonText;
use crate::domain::session::{InteractionCounts, Session, SessionStatus};

/// A whole session row; written whole on create and update (the session actor owns the state).
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub scope: String,
    pub session_id: String,
    pub status: String,
    pub external_conversation_id: Option<String>,
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub event_count: i64,
    pub last_seq: i64,
    pub interactions_pending: i64,
    pub interactions_completed: i64,
    pub interactions_timed_out: i64,
    pub interactions_cancelled: i64,
    /// The session's integer key, assigned when it is created; its events are stored under it.
    pub session_key: i64,
    /// [`crate::domain::activity::SessionFacts`] as a JSON object.
    pub facts: String,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = events)]
// Without this, SQLite batch inserts become one INSERT per row.
#[diesel(treat_none_as_default_value = false)]
pub struct EventRow {
    /// The key of the session's row ([`SessionRow::session_key`]).
    pub session_key: i64,
    pub seq: i64,
    pub event_id: Option<String>,
    pub dedup_key: String,
    pub event_type: String,
    pub occurred_at_us: i64,
    pub received_at: i64,
    pub interaction_id: Option<String>,
    pub sequence: Option<i64>,
    pub out_of_order: bool,
    pub data: String,
}

/// What an event gives search and the activity view ([`crate::domain::search::EventWords`]),
/// written with it.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = event_search)]
pub struct SearchRow {
    pub scope: String,
    pub session_key: i64,
    pub seq: i64,
    pub received_at: i64,
    pub event_type: String,
    pub tool: Option<String>,
    pub words: String,
}

/// A notification in the outbox. `body` holds the type-specific fields as a JSON object.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = notifications)]
pub struct NotificationRow {
    pub id: i64,
    pub scope: String,
    pub session_id: String,
    pub kind: String,
    pub at: i64,
    pub body: String,
}

impl SessionRow {
    /// The row of a session just created at `at` under `session_key`: active, with no
    /// events, interactions or metadata yet.
    pub fn new_active(scope: &str, session_id: &str, session_key: i64, at: i64) -> Self {
        Self {
            session_key,
            scope: scope.to_owned(),
            session_id: session_id.to_owned(),
            status: "active".into(),
            external_conversation_id: None,
            metadata: "{}".into(),
            created_at: at,
            updated_at: at,
            event_count: 0,
            last_seq: 0,
            interactions_pending: 0,
            interactions_completed: 0,
            interactions_timed_out: 0,
            interactions_cancelled: 0,
            facts: "{}".into(),
        }
    }

    /// The row of `s`. Metadata never changes after creation, so only a `created` session's
    /// row carries it; an update leaves the stored metadata alone (see `statements.rs`), and
    /// a session with megabytes of it is not rewritten on every event.
    pub fn from_session(s: &Session, session_key: i64, created: bool) -> Self {
        Self {
            session_key,
            scope: s.scope.clone(),
            session_id: s.session_id.as_str().to_owned(),
            status: s.status.as_str().to_owned(),
            external_conversation_id: s.external_conversation_id.clone(),
            metadata: if created {
                s.metadata.as_str().to_owned()
            } else {
                String::new()
            },
            created_at: s.created_at,
            updated_at: s.updated_at,
            event_count: s.event_count,
            last_seq: s.last_seq,
            interactions_pending: s.interactions.pending,
            interactions_completed: s.interactions.completed,
            interactions_timed_out: s.interactions.timed_out,
            interactions_cancelled: s.interactions.cancelled,
            facts: s.facts.to_json(),
        }
    }

    pub fn into_session(mut self) -> Result<Session, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!(
                "session {}/{}: {what}",
                self.scope, self.session_id
            ))
        };
        let status = SessionStatus::parse(&self.status).ok_or_else(|| corrupt("bad status"))?;
        let session_id = SessionId::parse(&self.session_id).map_err(|_| corrupt("bad id"))?;
        let metadata = JsonText::parse(std::mem::take(&mut self.metadata))
            .map_err(|_| corrupt("bad metadata"))?;
        Ok(Session {
            scope: self.scope,
            session_id,
            status,
            external_conversation_id: self.external_conversation_id,
            metadata,
            facts: crate::domain::activity::SessionFacts::from_json(&self.facts),
            created_at: self.created_at,
            updated_at: self.updated_at,
            event_count: self.event_count,
            last_seq: self.last_seq,
            interactions: InteractionCounts {
                pending: self.interactions_pending,
                completed: self.interactions_completed,
                timed_out: self.interactions_timed_out,
                cancelled: self.interactions_cancelled,
            },
        })
    }
}

/// An interaction row. `result` is `None` while the result slot is empty.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = interactions)]
pub struct InteractionRow {
    pub scope: String,
    pub session_id: String,
    pub interaction_id: String,
    pub kind: String,
    pub payload: String,
    pub status: String,
    pub outcome: Option<String>,
    pub result: Option<String>,
    pub completed_by: Option<String>,
    pub position: i64,
    pub created_at: i64,
    pub timeout_ms: i64,
    pub deadline: Option<i64>,
    pub completed_at: Option<i64>,
    pub event_count: i64,
    pub decided_by: Option<String>,
}

impl InteractionRow {
    /// The row of `i`. The payload never changes after creation, so only a `created`
    /// interaction's row carries it; a change leaves the stored payload alone (see
    /// `statements.rs`).
    pub fn from_interaction(scope: &str, session_id: &str, i: &Interaction, created: bool) -> Self {
        Self {
            scope: scope.to_owned(),
            session_id: session_id.to_owned(),
            interaction_id: i.id.as_str().to_owned(),
            kind: i.kind.clone(),
            payload: if created {
                i.payload.as_str().to_owned()
            } else {
                String::new()
            },
            status: i.status.as_str().to_owned(),
            outcome: i.outcome.map(|o| o.as_str().to_owned()),
            result: i.result.as_ref().map(|r| r.as_str().to_owned()),
            completed_by: i.completed_by.map(|c| c.as_str().to_owned()),
            position: i.position,
            created_at: i.created_at,
            timeout_ms: i.timeout_ms,
            deadline: i.deadline,
            completed_at: i.completed_at,
            event_count: i.event_count,
            decided_by: i.decided_by.as_ref().map(|d| d.as_str().to_owned()),
        }
    }

    pub fn into_interaction(mut self) -> Result<Interaction, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!(
                "interaction {}/{}/{}: {what}",
                self.scope, self.session_id, self.interaction_id
            ))
        };
        let status = InteractionStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?;
        let outcome = match &self.outcome {
            None => None,
            Some(o) => Some(Outcome::parse(o).ok_or_else(|| corrupt("outcome"))?),
        };
        let completed_by = match &self.completed_by {
            None => None,
            Some(c) => Some(CompletedBy::parse(c).ok_or_else(|| corrupt("completed_by"))?),
        };
        let result = match self.result.take() {
            None => None,
            Some(r) => Some(JsonText::parse(r).map_err(|_| corrupt("result"))?),
        };
        let decided_by = match self.decided_by.take() {
            None => None,
            Some(d) => Some(DecidedBy::parse(d).map_err(|_| corrupt("decided_by"))?),
        };
        let payload = std::mem::take(&mut self.payload);
        Ok(Interaction {
            id: InteractionId::parse(&self.interaction_id).map_err(|_| corrupt("id"))?,
            payload: JsonText::parse(payload).map_err(|_| corrupt("payload"))?,
            kind: self.kind,
            status,
            outcome,
            result,
            completed_by,
            decided_by,
            position: self.position,
            created_at: self.created_at,
            timeout_ms: self.timeout_ms,
            deadline: self.deadline,
            completed_at: self.completed_at,
            event_count: self.event_count,
        })
    }
}
