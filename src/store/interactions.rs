//! Queries on the `interactions` table.

use diesel::prelude::*;

use super::models::InteractionRow;
use super::schema::events::dsl as ev;
use super::schema::interactions::dsl;
use super::{with_backend, DbConnection};
use crate::domain::interaction::InteractionStatus;

const OPEN: [&str; 2] = ["queued", "pending"];

/// An interaction is open exactly while it has no completion time. Look-ups of open ones also
/// say so, because that is the condition of the partial `interactions_open` index.
fn is_open_status(status: &str) -> bool {
    InteractionStatus::parse(status).is_some_and(InteractionStatus::is_open)
}

pub fn find(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
    interaction_id: &str,
) -> QueryResult<Option<InteractionRow>> {
    with_backend!(conn, |c| dsl::interactions
        .filter(dsl::scope.eq(scope))
        .filter(dsl::session_id.eq(session_id))
        .filter(dsl::interaction_id.eq(interaction_id))
        .select(InteractionRow::as_select())
        .first(c)
        .optional())
}

pub fn find_many(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
    ids: &[String],
) -> QueryResult<Vec<InteractionRow>> {
    let mut found = Vec::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<InteractionRow> = with_backend!(&mut *conn, |c| dsl::interactions
            .filter(dsl::scope.eq(scope))
            .filter(dsl::session_id.eq(session_id))
            .filter(dsl::interaction_id.eq_any(chunk))
            .select(InteractionRow::as_select())
            .load(c))?;
        found.extend(rows);
    }
    Ok(found)
}

/// Queued and pending interactions of a session, in creation order.
pub fn open_for_session(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
) -> QueryResult<Vec<InteractionRow>> {
    with_backend!(conn, |c| dsl::interactions
        .filter(dsl::scope.eq(scope))
        .filter(dsl::session_id.eq(session_id))
        .filter(dsl::completed_at.is_null())
        .filter(dsl::status.eq_any(OPEN))
        .order(dsl::position.asc())
        .select(InteractionRow::as_select())
        .load(c))
}

/// The highest creation position in a session (0 when it has none).
pub fn max_position(conn: &mut DbConnection, scope: &str, session_id: &str) -> QueryResult<i64> {
    let max: Option<i64> = with_backend!(conn, |c| dsl::interactions
        .filter(dsl::scope.eq(scope))
        .filter(dsl::session_id.eq(session_id))
        .select(diesel::dsl::max(dsl::position))
        .first(c))?;
    Ok(max.unwrap_or(0))
}

pub fn list(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
    status: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<InteractionRow>> {
    with_backend!(conn, |c| {
        let mut query = dsl::interactions
            .filter(dsl::scope.eq(scope))
            .filter(dsl::session_id.eq(session_id))
            .select(InteractionRow::as_select())
            .into_boxed();
        if let Some(status) = status {
            if is_open_status(status) {
                query = query.filter(dsl::completed_at.is_null());
            }
            query = query.filter(dsl::status.eq(status));
        }
        query.order(dsl::position.asc()).limit(limit).load(c)
    })
}

/// A page of the session's interactions in creation order, after `after_position`: at most
/// `limit`, and as many as fit in `max_bytes` of payloads and results (see [`super::page`]).
/// `true` when more follow.
pub fn page(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
    status: Option<&str>,
    after_position: Option<i64>,
    limit: i64,
    max_bytes: usize,
) -> QueryResult<(Vec<InteractionRow>, bool)> {
    let size = format!(
        "{} + {}",
        super::page::octet_length(conn, "payload"),
        super::page::octet_length(conn, "result")
    );
    macro_rules! selected {
        ($c:ident, $select:expr, $limit:expr) => {{
            let mut query = dsl::interactions
                .filter(dsl::scope.eq(scope))
                .filter(dsl::session_id.eq(session_id))
                .select($select)
                .into_boxed();
            if let Some(status) = status {
                if is_open_status(status) {
                    query = query.filter(dsl::completed_at.is_null());
                }
                query = query.filter(dsl::status.eq(status));
            }
            if let Some(after) = after_position {
                query = query.filter(dsl::position.gt(after));
            }
            query.order(dsl::position.asc()).limit($limit).load($c)
        }};
    }
    // One more than the page: whether more follow.
    let sizes: Vec<i64> = with_backend!(&mut *conn, |c| selected!(
        c,
        diesel::dsl::sql::<diesel::sql_types::BigInt>(&size),
        limit + 1
    ))?;
    super::page::within(&sizes, limit as usize, max_bytes, |fit| {
        with_backend!(conn, |c| selected!(c, InteractionRow::as_select(), fit))
    })
}

/// The creation position of an interaction, if it exists.
pub fn position_of(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
    interaction_id: &str,
) -> QueryResult<Option<i64>> {
    with_backend!(conn, |c| dsl::interactions
        .filter(dsl::scope.eq(scope))
        .filter(dsl::session_id.eq(session_id))
        .filter(dsl::interaction_id.eq(interaction_id))
        .select(dsl::position)
        .first(c)
        .optional())
}

/// Every (scope, session) with a pending interaction, and its earliest deadline: at start-up
/// each session is woken then, so deadlines fire (also those that passed while the server was
/// down) without loading any session before it is needed.
pub fn earliest_deadlines(conn: &mut DbConnection) -> QueryResult<Vec<(String, String, i64)>> {
    let rows: Vec<(String, String, Option<i64>)> = with_backend!(conn, |c| dsl::interactions
        .filter(dsl::completed_at.is_null())
        .filter(dsl::status.eq("pending"))
        .group_by((dsl::scope, dsl::session_id))
        .select((dsl::scope, dsl::session_id, diesel::dsl::min(dsl::deadline)))
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(|(scope, session, deadline)| (scope, session, deadline.unwrap_or(0)))
        .collect())
}

/// How many stored events name each of `ids`.
pub fn event_counts(
    conn: &mut DbConnection,
    scope: &str,
    session_id: &str,
    ids: &[String],
) -> QueryResult<Vec<(Option<String>, i64)>> {
    with_backend!(conn, |c| ev::events
        .filter(super::events::of_session!(scope, session_id))
        .filter(ev::interaction_id.is_not_null())
        .filter(ev::interaction_id.eq_any(ids))
        .group_by(ev::interaction_id)
        .select((ev::interaction_id, diesel::dsl::count_star()))
        .load(c))
}
