//! The group-commit transaction: many sessions' writes (session rows, events, notifications)
//! committed together, all or nothing. Notification ids are assigned here, by the single
//! committer, so they increase in commit order. The statements themselves are in `statements`.
//!
//! On PostgreSQL a write made under a partition's lease ([`LeaseClaim`]) is fenced: in the
//! same transaction, the lease rows of the batch's partitions are read and locked (`FOR
//! SHARE`, so nobody can take them over until the commit ends), and unless each still names
//! the writing node, with the epoch the write was planned under and an expiry ahead, nothing is
//! committed and the stale partitions are named ([`StoreError::Fenced`]).

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
    let mut notifications = Vec::new();
    let mut next_id = next_notification_id;
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
    let claims: Vec<&LeaseClaim> = writes.iter().filter_map(|w| w.lease.as_ref()).collect();
    match conn {
        // One statement, its own transaction: one round trip.
        DbConnection::Pg(pg) if claims.is_empty() => statements::commit_postgres(pg, &rows)?,
        DbConnection::Pg(pg) => pg.transaction(|tx| {
            check_leases(tx, &claims)?;
            Ok::<_, StoreError>(statements::commit_postgres(tx, &rows)?)
        })?,
        DbConnection::Sqlite(sqlite) => {
            sqlite.transaction(|tx| statements::write_sqlite(tx, &rows))?
        }
    }
    drop(rows);
    Ok(Committed {
        next_id,
        notifications,
    })
}

#[derive(QueryableByName)]
struct HeldLease {
    #[diesel(sql_type = Integer)]
    partition: i32,
    #[diesel(sql_type = BigInt)]
    epoch: i64,
}

/// Checks and locks, in the commit's transaction, the leases `claims` were planned under:
/// [`StoreError::Fenced`] with the partitions whose lease another node holds, has moved on to
/// another epoch, or has expired.
fn check_leases(conn: &mut PgConnection, claims: &[&LeaseClaim]) -> Result<(), StoreError> {
    let mut by_node: HashMap<&str, Vec<&LeaseClaim>> = HashMap::new();
    for claim in claims {
        by_node.entry(&claim.node_id).or_default().push(claim);
    }
    let mut fenced = BTreeSet::new();
    for (node_id, claims) in by_node {
        let partitions: Vec<i32> = claims.iter().map(|c| c.partition as i32).collect();
        let held: Vec<HeldLease> = diesel::sql_query(
            "SELECT partition, epoch FROM partition_leases \
             WHERE partition = ANY($1) AND owner = $2 AND expires_at > clock_timestamp() \
             FOR SHARE",
        )
        .bind::<Array<Integer>, _>(partitions)
        .bind::<Text, _>(node_id)
        .load(conn)?;
        let held: HashMap<u32, i64> = held
            .into_iter()
            .map(|h| (h.partition as u32, h.epoch))
            .collect();
        fenced.extend(
            claims
                .iter()
                .filter(|c| held.get(&c.partition) != Some(&c.epoch))
                .map(|c| c.partition),
        );
    }
    if fenced.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Fenced(fenced.into_iter().collect()))
    }
}
