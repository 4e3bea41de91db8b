//! Queries on the `notifications` outbox.

use diesel::prelude::*;

use super::models::NotificationRow;
use super::schema::notifications::dsl;
use super::{with_backend, DbConnection};

/// The highest id written so far; the committer continues from it.
pub fn max_id(conn: &mut DbConnection) -> QueryResult<i64> {
    let max: Option<i64> = with_backend!(conn, |c| dsl::notifications
        .select(diesel::dsl::max(dsl::id))
        .first(c))?;
    Ok(max.unwrap_or(0))
}

/// The newest notification id of one scope (0 when it has none): a reader that starts after
/// it sees exactly what comes next.
pub fn latest_id(conn: &mut DbConnection, scope: &str) -> QueryResult<i64> {
    let max: Option<i64> = with_backend!(conn, |c| dsl::notifications
        .filter(dsl::scope.eq(scope))
        .select(diesel::dsl::max(dsl::id))
        .first(c))?;
    Ok(max.unwrap_or(0))
}

/// Notifications of one scope with ids above `after`, oldest first.
pub fn list(
    conn: &mut DbConnection,
    scope: &str,
    after: i64,
    session_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<NotificationRow>> {
    with_backend!(conn, |c| {
        let mut query = dsl::notifications
            .filter(dsl::scope.eq(scope))
            .filter(dsl::id.gt(after))
            .select(NotificationRow::as_select())
            .into_boxed();
        if let Some(session_id) = session_id {
            query = query.filter(dsl::session_id.eq(session_id));
        }
        query.order(dsl::id.asc()).limit(limit).load(c)
    })
}
