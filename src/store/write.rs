//! The group-commit transaction: many sessions' writes (session rows, events, notifications)
//! committed together, all or nothing. Notification ids are assigned here, by the single
//! committer, so they increase in commit order. The statements themselves are in `statements`.

use diesel::Connection;

use super::models::{EventRow, InteractionRow, NotificationRow, SearchRow, SessionRow};
use super::{statements, DbConnection};

/// A notification waiting for its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    pub kind: &'static str,
    pub at: i64,
    /// The type-specific fields, a JSON object serialized.
    pub body: String,
}

/// What one session actor asks to commit for one group of its requests.
#[derive(Clone, Debug)]
pub struct SessionWrite {
    /// The session row as it stands after the group.
    pub session: SessionRow,
    /// The row is new: insert rather than update.
    pub create: bool,
    pub events: Vec<EventRow>,
    /// One per event, in the same order.
    pub search: Vec<SearchRow>,
    /// Interactions created by the group.
    pub new_interactions: Vec<InteractionRow>,
    /// Interactions the group changed, as they stand after it.
    pub changed_interactions: Vec<InteractionRow>,
    pub notifications: Vec<NewNotification>,
}

impl SessionWrite {
    /// The session row alone (inserted when `create`, else updated): the rows and
    /// notifications that go with it are added to the returned value.
    pub fn new(session: SessionRow, create: bool) -> Self {
        Self {
            session,
            create,
            events: Vec::new(),
            search: Vec::new(),
            new_interactions: Vec::new(),
            changed_interactions: Vec::new(),
            notifications: Vec::new(),
        }
    }
}

/// What a committed batch leaves behind.
#[derive(Debug)]
pub struct Committed {
    /// The id the next notification gets.
    pub next_id: i64,
    /// The batch's notifications as stored, ids ascending.
    pub notifications: Vec<NotificationRow>,
}

/// Commits `writes` in one transaction, numbering notifications from `next_notification_id`.
/// On error nothing was stored, and the writes are still the caller's to retry.
pub fn commit_batch(
    conn: &mut DbConnection,
    writes: &[SessionWrite],
    next_notification_id: i64,
) -> Result<Committed, diesel::result::Error> {
    let mut notifications = Vec::new();
    let mut next_id = next_notification_id;
    for write in writes {
        for n in &write.notifications {
            notifications.push(NotificationRow {
                id: next_id,
                scope: write.session.scope.clone(),
                session_id: write.session.session_id.clone(),
                kind: n.kind.to_owned(),
                at: n.at,
                body: n.body.clone(),
            });
            next_id += 1;
        }
    }
    let mut rows = statements::BatchRows {
        notifications: notifications.iter().collect(),
        ..Default::default()
    };
    for write in writes {
        if write.create {
            rows.created_sessions.push(&write.session);
        } else {
            rows.updated_sessions.push(&write.session);
        }
        rows.events.extend(&write.events);
        rows.search.extend(&write.search);
        rows.new_interactions.extend(&write.new_interactions);
        rows.changed_interactions
            .extend(&write.changed_interactions);
    }
    match conn {
        // One statement, its own transaction: one round trip.
        DbConnection::Pg(pg) => statements::commit_postgres(pg, &rows)?,
        DbConnection::Sqlite(sqlite) => {
            sqlite.transaction(|tx| statements::write_sqlite(tx, &rows))?
        }
    }
    drop(rows);
    Ok(Committed {
        next_id,
        notifications,
    })
}
