//! Queries on the `sessions` table.

use std::sync::Mutex;

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

/// Hands out the integer keys of new sessions, each once, in increasing order. A single node
/// counts from one past the highest stored when it started. In cluster mode keys come in
/// blocks reserved in the database ([`super::leases::reserve_session_keys`]): the lease keeper
/// adds a spare block when the current one is half used, so [`SessionKeys::next`] never waits
/// for the database. A key given to a session whose creation never commits is never used.
pub struct SessionKeys(Mutex<KeyBlocks>);

struct KeyBlocks {
    next: i64,
    /// One past the current block's last key (`i64::MAX`: unbounded).
    end: i64,
    /// The block to go on with when the current one is used up.
    spare: Option<(i64, i64)>,
}

impl SessionKeys {
    /// Unbounded, from `next`: one node on its database.
    pub fn starting_at(next: i64) -> Self {
        Self::in_block(next, i64::MAX)
    }

    /// The block `start..end` (end exclusive), reserved for this node.
    pub fn in_block(start: i64, end: i64) -> Self {
        Self(Mutex::new(KeyBlocks {
            next: start,
            end,
            spare: None,
        }))
    }

    pub fn next(&self) -> i64 {
        let mut blocks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if blocks.next >= blocks.end {
            if let Some((start, end)) = blocks.spare.take() {
                (blocks.next, blocks.end) = (start, end);
            } else {
                // No block was reserved in time (the database is unreachable): go on counting.
                // Should another node hold these keys, the creation fails at its commit on
                // the unique key, and is retried; it never mixes two sessions.
                crate::log_limited!(
                    log::Level::Warn,
                    "no block of session keys reserved in time; counting on from {}",
                    blocks.next
                );
            }
        }
        let key = blocks.next;
        blocks.next += 1;
        key
    }

    /// Wants another block: no spare one, and at most half of `block_size` left.
    pub fn wants_block(&self, block_size: i64) -> bool {
        let blocks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        blocks.spare.is_none() && blocks.end.saturating_sub(blocks.next) <= block_size / 2
    }

    /// The block to go on with once the current one is used up.
    pub fn add_block(&self, start: i64, end: i64) {
        let mut blocks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        blocks.spare = Some((start, end));
    }
}

/// The key the next new session gets: one past the highest stored.
pub fn next_key(conn: &mut DbConnection) -> QueryResult<i64> {
    let highest: Option<i64> = with_backend!(conn, |c| dsl::sessions
        .select(diesel::dsl::max(dsl::session_key))
        .first(c))?;
    Ok(highest.unwrap_or(0) + 1)
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
