//! The group commit's write statements, each table described once for both backends: its
//! INSERT head, the upsert tail, and the row's values in column order. Both backends get a
//! statement text that never changes, so diesel prepares it once per connection and reuses it.
//! diesel's own multi-row `VALUES` (and on SQLite its upserts) get a new text for every row
//! count and are parsed anew in every commit: on SQLite that was 16 % of the committer's time
//! at 1,000 interactions/s, on PostgreSQL a Parse of ~1,300 parameters and a round trip per
//! table.
//!
//! - PostgreSQL: the whole batch is one `WITH … INSERT …` statement whose sub-statements each
//!   insert (or upsert) one table from arrays, a column per array parameter, turned back into
//!   rows by `UNNEST` (an empty array inserts nothing). Run on its own it is its own
//!   transaction: all or nothing, durable when it returns, in one round trip.
//! - SQLite: per table, a 64-row statement for each full chunk of rows and a single-row one
//!   for the rest, inside the caller's transaction (in-process calls, so no round trips to
//!   save, and no array type): two texts per table, both kept prepared.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel::{PgConnection, QueryResult, RunQueryDsl, SqliteConnection};

use super::models::{EventRow, InteractionRow, NotificationRow, SearchRow, SessionRow};

/// One value of a row, in its column's SQL type.
enum Value<'a> {
    Text(&'a str),
    NullableText(Option<&'a str>),
    BigInt(i64),
    NullableBigInt(Option<i64>),
    Bool(bool),
}

/// A column's SQL type: PostgreSQL needs it to bind an array even when no row has a value.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    NullableText,
    BigInt,
    NullableBigInt,
    Bool,
}

/// How one table is written: `insert` (up to `VALUES`/`SELECT`), the row's values in the
/// column order of `insert`, and a conflict clause (empty for a plain insert).
struct Table<R: 'static> {
    /// Names the sub-statement in PostgreSQL's `WITH`.
    name: &'static str,
    insert: &'static str,
    kinds: &'static [Kind],
    values: for<'a> fn(&'a R) -> Vec<Value<'a>>,
    on_conflict: &'static str,
}

/// One table's writing from one list of its columns, each a field of the row of the same name
/// with its kind: the INSERT head, the kinds and the values all come from the list, so they
/// cannot disagree.
macro_rules! table {
    (
        $name:literal, $table:literal, $row:ty,
        [$first:ident: $first_kind:ident $(, $col:ident: $kind:ident)* $(,)?],
        $on_conflict:expr
    ) => {
        Table::<$row> {
            name: $name,
            insert: concat!(
                "INSERT INTO ", $table, " (", stringify!($first) $(, ", ", stringify!($col))*, ")"
            ),
            kinds: &[Kind::$first_kind $(, Kind::$kind)*],
            values: |r| vec![value!($first_kind, r.$first) $(, value!($kind, r.$col))*],
            on_conflict: $on_conflict,
        }
    };
}

/// A row's field as the [`Value`] of its column's kind.
macro_rules! value {
    (Text, $field:expr) => {
        Value::Text(&$field)
    };
    (NullableText, $field:expr) => {
        Value::NullableText($field.as_deref())
    };
    (BigInt, $field:expr) => {
        Value::BigInt($field)
    };
    (NullableBigInt, $field:expr) => {
        Value::NullableBigInt($field)
    };
    (Bool, $field:expr) => {
        Value::Bool($field)
    };
}

/// An upsert's conflict clause: on a clash of `keys`, the listed columns take the new values.
macro_rules! upsert {
    ([$key:ident $(, $keys:ident)*], [$first:ident $(, $col:ident)* $(,)?]) => {
        concat!(
            " ON CONFLICT (", stringify!($key) $(, ", ", stringify!($keys))*, ") DO UPDATE SET ",
            stringify!($first), " = excluded.", stringify!($first)
            $(, ", ", stringify!($col), " = excluded.", stringify!($col))*
        )
    };
}

/// The sessions table, inserted or upserted.
macro_rules! sessions {
    ($name:literal, $on_conflict:expr) => {
        table!($name, "sessions", SessionRow, [
            scope: Text,
            session_id: Text,
            status: Text,
            external_conversation_id: NullableText,
            metadata: Text,
            created_at: BigInt,
            updated_at: BigInt,
            event_count: BigInt,
            last_seq: BigInt,
            interactions_pending: BigInt,
            interactions_completed: BigInt,
            interactions_timed_out: BigInt,
            interactions_cancelled: BigInt,
            session_key: BigInt,
            facts: Text,
        ], $on_conflict)
    };
}

/// New sessions: a plain INSERT, so a second creation of one fails the batch loudly.
const CREATED_SESSIONS: Table<SessionRow> = sessions!("created_sessions", "");

/// Existing sessions: every column but the creation time and the metadata (set once, at
/// creation; the row carries none) takes the new value.
const UPDATED_SESSIONS: Table<SessionRow> = sessions!(
    "updated_sessions",
    upsert!(
        [scope, session_id],
        [
            status,
            external_conversation_id,
            updated_at,
            event_count,
            last_seq,
            interactions_pending,
            interactions_completed,
            interactions_timed_out,
            interactions_cancelled,
            facts,
        ]
    )
);

const NEW_EVENTS: Table<EventRow> = table!("new_events", "events", EventRow, [
    session_key: BigInt,
    seq: BigInt,
    event_id: NullableText,
    dedup_key: Text,
    event_type: Text,
    occurred_at_us: BigInt,
    received_at: BigInt,
    interaction_id: NullableText,
    sequence: NullableBigInt,
    out_of_order: Bool,
    data: Text,
], "");

const NEW_SEARCH_ROWS: Table<SearchRow> = table!("new_search_rows", "event_search", SearchRow, [
    scope: Text,
    session_key: BigInt,
    seq: BigInt,
    received_at: BigInt,
    event_type: Text,
    tool: NullableText,
    words: Text,
], "");

/// The interactions table, inserted or upserted.
macro_rules! interactions {
    ($name:literal, $on_conflict:expr) => {
        table!($name, "interactions", InteractionRow, [
            scope: Text,
            session_id: Text,
            interaction_id: Text,
            kind: Text,
            payload: Text,
            status: Text,
            outcome: NullableText,
            result: NullableText,
            completed_by: NullableText,
            position: BigInt,
            created_at: BigInt,
            timeout_ms: BigInt,
            deadline: NullableBigInt,
            completed_at: NullableBigInt,
            event_count: BigInt,
            decided_by: NullableText,
        ], $on_conflict)
    };
}

const NEW_INTERACTIONS: Table<InteractionRow> = interactions!("new_interactions", "");

/// Changed interactions: what never changes after creation (the payload among it; the row
/// carries none) stays.
const CHANGED_INTERACTIONS: Table<InteractionRow> = interactions!(
    "changed_interactions",
    upsert!(
        [scope, session_id, interaction_id],
        [
            status,
            outcome,
            result,
            completed_by,
            deadline,
            completed_at,
            event_count,
            decided_by,
        ]
    )
);

const NEW_NOTIFICATIONS: Table<NotificationRow> = table!(
    "new_notifications", "notifications", NotificationRow,
    [id: BigInt, scope: Text, session_id: Text, kind: Text, at: BigInt, body: Text],
    ""
);

/// The rows of one group commit, table by table, borrowed from the writes (which stay with
/// the committer, to be committed in smaller groups if this one fails).
#[derive(Default)]
pub struct BatchRows<'a> {
    pub created_sessions: Vec<&'a SessionRow>,
    pub updated_sessions: Vec<&'a SessionRow>,
    pub events: Vec<&'a EventRow>,
    pub search: Vec<&'a SearchRow>,
    pub new_interactions: Vec<&'a InteractionRow>,
    pub changed_interactions: Vec<&'a InteractionRow>,
    pub notifications: Vec<&'a NotificationRow>,
}

/// Commits `rows` on PostgreSQL in one statement, outside any open transaction (it is its own).
pub fn commit_postgres(conn: &mut PgConnection, rows: &BatchRows<'_>) -> QueryResult<()> {
    let statement = GroupCommitStatement {
        sections: vec![
            Section::of(&CREATED_SESSIONS, &rows.created_sessions),
            Section::of(&UPDATED_SESSIONS, &rows.updated_sessions),
            Section::of(&NEW_EVENTS, &rows.events),
            Section::of(&NEW_SEARCH_ROWS, &rows.search),
            Section::of(&NEW_INTERACTIONS, &rows.new_interactions),
            Section::of(&CHANGED_INTERACTIONS, &rows.changed_interactions),
            Section::of(&NEW_NOTIFICATIONS, &rows.notifications),
        ],
    };
    statement.execute(conn).map(drop)
}

/// Writes `rows` on SQLite inside the caller's transaction.
pub fn write_sqlite(conn: &mut SqliteConnection, rows: &BatchRows<'_>) -> QueryResult<()> {
    write_table(conn, &CREATED_SESSIONS, &rows.created_sessions)?;
    write_table(conn, &UPDATED_SESSIONS, &rows.updated_sessions)?;
    write_table(conn, &NEW_EVENTS, &rows.events)?;
    write_table(conn, &NEW_SEARCH_ROWS, &rows.search)?;
    write_table(conn, &NEW_INTERACTIONS, &rows.new_interactions)?;
    write_table(conn, &CHANGED_INTERACTIONS, &rows.changed_interactions)?;
    write_table(conn, &NEW_NOTIFICATIONS, &rows.notifications)
}

/// Rows per multi-row statement on SQLite. Every full chunk has the same text, so it stays
/// prepared like the single-row one used for the rest: parsing a statement per commit cost
/// more than the rows (16 % of the committer at 1,000 interactions/s), and executing a
/// prepared one per row is slower than one per chunk for large batches.
const SQLITE_CHUNK: usize = 64;

fn write_table<R>(conn: &mut SqliteConnection, table: &Table<R>, rows: &[&R]) -> QueryResult<()> {
    let mut chunks = rows.chunks_exact(SQLITE_CHUNK);
    for chunk in chunks.by_ref() {
        values_statement(table, chunk).execute(conn)?;
    }
    for row in chunks.remainder() {
        values_statement(table, std::slice::from_ref(row)).execute(conn)?;
    }
    Ok(())
}

fn values_statement<'a, R>(table: &Table<R>, rows: &[&'a R]) -> ValuesStatement<'a> {
    ValuesStatement {
        insert: table.insert,
        rows: rows.iter().map(|row| (table.values)(row)).collect(),
        on_conflict: table.on_conflict,
    }
}

/// SQLite: `insert VALUES (?, …), (?, …) on_conflict`.
struct ValuesStatement<'a> {
    insert: &'static str,
    rows: Vec<Vec<Value<'a>>>,
    on_conflict: &'static str,
}

impl QueryFragment<Sqlite> for ValuesStatement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        // `OR ROLLBACK`: a violated constraint rolls back the whole transaction at once, as
        // the committer would anyway, instead of undoing just this statement. So SQLite
        // keeps no statement journal (a copy of each page before the statement changed it,
        // 8 % of the committer's time in a profile of single events).
        let into = self.insert.strip_prefix("INSERT").unwrap_or(self.insert);
        out.push_sql("INSERT OR ROLLBACK");
        out.push_sql(into);
        out.push_sql(" VALUES ");
        for (r, row) in self.rows.iter().enumerate() {
            out.push_sql(if r > 0 { ", (" } else { "(" });
            for (i, value) in row.iter().enumerate() {
                if i > 0 {
                    out.push_sql(", ");
                }
                match value {
                    Value::Text(v) => out.push_bind_param::<Text, _>(v)?,
                    Value::NullableText(v) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                    Value::BigInt(v) => out.push_bind_param::<BigInt, _>(v)?,
                    Value::NullableBigInt(v) => out.push_bind_param::<Nullable<BigInt>, _>(v)?,
                    Value::Bool(v) => out.push_bind_param::<Bool, _>(v)?,
                }
            }
            out.push_sql(")");
        }
        out.push_sql(self.on_conflict);
        Ok(())
    }
}

// No static id: the cache key is the statement text, one per table and row count.
impl QueryId for ValuesStatement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl RunQueryDsl<SqliteConnection> for ValuesStatement<'_> {}

/// PostgreSQL: one table's rows as one array per column.
enum ColumnArray<'a> {
    Text(Vec<&'a str>),
    NullableText(Vec<Option<&'a str>>),
    BigInt(Vec<i64>),
    NullableBigInt(Vec<Option<i64>>),
    Bool(Vec<bool>),
}

impl<'a> ColumnArray<'a> {
    fn with_capacity(kind: Kind, rows: usize) -> Self {
        match kind {
            Kind::Text => Self::Text(Vec::with_capacity(rows)),
            Kind::NullableText => Self::NullableText(Vec::with_capacity(rows)),
            Kind::BigInt => Self::BigInt(Vec::with_capacity(rows)),
            Kind::NullableBigInt => Self::NullableBigInt(Vec::with_capacity(rows)),
            Kind::Bool => Self::Bool(Vec::with_capacity(rows)),
        }
    }

    fn push(&mut self, value: Value<'a>) {
        match (self, value) {
            (Self::Text(c), Value::Text(v)) => c.push(v),
            (Self::NullableText(c), Value::NullableText(v)) => c.push(v),
            (Self::BigInt(c), Value::BigInt(v)) => c.push(v),
            (Self::NullableBigInt(c), Value::NullableBigInt(v)) => c.push(v),
            (Self::Bool(c), Value::Bool(v)) => c.push(v),
            _ => unreachable!("a table's values follow its kinds"),
        }
    }

    fn push_bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match self {
            Self::Text(v) => out.push_bind_param::<Array<Text>, _>(v),
            Self::NullableText(v) => out.push_bind_param::<Array<Nullable<Text>>, _>(v),
            Self::BigInt(v) => out.push_bind_param::<Array<BigInt>, _>(v),
            Self::NullableBigInt(v) => out.push_bind_param::<Array<Nullable<BigInt>>, _>(v),
            Self::Bool(v) => out.push_bind_param::<Array<Bool>, _>(v),
        }
    }
}

/// One sub-statement of the PostgreSQL group commit.
struct Section<'a> {
    name: &'static str,
    insert: &'static str,
    columns: Vec<ColumnArray<'a>>,
    on_conflict: &'static str,
}

impl<'a> Section<'a> {
    fn of<R>(table: &Table<R>, rows: &[&'a R]) -> Self {
        let mut columns: Vec<_> = table
            .kinds
            .iter()
            .map(|&kind| ColumnArray::with_capacity(kind, rows.len()))
            .collect();
        for row in rows {
            for (column, value) in columns.iter_mut().zip((table.values)(row)) {
                column.push(value);
            }
        }
        Section {
            name: table.name,
            insert: table.insert,
            columns,
            on_conflict: table.on_conflict,
        }
    }
}

/// `WITH name AS (insert SELECT * FROM UNNEST($1, …) on_conflict), … SELECT 1`.
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
            out.push_sql(section.on_conflict);
            out.push_sql(")");
        }
        out.push_sql(" SELECT 1");
        Ok(())
    }
}

// No static id: the cache key is the statement text, which never changes.
impl QueryId for GroupCommitStatement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl RunQueryDsl<PgConnection> for GroupCommitStatement<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQLite statements put `OR ROLLBACK` after a leading `INSERT`.
    #[test]
    fn every_insert_starts_with_insert_into() {
        let inserts = [
            CREATED_SESSIONS.insert,
            UPDATED_SESSIONS.insert,
            NEW_EVENTS.insert,
            NEW_SEARCH_ROWS.insert,
            NEW_INTERACTIONS.insert,
            CHANGED_INTERACTIONS.insert,
            NEW_NOTIFICATIONS.insert,
        ];
        for insert in inserts {
            assert!(insert.starts_with("INSERT INTO "), "{insert}");
        }
    }

    /// Every table lists one kind per column of its INSERT and gives one value per kind, in
    /// the same types; a mismatch would bind a value to the wrong column.
    #[test]
    fn each_table_lists_one_kind_and_one_value_per_column() {
        fn check<R>(table: &Table<R>, row: &R) {
            let head = table.insert;
            let columns = head[head.find('(').unwrap()..].split(',').count();
            assert_eq!(table.kinds.len(), columns, "{}", table.name);
            let values = (table.values)(row);
            assert_eq!(values.len(), columns, "{}", table.name);
            // `push` panics on a value of another type than its column's kind.
            for (kind, value) in table.kinds.iter().zip(values) {
                ColumnArray::with_capacity(*kind, 1).push(value);
            }
        }
        let session = SessionRow::new_active("s", "id", 7, 1);
        check(&CREATED_SESSIONS, &session);
        check(&UPDATED_SESSIONS, &session);
        let event = EventRow {
            session_key: 7,
            seq: 1,
            event_id: None,
            dedup_key: "c:x".into(),
            event_type: "t".into(),
            occurred_at_us: 1,
            received_at: 1,
            interaction_id: None,
            sequence: None,
            out_of_order: false,
            data: "{}".into(),
        };
        check(&NEW_EVENTS, &event);
        let search = SearchRow {
            scope: "s".into(),
            session_key: 7,
            seq: 1,
            received_at: 1,
            event_type: "t".into(),
            tool: Some("Bash".into()),
            words: "bash ls".into(),
        };
        check(&NEW_SEARCH_ROWS, &search);
        let interaction = InteractionRow {
            scope: "s".into(),
            session_id: "id".into(),
            interaction_id: "i".into(),
            kind: "approval".into(),
            payload: "{}".into(),
            status: "pending".into(),
            outcome: None,
            result: None,
            completed_by: None,
            position: 1,
            created_at: 1,
            timeout_ms: 1,
            deadline: None,
            completed_at: None,
            event_count: 0,
            decided_by: Some("Ana".into()),
        };
        check(&NEW_INTERACTIONS, &interaction);
        check(&CHANGED_INTERACTIONS, &interaction);
        let notification = NotificationRow {
            id: 1,
            scope: "s".into(),
            session_id: "id".into(),
            kind: "session.created".into(),
            at: 1,
            body: "{}".into(),
        };
        check(&NEW_NOTIFICATIONS, &notification);
    }
}
