//! Cluster leases (PostgreSQL): the nodes serving the database and the partitions' leases, on
//! the database's clock. A node says it is alive, renews the leases it holds before they
//! expire, takes a partition only when nobody holds an unexpired lease on it (its epoch then
//! grows by one), and hands partitions back when it has more than its share or stops.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};

/// A node and where the others reach it.
#[derive(Clone, Debug, PartialEq, Eq, QueryableByName)]
pub struct Node {
    #[diesel(sql_type = Text)]
    pub node_id: String,
    #[diesel(sql_type = Text)]
    pub advertise_url: String,
}

/// A partition's lease: its owner while the lease holds (`None` once it expired or was handed
/// back), where the owner is reached, and its epoch.
#[derive(Clone, Debug, PartialEq, Eq, QueryableByName)]
pub struct Lease {
    #[diesel(sql_type = Integer)]
    pub partition: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub owner: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub owner_url: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub epoch: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Integer)]
    partitions: i32,
}

#[derive(QueryableByName)]
struct Held {
    #[diesel(sql_type = Integer)]
    partition: i32,
    #[diesel(sql_type = BigInt)]
    epoch: i64,
}

/// How many partitions sessions hash into.
pub fn partitions(conn: &mut PgConnection) -> QueryResult<u32> {
    let row: Count =
        diesel::sql_query("SELECT partitions FROM cluster_settings").get_result(conn)?;
    Ok(row.partitions.max(1) as u32)
}

/// Reserves the next `size` session keys for one node: `(start, end)`, end exclusive. Never
/// below one past the highest stored key (sessions made before cluster mode count).
pub fn reserve_session_keys(conn: &mut PgConnection, size: i64) -> QueryResult<(i64, i64)> {
    #[derive(QueryableByName)]
    struct Block {
        #[diesel(sql_type = BigInt)]
        start: i64,
    }
    let block: Block = diesel::sql_query(
        "UPDATE cluster_settings SET next_session_key = \
         greatest(next_session_key, (SELECT coalesce(max(session_key), 0) + 1 FROM sessions)) + $1 \
         RETURNING next_session_key - $1 AS start",
    )
    .bind::<BigInt, _>(size)
    .get_result(conn)?;
    Ok((block.start, block.start + size))
}

/// Says that `node_id` is alive and reached at `advertise_url`.
pub fn heartbeat(conn: &mut PgConnection, node_id: &str, advertise_url: &str) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO cluster_nodes (node_id, advertise_url, started_at, heartbeat_at) \
         VALUES ($1, $2, now(), now()) ON CONFLICT (node_id) DO UPDATE \
         SET advertise_url = EXCLUDED.advertise_url, heartbeat_at = now()",
    )
    .bind::<Text, _>(node_id)
    .bind::<Text, _>(advertise_url)
    .execute(conn)?;
    Ok(())
}

/// The nodes that have said they are alive within `ttl_ms`, by id.
pub fn live_nodes(conn: &mut PgConnection, ttl_ms: i64) -> QueryResult<Vec<Node>> {
    diesel::sql_query(
        "SELECT node_id, advertise_url FROM cluster_nodes \
         WHERE heartbeat_at > now() - $1 * interval '1 millisecond' ORDER BY node_id",
    )
    .bind::<BigInt, _>(ttl_ms)
    .load(conn)
}

/// Every lease, by partition; the owner (and its address) only where the lease still holds.
pub fn leases(conn: &mut PgConnection) -> QueryResult<Vec<Lease>> {
    diesel::sql_query(
        "SELECT l.partition, CASE WHEN l.expires_at > now() THEN l.owner END AS owner, \
         CASE WHEN l.expires_at > now() THEN n.advertise_url END AS owner_url, l.epoch \
         FROM partition_leases l LEFT JOIN cluster_nodes n ON n.node_id = l.owner \
         ORDER BY l.partition",
    )
    .load(conn)
}

/// Where `partition` is served now: its owner's address, while its lease holds.
pub fn owner_url(conn: &mut PgConnection, partition: u32) -> QueryResult<Option<String>> {
    #[derive(QueryableByName)]
    struct Url {
        #[diesel(sql_type = Text)]
        advertise_url: String,
    }
    let rows: Vec<Url> = diesel::sql_query(
        "SELECT n.advertise_url FROM partition_leases l \
         JOIN cluster_nodes n ON n.node_id = l.owner \
         WHERE l.partition = $1 AND l.expires_at > now()",
    )
    .bind::<Integer, _>(partition as i32)
    .load(conn)?;
    Ok(rows.into_iter().next().map(|u| u.advertise_url))
}

/// Extends every lease `node_id` still holds by `ttl_ms`; returns them with their epochs. A
/// lease that expired before this is not renewed: it may be someone else's already.
pub fn renew(conn: &mut PgConnection, node_id: &str, ttl_ms: i64) -> QueryResult<Vec<(u32, i64)>> {
    let held: Vec<Held> = diesel::sql_query(
        "UPDATE partition_leases SET expires_at = now() + $2 * interval '1 millisecond' \
         WHERE owner = $1 AND expires_at > now() RETURNING partition, epoch",
    )
    .bind::<Text, _>(node_id)
    .bind::<BigInt, _>(ttl_ms)
    .load(conn)?;
    Ok(held
        .into_iter()
        .map(|h| (h.partition as u32, h.epoch))
        .collect())
}

/// A node starting with an id that still holds leases (it was restarted after a crash, faster
/// than its leases expire) resumes them at once, each with a new epoch: whatever is left of
/// its predecessor (a process paused rather than dead) can no longer commit under them.
pub fn resume(conn: &mut PgConnection, node_id: &str, ttl_ms: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE partition_leases SET epoch = epoch + 1, \
         expires_at = now() + $2 * interval '1 millisecond' \
         WHERE owner = $1 AND expires_at > now()",
    )
    .bind::<Text, _>(node_id)
    .bind::<BigInt, _>(ttl_ms)
    .execute(conn)
}

/// Takes `partition` for `node_id` for `ttl_ms` if nobody holds it: its new epoch, or `None`
/// when another node holds an unexpired lease (or took it first).
pub fn take(
    conn: &mut PgConnection,
    node_id: &str,
    partition: u32,
    ttl_ms: i64,
) -> QueryResult<Option<i64>> {
    let taken: Vec<Held> = diesel::sql_query(
        "INSERT INTO partition_leases AS l (partition, owner, epoch, expires_at) \
         VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond') \
         ON CONFLICT (partition) DO UPDATE \
         SET owner = EXCLUDED.owner, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at \
         WHERE l.owner IS NULL OR l.expires_at <= now() \
         RETURNING partition, epoch",
    )
    .bind::<Integer, _>(partition as i32)
    .bind::<Text, _>(node_id)
    .bind::<BigInt, _>(ttl_ms)
    .load(conn)?;
    Ok(taken.first().map(|h| h.epoch))
}

/// Hands `partitions` back at once, those `node_id` holds: another node may take them now
/// rather than after their leases expire. Returns how many it handed back.
pub fn release(conn: &mut PgConnection, node_id: &str, partitions: &[u32]) -> QueryResult<usize> {
    let partitions: Vec<i32> = partitions.iter().map(|p| *p as i32).collect();
    diesel::sql_query(
        "UPDATE partition_leases SET owner = NULL, expires_at = now() \
         WHERE owner = $1 AND partition = ANY($2)",
    )
    .bind::<Text, _>(node_id)
    .bind::<Array<Integer>, _>(partitions)
    .execute(conn)
}

/// `node_id` stops: every partition it holds is handed back, and it is no longer a node.
pub fn leave(conn: &mut PgConnection, node_id: &str) -> QueryResult<()> {
    conn.transaction(|tx| {
        diesel::sql_query(
            "UPDATE partition_leases SET owner = NULL, expires_at = now() WHERE owner = $1",
        )
        .bind::<Text, _>(node_id)
        .execute(tx)?;
        diesel::sql_query("DELETE FROM cluster_nodes WHERE node_id = $1")
            .bind::<Text, _>(node_id)
            .execute(tx)?;
        Ok(())
    })
}

/// The channel a node announces its commits on: the payload is the newest notification id.
pub const COMMITS_CHANNEL: &str = "orchestrator_commits";

/// Tells the other nodes, after a commit, that notifications up to `newest` exist: a hint that
/// wakes their long-polls and streams (see `cluster::listener`).
pub fn announce_commit(conn: &mut PgConnection, newest: i64) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(COMMITS_CHANNEL)
        .bind::<Text, _>(newest.to_string())
        .execute(conn)
        .map(drop)
}
