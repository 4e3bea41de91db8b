//! The group-commit transaction: many sessions' writes (session rows, events, notifications)
//! committed together, all or nothing, with their notifications numbered in commit order. The
//! statements themselves are in `statements`.
//!
//! On PostgreSQL the writes are made under partition leases ([`LeaseClaim`]), by whichever
//! node of a cluster holds them, and the commit's transaction does two things first:
//! - Fencing: the lease rows of the batch's partitions are read and locked (`FOR SHARE`, so
//!   nobody can take them over until the commit ends); unless each still names the writing
//!   node, with the epoch the write was planned under and an expiry ahead, nothing is committed
//!   and the stale partitions are named ([`StoreError::Fenced`]).
//! - Notification ids are taken from the cluster's counter row, which stays locked until the
//!   commit ends: ids are handed out in commit order across all nodes, without gaps, so a
//!   reader paging "after N" never skips a row that commits later. The batch's rows are
//!   written after that, so `event_search` numbers its rows in commit order too, which the
//!   search indexer's cursor relies on (`store::search::index_words`).
//!
//! On SQLite (one node) and for writes without a lease the caller numbers the notifications:
//! the single committer keeps the next id.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text};

use super::models::{EventRow, InteractionRow, NotificationRow, SearchRow, SessionRow};
use super::{statements, DbConnection, StoreError};

/// A notification waiting for its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    pub kind: &'static str,
    pub at: i64,
    /// The type-specific fields, a JSON object serialized.
    pub body: String,
}

/// What one session actor asks to commit for one group of its requests.
#[derive(Clone, Debug)]
pub struct SessionWrite {
    /// The session row as it stands after the group.
    pub session: SessionRow,
    /// The row is new: insert rather than update.
    pub create: bool,
    pub events: Vec<EventRow>,
    /// One per event, in the same order.
    pub search: Vec<SearchRow>,
    /// Interactions created by the group.
    pub new_interactions: Vec<InteractionRow>,
    /// Interactions the group changed, as they stand after it.
    pub changed_interactions: Vec<InteractionRow>,
    pub notifications: Vec<NewNotification>,
    /// The lease it was planned under, in cluster mode; committed only while it holds.
    pub lease: Option<LeaseClaim>,
}

/// The partition lease a session's state was loaded and planned under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseClaim {
    pub node_id: Arc<str>,
    pub partition: u32,
    pub epoch: i64,
}

impl SessionWrite {
    /// The session row alone (inserted when `create`, else updated): the rows and
    /// notifications that go with it are added to the returned value.
    pub fn new(session: SessionRow, create: bool) -> Self {
        Self {
            session,
            create,
            events: Vec::new(),
            search: Vec::new(),
            new_interactions: Vec::new(),
            changed_interactions: Vec::new(),
            notifications: Vec::new(),
            lease: None,
        }
    }
}

/// What a committed batch leaves behind.
#[derive(Debug)]
pub struct Committed {
    /// The id the next notification gets.
    pub next_id: i64,
    /// The batch's notifications as stored, ids ascending.
    pub notifications: Vec<NotificationRow>,
}

/// Commits `writes` in one transaction, numbering notifications from `next_notification_id`.
/// On error nothing was stored, and the writes are still the caller's to retry (without the
/// fenced ones, when that is the error).
pub fn commit_batch(
    conn: &mut DbConnection,
    writes: &[SessionWrite],
    next_notification_id: i64,
) -> Result<Committed, StoreError> {
    let claims: Vec<&LeaseClaim> = writes.iter().filter_map(|w| w.lease.as_ref()).collect();
    let count = writes
        .iter()
        .map(|w| w.notifications.len() as i64)
        .sum::<i64>();
    let (notifications, next_id) = match conn {
        // One statement, its own transaction: one round trip.
        DbConnection::Pg(pg) if claims.is_empty() => {
            let numbered = number_notifications(writes, next_notification_id);
            statements::commit_postgres(pg, &batch_rows(writes, &numbered.0))?;
            numbered
        }
        // A node of a cluster: its leases checked and its notification ids taken in the
        // commit's transaction (see the module's note).
        DbConnection::Pg(pg) => pg.transaction(|tx| {
            let first = check_leases_and_take_ids(tx, &claims, count)?;
            let numbered = number_notifications(writes, first);
            statements::commit_postgres(tx, &batch_rows(writes, &numbered.0))?;
            Ok::<_, StoreError>(numbered)
        })?,
        DbConnection::Sqlite(sqlite) => {
            let numbered = number_notifications(writes, next_notification_id);
            let rows = batch_rows(writes, &numbered.0);
            sqlite.transaction(|tx| statements::write_sqlite(tx, &rows))?;
            numbered
        }
    };
    Ok(Committed {
        next_id,
        notifications,
    })
}

/// The batch's notifications as rows, numbered from `first`; and the id after the last.
fn number_notifications(writes: &[SessionWrite], first: i64) -> (Vec<NotificationRow>, i64) {
    let mut notifications = Vec::new();
    let mut next_id = first;
    for write in writes {
        for n in &write.notifications {
            notifications.push(NotificationRow {
                id: next_id,
                scope: write.session.scope.clone(),
                session_id: write.session.session_id.clone(),
                kind: n.kind.to_owned(),
                at: n.at,
                body: n.body.clone(),
            });
            next_id += 1;
        }
    }
    (notifications, next_id)
}

/// Every row of the batch, by table.
fn batch_rows<'a>(
    writes: &'a [SessionWrite],
    notifications: &'a [NotificationRow],
) -> statements::BatchRows<'a> {
    let mut rows = statements::BatchRows {
        notifications: notifications.iter().collect(),
        ..Default::default()
    };
    for write in writes {
        if write.create {
            rows.created_sessions.push(&write.session);
        } else {
            rows.updated_sessions.push(&write.session);
        }
        rows.events.extend(&write.events);
        rows.search.extend(&write.search);
        rows.new_interactions.extend(&write.new_interactions);
        rows.changed_interactions
            .extend(&write.changed_interactions);
    }
    rows
}

#[derive(QueryableByName)]
struct Checked {
    #[diesel(sql_type = BigInt)]
    first: i64,
    #[diesel(sql_type = Array<Integer>)]
    partitions: Vec<i32>,
    #[diesel(sql_type = Array<BigInt>)]
    epochs: Vec<i64>,
}

/// In one statement of the commit's transaction: checks and locks the leases `claims` were
/// planned under, and takes `count` notification ids from the cluster's counter (its row stays
/// locked until the commit ends); the first id. [`StoreError::Fenced`] names the partitions
/// whose lease another node holds, has moved on to another epoch, or has expired; the
/// transaction is then rolled back, the counter with it.
fn check_leases_and_take_ids(
    conn: &mut PgConnection,
    claims: &[&LeaseClaim],
    count: i64,
) -> Result<i64, StoreError> {
    // One committer is one node: every claim names it.
    let node_id = claims.first().map_or("", |c| &*c.node_id);
    let partitions: Vec<i32> = claims
        .iter()
        .map(|c| c.partition as i32)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let checked: Checked = diesel::sql_query(
        "WITH held AS (SELECT partition, epoch FROM partition_leases \
           WHERE partition = ANY($1) AND owner = $2 AND expires_at > clock_timestamp() \
           FOR SHARE), \
         ids AS (UPDATE cluster_settings SET next_notification_id = next_notification_id + $3 \
           RETURNING next_notification_id - $3 AS first) \
         SELECT (SELECT first FROM ids) AS first, \
           coalesce((SELECT array_agg(partition) FROM held), '{}') AS partitions, \
           coalesce((SELECT array_agg(epoch) FROM held), '{}') AS epochs",
    )
    .bind::<Array<Integer>, _>(partitions)
    .bind::<Text, _>(node_id)
    .bind::<BigInt, _>(count)
    .get_result(conn)?;
    let held: HashMap<u32, i64> = checked
        .partitions
        .iter()
        .zip(&checked.epochs)
        .map(|(p, e)| (*p as u32, *e))
        .collect();
    let fenced: BTreeSet<u32> = claims
        .iter()
        .filter(|c| &*c.node_id != node_id || held.get(&c.partition) != Some(&c.epoch))
        .map(|c| c.partition)
        .collect();
    if fenced.is_empty() {
        Ok(checked.first)
    } else {
        Err(StoreError::Fenced(fenced.into_iter().collect()))
    }
}
