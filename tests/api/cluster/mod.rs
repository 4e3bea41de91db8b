//! Cluster mode, with real node processes on one PostgreSQL, clients spread over the nodes:
//! - `ownership`: the partitions' leases spread over the live nodes and follow them when they
//!   go (killed, stopped, paused past their leases, restarted), with the deadlines they carry;
//! - `requests`: any node answers for any session, and readers and waiters on one node hear
//!   of commits made on another;
//! - `failover`: nodes killed or restarted one by one under load lose and double nothing;
//! - `proxy`: the same behind the round-robin proxy deploy/ ships (nginx);
//! - the race harness runs across three nodes too (`race_harness::across_nodes`).

mod failover;
mod load;
mod ownership;
mod proxy;
mod requests;

use std::time::{Duration, Instant};

use diesel::prelude::*;
use orchestrator::store::DatabaseTarget;

use crate::common::ServerProcess;

/// Leases in these tests: short, so takeovers are quick, long enough for a loaded machine.
pub const LEASE_TTL_MS: u64 = 4000;

pub fn node(database: &DatabaseTarget, id: &str) -> ServerProcess {
    node_with(database, id, &[])
}

/// [`node`] with more settings.
pub fn node_with(database: &DatabaseTarget, id: &str, settings: &[(&str, &str)]) -> ServerProcess {
    let ttl = LEASE_TTL_MS.to_string();
    let mut env = vec![("ORCH_NODE_ID", id), ("ORCH_LEASE_TTL_MS", ttl.as_str())];
    env.extend_from_slice(settings);
    ServerProcess::spawn_with(database, &env)
}

/// A metric's value in a node's `/metrics`.
pub async fn metric(node: &ServerProcess, name: &str) -> f64 {
    let r = node.http.get("/metrics").await;
    assert_eq!(r.status, 200);
    r.text
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

pub async fn owned(nodes: &[&ServerProcess]) -> Vec<u32> {
    let mut counts = Vec::new();
    for node in nodes {
        counts.push(metric(node, "orchestrator_partitions_owned").await as u32);
    }
    counts
}

#[derive(QueryableByName)]
pub struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A count from the cluster's tables, read directly.
pub fn count(database: &DatabaseTarget, sql: &str) -> i64 {
    let DatabaseTarget::Postgres(url) = database else {
        unreachable!("cluster mode runs on PostgreSQL");
    };
    let mut conn = PgConnection::establish(url).expect("connect to the test database");
    let row: Count = diesel::sql_query(sql).get_result(&mut conn).expect(sql);
    row.n
}

/// Posts as a client does while partitions change hands: again after a 503 `not_owner`, as
/// its `Retry-After` asks (for at most 20 s).
pub async fn post_until_served(
    node: &ServerProcess,
    path: &str,
    body: serde_json::Value,
) -> crate::common::Resp {
    let started = Instant::now();
    loop {
        let r = node.http.post(path, body.clone()).await;
        if r.status != 503
            || r.body["code"] != "not_owner"
            || started.elapsed() > Duration::from_secs(20)
        {
            return r;
        }
        assert!(r.retry_after.is_some());
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The nodes' warnings and errors, to explain a failing assertion.
pub fn print_warnings(nodes: &[&ServerProcess]) {
    for node in nodes {
        let log = node.log.lock().unwrap();
        for line in log
            .iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        {
            eprintln!("{line}");
        }
    }
}

/// Waits until the nodes hold `expected` partitions each; how long it took.
pub async fn until_owned(nodes: &[&ServerProcess], expected: &[u32], within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let counts = owned(nodes).await;
        if counts == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "the nodes hold {counts:?} partitions, not {expected:?}, after {within:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until three nodes hold 85, 85 and 86 partitions, in any order (which node gets the
/// extra one depends on who came when); how long it took.
pub async fn until_spread(nodes: &[&ServerProcess], within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let mut counts = owned(nodes).await;
        counts.sort_unstable();
        if counts == [85, 85, 86] {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "the nodes hold {counts:?} partitions after {within:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Three nodes on `database`, once they have spread the partitions over themselves.
pub async fn three_nodes(database: &DatabaseTarget) -> [ServerProcess; 3] {
    three_nodes_with(database, &[]).await
}

/// [`three_nodes`] with more settings.
pub async fn three_nodes_with(
    database: &DatabaseTarget,
    settings: &[(&str, &str)],
) -> [ServerProcess; 3] {
    let nodes = ["node-a", "node-b", "node-c"].map(|id| node_with(database, id, settings));
    let [a, b, c] = &nodes;
    until_owned(&[a, b, c], &[86, 85, 85], Duration::from_secs(30)).await;
    nodes
}

/// The node that holds the partition of session `session_id` (default scope) now.
pub fn owner_of(database: &DatabaseTarget, session_id: &str) -> Option<String> {
    #[derive(QueryableByName)]
    struct Owner {
        #[diesel(sql_type = diesel::sql_types::Text)]
        owner: String,
    }
    let DatabaseTarget::Postgres(url) = database else {
        unreachable!("cluster mode runs on PostgreSQL");
    };
    let partition = orchestrator::cluster::partition::partition_of("default", session_id, 256);
    let mut conn = PgConnection::establish(url).expect("connect to the test database");
    let owners: Vec<Owner> = diesel::sql_query(format!(
        "SELECT owner FROM partition_leases WHERE partition = {partition} AND owner IS NOT NULL"
    ))
    .load(&mut conn)
    .expect("the partition's owner");
    owners.into_iter().next().map(|o| o.owner)
}

/// A session id starting with `prefix` whose partition `node_id` holds.
pub fn session_held_by(database: &DatabaseTarget, node_id: &str, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|sid| owner_of(database, sid).as_deref() == Some(node_id))
        .unwrap()
}
