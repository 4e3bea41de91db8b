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

/// Whether the session exists, without reading its row.
pub fn exists(conn: &mut DbConnection, scope: &str, session_id: &str) -> QueryResult<bool> {
    with_backend!(conn, |c| diesel::select(diesel::dsl::exists(
        dsl::sessions
            .filter(dsl::scope.eq(scope))
            .filter(dsl::session_id.eq(session_id))
    ))
    .get_result(c))
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
