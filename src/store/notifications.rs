//! Queries on the `notifications` outbox.

use diesel::prelude::*;

use super::models::NotificationRow;
use super::schema::notifications::dsl;
use super::{with_backend, DbConnection};

const INSERT_CHUNK: usize = 1000;

/// The highest id written so far; the committer continues from it.
pub fn max_id(conn: &mut DbConnection) -> QueryResult<i64> {
    let max: Option<i64> = with_backend!(conn, |c| dsl::notifications
        .select(diesel::dsl::max(dsl::id))
        .first(c))?;
    Ok(max.unwrap_or(0))
}

pub fn insert_many(conn: &mut DbConnection, rows: &[NotificationRow]) -> QueryResult<usize> {
    let mut inserted = 0;
    for chunk in rows.chunks(INSERT_CHUNK) {
        inserted += with_backend!(&mut *conn, |c| diesel::insert_into(dsl::notifications)
            .values(chunk)
            .execute(c))?;
    }
    Ok(inserted)
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
