//! PostgreSQL's side of the group commit's bulk writes: one statement text per table whatever
//! the number of rows, each column sent as one array parameter and turned back into rows by
//! `UNNEST`. A multi-row `VALUES` list has a different text for every row count, so diesel
//! cannot keep it prepared: PostgreSQL parsed and planned a statement of some 1,300 parameters
//! in every commit, in an extra round trip, and the committer built its text. The unnest form is
//! prepared once per connection and reused. SQLite keeps the `VALUES` lists (no round trips, and
//! it has no array type).

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel::{PgConnection, QueryResult, RunQueryDsl};

use super::models::{EventRow, InteractionRow, NotificationRow, SessionRow};

/// One column of the rows, as the array bound for it.
enum ColumnArray<'a> {
    Text(Vec<&'a str>),
    NullableText(Vec<Option<&'a str>>),
    BigInt(Vec<i64>),
    NullableBigInt(Vec<Option<i64>>),
    Bool(Vec<bool>),
}

/// `head` `UNNEST($1, $2, …)` `tail`: the statement text depends only on the table, so
/// diesel's statement cache (keyed by the text) keeps it prepared.
struct UnnestStatement<'a> {
    head: &'static str,
    columns: Vec<ColumnArray<'a>>,
    tail: &'static str,
}

impl QueryFragment<Pg> for UnnestStatement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(self.head);
        out.push_sql(" SELECT * FROM UNNEST(");
        for (i, column) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            match column {
                ColumnArray::Text(v) => out.push_bind_param::<Array<Text>, _>(v)?,
                ColumnArray::NullableText(v) => {
                    out.push_bind_param::<Array<Nullable<Text>>, _>(v)?
                }
                ColumnArray::BigInt(v) => out.push_bind_param::<Array<BigInt>, _>(v)?,
                ColumnArray::NullableBigInt(v) => {
                    out.push_bind_param::<Array<Nullable<BigInt>>, _>(v)?
                }
                ColumnArray::Bool(v) => out.push_bind_param::<Array<Bool>, _>(v)?,
            }
        }
        out.push_sql(")");
        out.push_sql(self.tail);
        Ok(())
    }
}

// No static id: the cache key is the statement text, which is fixed per table.
impl QueryId for UnnestStatement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl RunQueryDsl<PgConnection> for UnnestStatement<'_> {}

fn text<'a, R>(rows: &'a [R], field: impl Fn(&'a R) -> &'a str) -> ColumnArray<'a> {
    ColumnArray::Text(rows.iter().map(field).collect())
}

fn nullable_text<'a, R>(
    rows: &'a [R],
    field: impl Fn(&'a R) -> Option<&'a str>,
) -> ColumnArray<'a> {
    ColumnArray::NullableText(rows.iter().map(field).collect())
}

fn bigint<R>(rows: &[R], field: impl Fn(&R) -> i64) -> ColumnArray<'_> {
    ColumnArray::BigInt(rows.iter().map(field).collect())
}

fn nullable_bigint<R>(rows: &[R], field: impl Fn(&R) -> Option<i64>) -> ColumnArray<'_> {
    ColumnArray::NullableBigInt(rows.iter().map(field).collect())
}

fn run(conn: &mut PgConnection, statement: UnnestStatement<'_>, rows: usize) -> QueryResult<usize> {
    if rows == 0 {
        return Ok(0);
    }
    statement.execute(conn)
}

const SESSION_COLUMNS: &str = "INSERT INTO sessions (scope, session_id, status, \
     external_conversation_id, metadata, created_at, updated_at, event_count, last_seq, \
     interactions_pending, interactions_completed, interactions_timed_out, \
     interactions_cancelled)";

fn session_columns(rows: &[SessionRow]) -> Vec<ColumnArray<'_>> {
    vec![
        text(rows, |r| &r.scope),
        text(rows, |r| &r.session_id),
        text(rows, |r| &r.status),
        nullable_text(rows, |r| r.external_conversation_id.as_deref()),
        text(rows, |r| &r.metadata),
        bigint(rows, |r| r.created_at),
        bigint(rows, |r| r.updated_at),
        bigint(rows, |r| r.event_count),
        bigint(rows, |r| r.last_seq),
        bigint(rows, |r| r.interactions_pending),
        bigint(rows, |r| r.interactions_completed),
        bigint(rows, |r| r.interactions_timed_out),
        bigint(rows, |r| r.interactions_cancelled),
    ]
}

/// New sessions: a plain INSERT, so a second creation of one fails the batch loudly.
pub fn insert_sessions(conn: &mut PgConnection, rows: &[SessionRow]) -> QueryResult<usize> {
    let statement = UnnestStatement {
        head: SESSION_COLUMNS,
        columns: session_columns(rows),
        tail: "",
    };
    run(conn, statement, rows.len())
}

/// Existing sessions take every column of their new row but the creation time.
pub fn update_sessions(conn: &mut PgConnection, rows: &[SessionRow]) -> QueryResult<usize> {
    let statement = UnnestStatement {
        head: SESSION_COLUMNS,
        columns: session_columns(rows),
        tail: " ON CONFLICT (scope, session_id) DO UPDATE SET status = EXCLUDED.status, \
               external_conversation_id = EXCLUDED.external_conversation_id, \
               metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at, \
               event_count = EXCLUDED.event_count, last_seq = EXCLUDED.last_seq, \
               interactions_pending = EXCLUDED.interactions_pending, \
               interactions_completed = EXCLUDED.interactions_completed, \
               interactions_timed_out = EXCLUDED.interactions_timed_out, \
               interactions_cancelled = EXCLUDED.interactions_cancelled",
    };
    run(conn, statement, rows.len())
}

pub fn insert_events(conn: &mut PgConnection, rows: &[EventRow]) -> QueryResult<usize> {
    let statement = UnnestStatement {
        head: "INSERT INTO events (scope, session_id, seq, event_id, dedup_key, event_type, \
               occurred_at_us, received_at, interaction_id, sequence, out_of_order, data)",
        columns: vec![
            text(rows, |r| &r.scope),
            text(rows, |r| &r.session_id),
            bigint(rows, |r| r.seq),
            nullable_text(rows, |r| r.event_id.as_deref()),
            text(rows, |r| &r.dedup_key),
            text(rows, |r| &r.event_type),
            bigint(rows, |r| r.occurred_at_us),
            bigint(rows, |r| r.received_at),
            nullable_text(rows, |r| r.interaction_id.as_deref()),
            nullable_bigint(rows, |r| r.sequence),
            ColumnArray::Bool(rows.iter().map(|r| r.out_of_order).collect()),
            text(rows, |r| &r.data),
        ],
        tail: "",
    };
    run(conn, statement, rows.len())
}

const INTERACTION_COLUMNS: &str = "INSERT INTO interactions (scope, session_id, \
     interaction_id, kind, payload, status, outcome, result, completed_by, position, \
     created_at, timeout_ms, deadline, completed_at, event_count)";

fn interaction_columns(rows: &[InteractionRow]) -> Vec<ColumnArray<'_>> {
    vec![
        text(rows, |r| &r.scope),
        text(rows, |r| &r.session_id),
        text(rows, |r| &r.interaction_id),
        text(rows, |r| &r.kind),
        text(rows, |r| &r.payload),
        text(rows, |r| &r.status),
        nullable_text(rows, |r| r.outcome.as_deref()),
        nullable_text(rows, |r| r.result.as_deref()),
        nullable_text(rows, |r| r.completed_by.as_deref()),
        bigint(rows, |r| r.position),
        bigint(rows, |r| r.created_at),
        bigint(rows, |r| r.timeout_ms),
        nullable_bigint(rows, |r| r.deadline),
        nullable_bigint(rows, |r| r.completed_at),
        bigint(rows, |r| r.event_count),
    ]
}

pub fn insert_interactions(conn: &mut PgConnection, rows: &[InteractionRow]) -> QueryResult<usize> {
    let statement = UnnestStatement {
        head: INTERACTION_COLUMNS,
        columns: interaction_columns(rows),
        tail: "",
    };
    run(conn, statement, rows.len())
}

/// Changed interactions take their new state; what never changes after creation stays.
pub fn update_interactions(conn: &mut PgConnection, rows: &[InteractionRow]) -> QueryResult<usize> {
    let statement = UnnestStatement {
        head: INTERACTION_COLUMNS,
        columns: interaction_columns(rows),
        tail: " ON CONFLICT (scope, session_id, interaction_id) DO UPDATE SET \
               status = EXCLUDED.status, outcome = EXCLUDED.outcome, result = EXCLUDED.result, \
               completed_by = EXCLUDED.completed_by, deadline = EXCLUDED.deadline, \
               completed_at = EXCLUDED.completed_at, event_count = EXCLUDED.event_count",
    };
    run(conn, statement, rows.len())
}

pub fn insert_notifications(
    conn: &mut PgConnection,
    rows: &[NotificationRow],
) -> QueryResult<usize> {
    let statement = UnnestStatement {
        head: "INSERT INTO notifications (id, scope, session_id, kind, at, body)",
        columns: vec![
            bigint(rows, |r| r.id),
            text(rows, |r| &r.scope),
            text(rows, |r| &r.session_id),
            text(rows, |r| &r.kind),
            bigint(rows, |r| r.at),
            text(rows, |r| &r.body),
        ],
        tail: "",
    };
    run(conn, statement, rows.len())
}
