//! PostgreSQL's group commit as one statement: every table's rows of the batch go in one
//! `WITH … INSERT …` whose sub-statements each insert (or upsert) one table from arrays, a
//! column per array parameter, turned back into rows by `UNNEST`. Run on its own, the statement
//! is its own transaction: all or nothing, durable when it returns, in one round trip. Its text
//! never changes (an empty array inserts no row), so diesel keeps it prepared per connection.
//! Before, a commit was BEGIN, one multi-row `VALUES` statement per table and COMMIT: eight
//! round trips, each statement with a new text for every row count, parsed and planned anew
//! with some 1,300 parameters. SQLite keeps that form (no round trips, no array type).

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

/// One sub-statement: `insert` `SELECT * FROM UNNEST($n, …)` `tail`.
struct Section<'a> {
    name: &'static str,
    insert: &'static str,
    columns: Vec<ColumnArray<'a>>,
    tail: &'static str,
}

/// `WITH name AS (section), … SELECT 1`: the statement text depends only on the sections'
/// fixed parts, so diesel's statement cache (keyed by the text) keeps it prepared.
struct GroupCommitStatement<'a> {
    sections: Vec<Section<'a>>,
}

impl QueryFragment<Pg> for GroupCommitStatement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH ");
        for (i, section) in self.sections.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_sql(section.name);
            out.push_sql(" AS (");
            out.push_sql(section.insert);
            out.push_sql(" SELECT * FROM UNNEST(");
            for (j, column) in section.columns.iter().enumerate() {
                if j > 0 {
                    out.push_sql(", ");
                }
                column.push_bind(&mut out)?;
            }
            out.push_sql(")");
            out.push_sql(section.tail);
            out.push_sql(")");
        }
        out.push_sql(" SELECT 1");
        Ok(())
    }
}

impl ColumnArray<'_> {
    fn push_bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match self {
            ColumnArray::Text(v) => out.push_bind_param::<Array<Text>, _>(v),
            ColumnArray::NullableText(v) => out.push_bind_param::<Array<Nullable<Text>>, _>(v),
            ColumnArray::BigInt(v) => out.push_bind_param::<Array<BigInt>, _>(v),
            ColumnArray::NullableBigInt(v) => out.push_bind_param::<Array<Nullable<BigInt>>, _>(v),
            ColumnArray::Bool(v) => out.push_bind_param::<Array<Bool>, _>(v),
        }
    }
}

// No static id: the cache key is the statement text, which never changes.
impl QueryId for GroupCommitStatement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl RunQueryDsl<PgConnection> for GroupCommitStatement<'_> {}

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

/// The rows of one group commit, table by table.
pub struct BatchRows {
    /// New sessions: a plain INSERT, so a second creation of one fails the batch loudly.
    pub created_sessions: Vec<SessionRow>,
    /// Existing sessions: every column but the creation time takes the new value.
    pub updated_sessions: Vec<SessionRow>,
    pub events: Vec<EventRow>,
    pub new_interactions: Vec<InteractionRow>,
    /// Changed interactions: what never changes after creation stays.
    pub changed_interactions: Vec<InteractionRow>,
    pub notifications: Vec<NotificationRow>,
}

/// Commits `rows` in one statement, outside any open transaction (it is its own).
pub fn commit(conn: &mut PgConnection, rows: &BatchRows) -> QueryResult<()> {
    let statement = GroupCommitStatement {
        sections: vec![
            Section {
                name: "created_sessions",
                insert: SESSION_COLUMNS,
                columns: session_columns(&rows.created_sessions),
                tail: "",
            },
            Section {
                name: "updated_sessions",
                insert: SESSION_COLUMNS,
                columns: session_columns(&rows.updated_sessions),
                tail: " ON CONFLICT (scope, session_id) DO UPDATE SET status = EXCLUDED.status, \
                       external_conversation_id = EXCLUDED.external_conversation_id, \
                       metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at, \
                       event_count = EXCLUDED.event_count, last_seq = EXCLUDED.last_seq, \
                       interactions_pending = EXCLUDED.interactions_pending, \
                       interactions_completed = EXCLUDED.interactions_completed, \
                       interactions_timed_out = EXCLUDED.interactions_timed_out, \
                       interactions_cancelled = EXCLUDED.interactions_cancelled",
            },
            Section {
                name: "new_events",
                insert: "INSERT INTO events (scope, session_id, seq, event_id, dedup_key, \
                         event_type, occurred_at_us, received_at, interaction_id, sequence, \
                         out_of_order, data)",
                columns: event_columns(&rows.events),
                tail: "",
            },
            Section {
                name: "new_interactions",
                insert: INTERACTION_COLUMNS,
                columns: interaction_columns(&rows.new_interactions),
                tail: "",
            },
            Section {
                name: "changed_interactions",
                insert: INTERACTION_COLUMNS,
                columns: interaction_columns(&rows.changed_interactions),
                tail: " ON CONFLICT (scope, session_id, interaction_id) DO UPDATE SET \
                       status = EXCLUDED.status, outcome = EXCLUDED.outcome, \
                       result = EXCLUDED.result, completed_by = EXCLUDED.completed_by, \
                       deadline = EXCLUDED.deadline, completed_at = EXCLUDED.completed_at, \
                       event_count = EXCLUDED.event_count",
            },
            Section {
                name: "new_notifications",
                insert: "INSERT INTO notifications (id, scope, session_id, kind, at, body)",
                columns: notification_columns(&rows.notifications),
                tail: "",
            },
        ],
    };
    statement.execute(conn).map(drop)
}

fn event_columns(rows: &[EventRow]) -> Vec<ColumnArray<'_>> {
    vec![
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
    ]
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

fn notification_columns(rows: &[NotificationRow]) -> Vec<ColumnArray<'_>> {
    vec![
        bigint(rows, |r| r.id),
        text(rows, |r| &r.scope),
        text(rows, |r| &r.session_id),
        text(rows, |r| &r.kind),
        bigint(rows, |r| r.at),
        text(rows, |r| &r.body),
    ]
}
