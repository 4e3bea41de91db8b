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

/// A page of the scope's sessions, newest activity first, strictly after `after`: at most
/// `limit`, and as many as fit in `max_bytes` of metadata (see [`super::page`]). `true` when
/// more follow.
pub fn page(
    conn: &mut DbConnection,
    scope: &str,
    status: Option<&str>,
    after: Option<&ActivityCursor>,
    limit: i64,
    max_bytes: usize,
) -> QueryResult<(Vec<SessionRow>, bool)> {
    let size = super::page::octet_length(conn, "metadata");
    macro_rules! selected {
        ($c:ident, $select:expr, $limit:expr) => {{
            let mut query = dsl::sessions
                .filter(dsl::scope.eq(scope))
                .select($select)
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
                .limit($limit)
                .load($c)
        }};
    }
    // One more than the page: whether more follow.
    let sizes: Vec<i64> = with_backend!(&mut *conn, |c| selected!(
        c,
        diesel::dsl::sql::<diesel::sql_types::BigInt>(&size),
        limit + 1
    ))?;
    super::page::within(&sizes, limit as usize, max_bytes, |fit| {
        with_backend!(conn, |c| selected!(c, SessionRow::as_select(), fit))
    })
}
