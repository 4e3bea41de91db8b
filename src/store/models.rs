//! Database rows: what is read from and written to each table, distinct from the domain types
//! and from the HTTP DTOs. JSON payloads are stored as text on both backends.

use diesel::prelude::*;

use super::schema::{events, notifications, sessions};
use super::StoreError;
use crate::domain::ids::SessionId;
use crate::domain::session::{InteractionCounts, Session, SessionStatus};

/// A whole session row; written whole on create and update (the session actor owns the state).
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = sessions)]
#[diesel(treat_none_as_null = true)]
#[diesel(treat_none_as_default_value = false)]
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
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = events)]
// Without this, SQLite batch inserts become one INSERT per row.
#[diesel(treat_none_as_default_value = false)]
pub struct EventRow {
    pub scope: String,
    pub session_id: String,
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

/// A notification in the outbox. `body` holds the type-specific fields as a JSON object.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = notifications)]
#[diesel(treat_none_as_default_value = false)]
pub struct NotificationRow {
    pub id: i64,
    pub scope: String,
    pub session_id: String,
    pub kind: String,
    pub at: i64,
    pub body: String,
}

impl SessionRow {
    pub fn from_session(s: &Session) -> Self {
        Self {
            scope: s.scope.clone(),
            session_id: s.session_id.as_str().to_owned(),
            status: s.status.as_str().to_owned(),
            external_conversation_id: s.external_conversation_id.clone(),
            metadata: serde_json::to_string(&s.metadata).unwrap_or_else(|_| "{}".into()),
            created_at: s.created_at,
            updated_at: s.updated_at,
            event_count: s.event_count,
            last_seq: s.last_seq,
            interactions_pending: s.interactions.pending,
            interactions_completed: s.interactions.completed,
            interactions_timed_out: s.interactions.timed_out,
            interactions_cancelled: s.interactions.cancelled,
        }
    }

    pub fn into_session(self) -> Result<Session, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!(
                "session {}/{}: {what}",
                self.scope, self.session_id
            ))
        };
        let status = SessionStatus::parse(&self.status).ok_or_else(|| corrupt("bad status"))?;
        let session_id = SessionId::parse(&self.session_id).map_err(|_| corrupt("bad id"))?;
        let metadata = serde_json::from_str(&self.metadata).map_err(|_| corrupt("bad metadata"))?;
        Ok(Session {
            scope: self.scope,
            session_id,
            status,
            external_conversation_id: self.external_conversation_id,
            metadata,
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
