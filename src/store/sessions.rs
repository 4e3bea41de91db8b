//! Queries on the `sessions` table.

use diesel::prelude::*;

use super::models::SessionRow;
use super::schema::sessions::dsl;
use super::{with_backend, DbConnection};

pub fn find(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
) -> QueryResult<Option<SessionRow>> {
    with_backend!(conn, |c| dsl::sessions
        .filter(dsl::scope.eq(scope))
        .filter(dsl::session_id.eq(session_id))
        .select(SessionRow::as_select())
        .first(c)
        .optional())
}

/// Where a page of the newest-activity-first listing starts: strictly after this key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityCursor {
    pub updated_at: i64,
    pub session_id: String,
}

pub fn list(
    conn: &mut DbConnection,
    scope: &str,
    status: Option<&str>,
    after: Option<&ActivityCursor>,
    limit: i64,
) -> QueryResult<Vec<SessionRow>> {
    with_backend!(conn, |c| {
        let mut query = dsl::sessions
            .filter(dsl::scope.eq(scope))
            .select(SessionRow::as_select())
            .into_boxed();
        if let Some(status) = status {
            query = query.filter(dsl::status.eq(status));
        }
        if let Some(cursor) = after {
            query = query.filter(
                dsl::updated_at.lt(cursor.updated_at).or(dsl::updated_at
                    .eq(cursor.updated_at)
                    .and(dsl::session_id.lt(&cursor.session_id))),
            );
        }
        query
            .order((dsl::updated_at.desc(), dsl::session_id.desc()))
            .limit(limit)
            .load(c)
    })
}

pub fn insert_many(conn: &mut DbConnection, rows: &[SessionRow]) -> QueryResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    with_backend!(conn, |c| diesel::insert_into(dsl::sessions)
        .values(rows)
        .execute(c))
}

/// Writes the new state of existing sessions: one multi-row upsert per chunk instead of one
/// UPDATE per session (a round trip each on PostgreSQL). Rows are whole, so every column takes
/// the new value.
pub fn update_many(conn: &mut DbConnection, rows: &[SessionRow]) -> QueryResult<usize> {
    use diesel::upsert::excluded;
    let mut written = 0;
    // 13 columns × 500 rows stays far below SQLite's bound-parameter limit.
    for chunk in rows.chunks(500) {
        written += with_backend!(&mut *conn, |c| diesel::insert_into(dsl::sessions)
            .values(chunk)
            .on_conflict((dsl::scope, dsl::session_id))
            .do_update()
            .set((
                dsl::status.eq(excluded(dsl::status)),
                dsl::external_conversation_id.eq(excluded(dsl::external_conversation_id)),
                dsl::metadata.eq(excluded(dsl::metadata)),
                dsl::updated_at.eq(excluded(dsl::updated_at)),
                dsl::event_count.eq(excluded(dsl::event_count)),
                dsl::last_seq.eq(excluded(dsl::last_seq)),
                dsl::interactions_pending.eq(excluded(dsl::interactions_pending)),
                dsl::interactions_completed.eq(excluded(dsl::interactions_completed)),
                dsl::interactions_timed_out.eq(excluded(dsl::interactions_timed_out)),
                dsl::interactions_cancelled.eq(excluded(dsl::interactions_cancelled)),
            ))
            .execute(c))?;
    }
    Ok(written)
}
