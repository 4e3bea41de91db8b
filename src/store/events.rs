//! Queries on the `events` table.

use diesel::prelude::*;

use super::models::EventRow;
use super::schema::events::dsl;
use super::{with_backend, DbConnection};

/// The events of one session: those stored under its key, found through its row (a scalar
/// subquery, run once per statement).
macro_rules! of_session {
    ($scope:expr, $session_id:expr) => {
        $crate::store::schema::events::session_key.nullable().eq(
            $crate::store::schema::sessions::table
                .filter($crate::store::schema::sessions::scope.eq($scope))
                .filter($crate::store::schema::sessions::session_id.eq($session_id))
                .select($crate::store::schema::sessions::session_key)
                .single_value(),
        )
    };
}
pub(crate) use of_session;

/// Rows per INSERT statement: 12 columns × 500 stays far below SQLite's bound-parameter limit.
const INSERT_CHUNK: usize = 500;

/// diesel's multi-row `INSERT … VALUES`, in chunks. The group commit has its own statements
/// (`statements`); this is the benchmark's raw limit, which is defined as exactly this.
pub fn insert_many(conn: &mut DbConnection, rows: &[EventRow]) -> QueryResult<usize> {
    let mut inserted = 0;
    for chunk in rows.chunks(INSERT_CHUNK) {
        inserted += with_backend!(&mut *conn, |c| diesel::insert_into(dsl::events)
            .values(chunk)
            .execute(c))?;
    }
    Ok(inserted)
}

/// Filters of the event listing; every field is optional.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub event_type: Option<String>,
    pub interaction_id: Option<String>,
    pub after_seq: Option<i64>,
    pub limit: i64,
    pub offset: i64,
    pub descending: bool,
}

/// The events `filter` selects, as many as fit in `max_bytes` (see [`super::page`]); `true`
/// when more would have followed but did not fit.
pub fn list(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
    filter: &EventFilter,
    max_bytes: usize,
) -> QueryResult<(Vec<EventRow>, bool)> {
    let size = super::page::octet_length(conn, "data");
    // The same rows, in the same order, twice: their sizes, then those that fit.
    macro_rules! selected {
        ($c:ident, $select:expr, $limit:expr) => {{
            let mut query = dsl::events
                .filter(of_session!(scope, session_id))
                .select($select)
                .into_boxed();
            if let Some(event_type) = &filter.event_type {
                query = query.filter(dsl::event_type.eq(event_type));
            }
            if let Some(interaction_id) = &filter.interaction_id {
                query = query
                    .filter(dsl::interaction_id.is_not_null())
                    .filter(dsl::interaction_id.eq(interaction_id));
            }
            if let Some(after_seq) = filter.after_seq {
                query = query.filter(dsl::seq.gt(after_seq));
            }
            query = if filter.descending {
                query.order(dsl::seq.desc())
            } else {
                query.order(dsl::seq.asc())
            };
            query.limit($limit).offset(filter.offset).load($c)
        }};
    }
    let sizes: Vec<i64> = with_backend!(&mut *conn, |c| selected!(
        c,
        diesel::dsl::sql::<diesel::sql_types::BigInt>(&size),
        filter.limit
    ))?;
    super::page::within(&sizes, sizes.len(), max_bytes, |fit| {
        with_backend!(conn, |c| selected!(c, EventRow::as_select(), fit))
    })
}

/// The dedup keys of the session's newest `limit` events, newest first, with their seqs.
pub fn recent_dedup_keys(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
    limit: i64,
) -> QueryResult<Vec<(String, i64)>> {
    with_backend!(conn, |c| dsl::events
        .filter(of_session!(scope, session_id))
        .order(dsl::seq.desc())
        .limit(limit)
        .select((dsl::dedup_key, dsl::seq))
        .load(c))
}

/// Which of `keys` the session already stored, with their seqs.
pub fn find_dedup_keys(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
    keys: &[String],
) -> QueryResult<Vec<(String, i64)>> {
    let mut found = Vec::new();
    for chunk in keys.chunks(INSERT_CHUNK) {
        let rows: Vec<(String, i64)> = with_backend!(&mut *conn, |c| dsl::events
            .filter(of_session!(scope, session_id))
            .filter(dsl::dedup_key.eq_any(chunk))
            .select((dsl::dedup_key, dsl::seq))
            .load(c))?;
        found.extend(rows);
    }
    Ok(found)
}

/// The highest client `sequence` the session has stored.
pub fn max_sequence(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
) -> QueryResult<Option<i64>> {
    with_backend!(conn, |c| dsl::events
        .filter(of_session!(scope, session_id))
        .filter(dsl::sequence.is_not_null())
        .select(diesel::dsl::max(dsl::sequence))
        .first(c))
}

/// Whether any stored event of the session names an interaction (a probe of the partial
/// `events_by_interaction` index, so it stays cheap however long the session is).
pub fn any_names_interaction(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
) -> QueryResult<bool> {
    let found: Option<i64> = with_backend!(conn, |c| dsl::events
        .filter(of_session!(scope, session_id))
        .filter(dsl::interaction_id.is_not_null())
        .select(dsl::seq)
        .first(c)
        .optional())?;
    Ok(found.is_some())
}

/// Which of `sequences` the session has stored, with the dedup key of the event holding each.
pub fn find_sequences(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
    sequences: &[i64],
) -> QueryResult<Vec<(Option<i64>, String)>> {
    let mut found = Vec::new();
    for chunk in sequences.chunks(INSERT_CHUNK) {
        let rows: Vec<(Option<i64>, String)> = with_backend!(&mut *conn, |c| dsl::events
            .filter(of_session!(scope, session_id))
            .filter(dsl::sequence.is_not_null())
            .filter(dsl::sequence.eq_any(chunk))
            .select((dsl::sequence, dsl::dedup_key))
            .load(c))?;
        found.extend(rows);
    }
    Ok(found)
}
