//! Search across a scope's sessions, from `event_search` (a row per event, written with it):
//! the newest events matching filters and search text, a page at a time (newest first,
//! bounded in bytes like every listing), events per minute per session for the activity
//! chart, and the full-text index's catching up. The full-text index is filled in batches off
//! the commit path ([`index_words`]), so search text finds an event shortly after its commit;
//! the other filters see it at once. The text match and the index differ per backend:
//! SQLite's FTS5 table, PostgreSQL's `tsvector` table with its GIN index.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{BigInt, Text};

use super::models::EventRow;
use super::schema::events::dsl;
use super::{with_backend, DbConnection};
use crate::domain::search::SearchQuery;

/// Where a page of newest-first results ends; the next page starts after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub received_at: i64,
    pub session_key: i64,
    pub seq: i64,
}

impl Cursor {
    /// As the API shows it: opaque to clients, three numbers to the service.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.received_at, self.session_key, self.seq)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split('.').map(|p| p.parse::<i64>().ok());
        let cursor = Self {
            received_at: parts.next()??,
            session_key: parts.next()??,
            seq: parts.next()??,
        };
        parts.next().is_none().then_some(cursor)
    }
}

/// What a search selects; every filter is optional.
#[derive(Clone, Debug, Default)]
pub struct SearchFilter {
    pub text: Option<SearchQuery>,
    pub event_type: Option<String>,
    pub tool: Option<String>,
    pub session_id: Option<String>,
    /// The session's project (its working directory, as its facts say), exactly.
    pub project: Option<String>,
    /// Received at or after, in ms since the epoch.
    pub since: Option<i64>,
    /// Received before, in ms.
    pub until: Option<i64>,
    /// Only results older than this (the previous page's end).
    pub after: Option<Cursor>,
    pub limit: i64,
}

/// One result: the event and the session it belongs to.
#[derive(Debug)]
pub struct Found {
    pub session_id: String,
    pub event: EventRow,
}

/// A page of results, newest first, and where the next one starts when there is more.
#[derive(Debug)]
pub struct FoundPage {
    pub found: Vec<Found>,
    pub next: Option<Cursor>,
    /// The page ended early because more would have passed the byte budget.
    pub truncated: bool,
}

/// A statement with its parameters, written once for both dialects: `param` writes `?` for
/// SQLite and `$n` for PostgreSQL.
struct Statement {
    text: String,
    binds: Vec<Bind>,
    postgres: bool,
}

enum Bind {
    Text(String),
    BigInt(i64),
}

impl Statement {
    fn new(conn: &DbConnection) -> Self {
        Self {
            text: String::new(),
            binds: Vec::new(),
            postgres: matches!(conn, DbConnection::Pg(_)),
        }
    }

    fn sql(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn param(&mut self, bind: Bind) -> &mut Self {
        self.binds.push(bind);
        if self.postgres {
            self.text.push_str(&format!("${}", self.binds.len()));
        } else {
            self.text.push('?');
        }
        self
    }

    fn bound<DB>(self) -> BoxedSqlQuery<'static, DB, diesel::query_builder::SqlQuery>
    where
        DB: diesel::backend::Backend + diesel::sql_types::HasSqlType<Text>,
        DB: diesel::sql_types::HasSqlType<BigInt>,
        String: diesel::serialize::ToSql<Text, DB>,
        i64: diesel::serialize::ToSql<BigInt, DB>,
    {
        let mut query = diesel::sql_query(self.text).into_boxed::<DB>();
        for bind in self.binds {
            query = match bind {
                Bind::Text(v) => query.bind::<Text, _>(v),
                Bind::BigInt(v) => query.bind::<BigInt, _>(v),
            };
        }
        query
    }
}

/// A result's place and size, before its event is read.
#[derive(QueryableByName)]
struct Hit {
    #[diesel(sql_type = BigInt)]
    received_at: i64,
    #[diesel(sql_type = BigInt)]
    session_key: i64,
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    session_id: String,
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

/// The newest events of `scope` that `filter` selects, as many as fit in `max_bytes`.
pub fn find(
    conn: &mut DbConnection,
    scope: &str,
    filter: &SearchFilter,
    max_bytes: usize,
) -> QueryResult<FoundPage> {
    let size = super::page::octet_length(conn, "e.data");
    let mut q = Statement::new(conn);
    q.sql("SELECT es.received_at, es.session_key, es.seq, s.session_id, ")
        .sql(&size)
        .sql(" AS bytes FROM event_search es")
        .sql(" JOIN sessions s ON s.session_key = es.session_key")
        .sql(" JOIN events e ON e.session_key = es.session_key AND e.seq = es.seq")
        .sql(" WHERE es.scope = ")
        .param(Bind::Text(scope.to_owned()));
    if let Some(text) = &filter.text {
        if q.postgres {
            q.sql(" AND es.id IN (SELECT id FROM event_words WHERE vector @@ ")
                .sql("to_tsquery('simple', ")
                .param(Bind::Text(text.tsquery()))
                .sql("))");
        } else {
            q.sql(" AND es.rowid IN (SELECT rowid FROM event_words WHERE event_words MATCH ")
                .param(Bind::Text(text.fts5()))
                .sql(")");
        }
    }
    if let Some(event_type) = &filter.event_type {
        q.sql(" AND es.event_type = ")
            .param(Bind::Text(event_type.clone()));
    }
    if let Some(tool) = &filter.tool {
        q.sql(" AND es.tool = ").param(Bind::Text(tool.clone()));
    }
    if let Some(session_id) = &filter.session_id {
        q.sql(" AND s.scope = ")
            .param(Bind::Text(scope.to_owned()))
            .sql(" AND s.session_id = ")
            .param(Bind::Text(session_id.clone()));
    }
    if let Some(project) = &filter.project {
        q.sql(if q.postgres {
            " AND (CAST(s.facts AS json) ->> 'project') = "
        } else {
            " AND json_extract(s.facts, '$.project') = "
        })
        .param(Bind::Text(project.clone()));
    }
    if let Some(since) = filter.since {
        q.sql(" AND es.received_at >= ").param(Bind::BigInt(since));
    }
    if let Some(until) = filter.until {
        q.sql(" AND es.received_at < ").param(Bind::BigInt(until));
    }
    if let Some(after) = filter.after {
        q.sql(" AND (es.received_at, es.session_key, es.seq) < (")
            .param(Bind::BigInt(after.received_at))
            .sql(", ")
            .param(Bind::BigInt(after.session_key))
            .sql(", ")
            .param(Bind::BigInt(after.seq))
            .sql(")");
    }
    // One more than the page, to know whether more follow.
    q.sql(" ORDER BY es.received_at DESC, es.session_key DESC, es.seq DESC LIMIT ")
        .param(Bind::BigInt(filter.limit + 1));
    let hits: Vec<Hit> = match conn {
        DbConnection::Pg(c) => q.bound().load(c)?,
        DbConnection::Sqlite(c) => q.bound().load(c)?,
    };
    let limit = usize::try_from(filter.limit).unwrap_or(0);
    let sizes: Vec<i64> = hits.iter().take(limit).map(|h| h.bytes).collect();
    let fit = super::page::rows_within(&sizes, max_bytes);
    let more = fit < hits.len();
    let truncated = fit < sizes.len();
    let page = &hits[..fit];
    let mut events = read_events(conn, page)?;
    let found = page
        .iter()
        .filter_map(|hit| {
            events
                .remove(&(hit.session_key, hit.seq))
                .map(|event| Found {
                    session_id: hit.session_id.clone(),
                    event,
                })
        })
        .collect();
    let next = more.then(|| page.last()).flatten().map(|last| Cursor {
        received_at: last.received_at,
        session_key: last.session_key,
        seq: last.seq,
    });
    Ok(FoundPage {
        found,
        next,
        truncated,
    })
}

/// The events of `hits`, by (session key, seq).
fn read_events(
    conn: &mut DbConnection,
    hits: &[Hit],
) -> QueryResult<HashMap<(i64, i64), EventRow>> {
    if hits.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<EventRow> = with_backend!(conn, |c| {
        let mut query = dsl::events.select(EventRow::as_select()).into_boxed();
        for hit in hits {
            query = query.or_filter(
                dsl::session_key
                    .eq(hit.session_key)
                    .and(dsl::seq.eq(hit.seq)),
            );
        }
        query.load(c)
    })?;
    Ok(rows
        .into_iter()
        .map(|row| ((row.session_key, row.seq), row))
        .collect())
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How a pass of [`index_words`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexPass {
    /// Rows taken in (words or not).
    pub taken: i64,
    /// Rows still to take after this pass.
    pub behind: i64,
}

/// Adds to the full-text index the rows committed since the last pass, at most `max_rows`,
/// in one transaction of its own: the rows, and how far the index has got.
///
/// The cursor is `event_search`'s row number, which is safe only because rows are numbered
/// in commit order: on SQLite and on a single PostgreSQL node one committer writes them; in a
/// cluster every commit numbers its rows after it has locked the notification counter row
/// (`store::write`), which it holds until it commits, so a row numbered lower committed first.
/// On PostgreSQL the pass also locks the cursor row, skipping it when it is locked: with several
/// nodes one indexes while the others' passes take nothing (and say nothing is behind; the
/// indexing node reports it).
pub fn index_words(conn: &mut DbConnection, max_rows: i64) -> QueryResult<IndexPass> {
    fn number<C>(conn: &mut C, sql: &str) -> QueryResult<i64>
    where
        C: diesel::connection::LoadConnection,
        diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'static, C, Number>,
    {
        let rows: Vec<Number> = diesel::sql_query(sql).load(conn)?;
        Ok(rows.first().map_or(0, |r| r.n))
    }
    macro_rules! pass {
        ($c:expr, $cursor:literal, $top:literal, $insert:literal, $update:literal) => {
            $c.transaction(|tx| {
                let cursor: Vec<Number> = diesel::sql_query($cursor).load(tx)?;
                let Some(upto) = cursor.first().map(|r| r.n) else {
                    // Another node's pass holds the cursor.
                    return Ok(IndexPass {
                        taken: 0,
                        behind: 0,
                    });
                };
                let top = number(tx, $top)?;
                let end = top.min(upto.saturating_add(max_rows));
                if end > upto {
                    diesel::sql_query($insert)
                        .bind::<BigInt, _>(upto)
                        .bind::<BigInt, _>(end)
                        .execute(tx)?;
                    diesel::sql_query($update)
                        .bind::<BigInt, _>(end)
                        .execute(tx)?;
                }
                Ok(IndexPass {
                    taken: (end - upto).max(0),
                    behind: (top - end).max(0),
                })
            })
        };
    }
    match conn {
        DbConnection::Sqlite(c) => pass!(
            c,
            "SELECT upto AS n FROM event_words_indexed",
            "SELECT coalesce(max(rowid), 0) AS n FROM event_search",
            "INSERT INTO event_words (rowid, words) SELECT rowid, words FROM event_search \
             WHERE rowid > ? AND rowid <= ? AND words <> ''",
            "UPDATE event_words_indexed SET upto = ?"
        ),
        DbConnection::Pg(c) => pass!(
            c,
            "SELECT upto AS n FROM event_words_indexed FOR UPDATE SKIP LOCKED",
            "SELECT coalesce(max(id), 0) AS n FROM event_search",
            "INSERT INTO event_words (id, vector) SELECT id, to_tsvector('simple', words) \
             FROM event_search WHERE id > $1 AND id <= $2 AND words <> ''",
            "UPDATE event_words_indexed SET upto = $1"
        ),
    }
}

/// Events per minute of one session, oldest minute first.
#[derive(Debug, PartialEq, Eq)]
pub struct SessionActivity {
    pub session_id: String,
    pub per_minute: Vec<i64>,
}

#[derive(QueryableByName)]
struct MinuteCount {
    #[diesel(sql_type = Text)]
    session_id: String,
    #[diesel(sql_type = BigInt)]
    minute: i64,
    #[diesel(sql_type = BigInt)]
    events: i64,
}

/// Events received per minute by each session of `scope` in the `minutes` whole minutes from
/// `from` (ms), busiest sessions first.
pub fn per_minute(
    conn: &mut DbConnection,
    scope: &str,
    from: i64,
    minutes: usize,
) -> QueryResult<Vec<SessionActivity>> {
    let mut q = Statement::new(conn);
    q.sql("SELECT s.session_id, c.minute, c.events FROM (SELECT es.session_key, ")
        .sql("(es.received_at - ")
        .param(Bind::BigInt(from))
        .sql(") / 60000 AS minute, COUNT(*) AS events FROM event_search es WHERE es.scope = ")
        .param(Bind::Text(scope.to_owned()))
        .sql(" AND es.received_at >= ")
        .param(Bind::BigInt(from))
        .sql(" GROUP BY es.session_key, minute) c")
        .sql(" JOIN sessions s ON s.session_key = c.session_key");
    let counts: Vec<MinuteCount> = match conn {
        DbConnection::Pg(c) => q.bound().load(c)?,
        DbConnection::Sqlite(c) => q.bound().load(c)?,
    };
    let mut sessions: HashMap<String, Vec<i64>> = HashMap::new();
    for count in counts {
        let Ok(minute) = usize::try_from(count.minute) else {
            continue;
        };
        if minute >= minutes {
            continue;
        }
        sessions
            .entry(count.session_id)
            .or_insert_with(|| vec![0; minutes])[minute] += count.events;
    }
    let mut sessions: Vec<SessionActivity> = sessions
        .into_iter()
        .map(|(session_id, per_minute)| SessionActivity {
            session_id,
            per_minute,
        })
        .collect();
    sessions.sort_by(|a, b| {
        let total = |s: &SessionActivity| s.per_minute.iter().sum::<i64>();
        total(b)
            .cmp(&total(a))
            .then_with(|| a.session_id.cmp(&b.session_id))
    });
    Ok(sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_nothing_else_does() {
        let cursor = Cursor {
            received_at: 1_765_000_000_000,
            session_key: 7,
            seq: 42,
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in ["", "1.2", "1.2.3.4", "a.b.c", "1..3"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
