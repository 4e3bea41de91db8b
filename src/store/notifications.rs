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

/// Notifications of one scope with ids above `after`, oldest first: at most `limit`, and only
/// the leading ones whose bodies fit in `max_bytes` (see [`super::page`]).
pub fn list(
    conn: &mut DbConnection,
    scope: &str,
    after: i64,
    session_id: Option<&str>,
    limit: i64,
    max_bytes: usize,
) -> QueryResult<Vec<NotificationRow>> {
    let size = super::page::octet_length(conn, "body");
    // The same rows, in the same order, twice: their sizes, then those that fit.
    macro_rules! selected {
        ($c:ident, $select:expr, $limit:expr) => {{
            let mut query = dsl::notifications
                .filter(dsl::scope.eq(scope))
                .filter(dsl::id.gt(after))
                .select($select)
                .into_boxed();
            if let Some(session_id) = session_id {
                query = query.filter(dsl::session_id.eq(session_id));
            }
            query.order(dsl::id.asc()).limit($limit).load($c)
        }};
    }
    let sizes: Vec<i64> = with_backend!(conn, |c| selected!(
        c,
        diesel::dsl::sql::<diesel::sql_types::BigInt>(&size),
        limit
    ))?;
    let (rows, _more) = super::page::within(&sizes, sizes.len(), max_bytes, |fit| {
        with_backend!(conn, |c| selected!(c, NotificationRow::as_select(), fit))
    })?;
    Ok(rows)
}
