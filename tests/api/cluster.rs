//! Cluster mode, with real node processes on one PostgreSQL: the partitions' leases spread
//! over the live nodes, a killed node's partitions are taken over once its leases expire, and a
//! node that stops cleanly hands its partitions over at once.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use orchestrator::store::DatabaseTarget;

use crate::common::{fresh_database, Backend, RemoveOnDrop, ServerProcess};

/// Leases in these tests: short, so takeovers are quick, long enough for a loaded machine.
const LEASE_TTL_MS: u64 = 4000;

fn node(database: &DatabaseTarget, id: &str) -> ServerProcess {
    let ttl = LEASE_TTL_MS.to_string();
    ServerProcess::spawn_with(
        database,
        &[("ORCH_NODE_ID", id), ("ORCH_LEASE_TTL_MS", ttl.as_str())],
    )
}

/// A metric's value in a node's `/metrics`.
async fn metric(node: &ServerProcess, name: &str) -> f64 {
    let r = node.http.get("/metrics").await;
    assert_eq!(r.status, 200);
    r.text
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

async fn owned(nodes: &[&ServerProcess]) -> Vec<u32> {
    let mut counts = Vec::new();
    for node in nodes {
        counts.push(metric(node, "orchestrator_partitions_owned").await as u32);
    }
    counts
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A count from the cluster's tables, read directly.
fn count(database: &DatabaseTarget, sql: &str) -> i64 {
    let DatabaseTarget::Postgres(url) = database else {
        unreachable!("cluster mode runs on PostgreSQL");
    };
    let mut conn = PgConnection::establish(url).expect("connect to the test database");
    let row: Count = diesel::sql_query(sql).get_result(&mut conn).expect(sql);
    row.n
}

/// Posts as a client does while partitions change hands: again after a 503 `not_owner`, as
/// its `Retry-After` asks (for at most 20 s).
async fn post_until_served(
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
fn print_warnings(nodes: &[&ServerProcess]) {
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
async fn until_owned(nodes: &[&ServerProcess], expected: &[u32], within: Duration) -> Duration {
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

#[actix_rt::test]
async fn partitions_spread_over_the_nodes_and_follow_them_when_they_go() {
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let a = node(&database, "node-a");
    // A node alone is a cluster of one: it holds every partition before it serves.
    assert_eq!(owned(&[&a]).await, [256]);
    let b = node(&database, "node-b");
    let c = node(&database, "node-c");
    // 256 over three: the first in id order holds one more.
    until_owned(&[&a, &b, &c], &[86, 85, 85], Duration::from_secs(20)).await;
    for n in [&a, &b, &c] {
        assert_eq!(n.http.get("/readyz").await.status, 200);
    }

    // SIGKILL: c hands nothing back. Its leases hold until they expire, and nobody takes
    // them before; then a and b share everything.
    let taken_before = metric(&a, "orchestrator_leases_taken_total").await;
    c.kill();
    assert_eq!(
        count(
            &database,
            "SELECT count(*) AS n FROM partition_leases WHERE owner = 'node-c' AND expires_at > now()"
        ),
        85
    );
    until_owned(&[&a, &b], &[128, 128], Duration::from_secs(30)).await;
    assert!(metric(&a, "orchestrator_leases_taken_total").await > taken_before);
    // Every partition that changed hands has a new epoch, so a stale owner's no longer
    // matches: only those a took first and kept are still at epoch 1.
    assert_eq!(
        count(
            &database,
            "SELECT count(*) AS n FROM partition_leases WHERE epoch = 1 AND owner <> 'node-a'"
        ),
        0
    );

    // SIGTERM: b hands its partitions back as it stops (they are free at once, not when
    // their leases expire) and leaves; a takes them in its next round.
    assert!(b.terminate().success());
    assert_eq!(
        count(
            &database,
            "SELECT count(*) AS n FROM partition_leases WHERE owner = 'node-b'"
        ),
        0
    );
    assert_eq!(
        count(
            &database,
            "SELECT count(*) AS n FROM cluster_nodes WHERE node_id = 'node-b'"
        ),
        0
    );
    until_owned(&[&a], &[256], Duration::from_secs(30)).await;
    assert_eq!(a.http.get("/readyz").await.status, 200);
}

/// A node paused past its leases (SIGSTOP: a long GC pause, a frozen VM) writes nothing from
/// its stale memory when it wakes: another node took the partitions over with a new epoch and
/// wrote, and the woken node's commit is fenced.
#[actix_rt::test]
async fn a_node_paused_past_its_lease_writes_nothing_stale_when_it_wakes() {
    use serde_json::json;
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let event = |n: u32| {
        json!({"event_type": "tool_use", "timestamp": "2026-12-05T10:00:00Z",
               "event_id": format!("e{n}")})
    };
    let a = node(&database, "node-a");
    for n in 1..=3 {
        let r = a.http.post("/v1/sessions/paused/events", event(n)).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }

    a.signal("STOP");
    // Past a's leases: b starts, finds them expired and takes every partition.
    actix_rt::time::sleep(Duration::from_millis(LEASE_TTL_MS + 500)).await;
    let b = node(&database, "node-b");
    assert_eq!(owned(&[&b]).await, [256]);
    for n in 4..=6 {
        let r = b.http.post("/v1/sessions/paused/events", event(n)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["last_seq"], n);
    }

    // a wakes with the session's actor still in memory, at seq 3 under epoch 1. A request that
    // reaches that actor (one marked as forwarded to a, which a serves itself) has its commit
    // fenced: 503 not_owner, nothing stored.
    a.signal("CONT");
    let mut fenced = awc::Client::new()
        .post(format!("{}/v1/sessions/paused/events", a.http.base_url))
        .insert_header(("x-orchestrator-forwarded", "a-test"))
        .send_json(&event(7))
        .await
        .expect("a answers");
    let body: serde_json::Value = fenced.json().await.expect("problem JSON");
    assert_eq!(
        (fenced.status().as_u16(), body["code"].as_str()),
        (503, Some("not_owner")),
        "{body}"
    );
    assert!(fenced.headers().contains_key("retry-after"));
    assert!(metric(&a, "orchestrator_fenced_commits_total").await >= 1.0);
    // The client's retry at a is served by the partition's owner (forwarded, or by a itself
    // under a new lease with the session loaded afresh): the event follows the six stored.
    let retried = post_until_served(&a, "/v1/sessions/paused/events", event(7)).await;
    assert_eq!(
        (retried.status, retried.body["last_seq"].as_i64()),
        (201, Some(7)),
        "{}",
        retried.text
    );

    // What is stored is exactly what was acknowledged, in order, once.
    let listed = b.http.get("/v1/sessions/paused/events").await;
    let ids: Vec<(i64, String)> = listed.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["seq"].as_i64().unwrap(),
                e["event_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(i64, String)> = (1..=7).map(|n| (n, format!("e{n}"))).collect();
    assert_eq!(ids, expected);
    assert_eq!(
        b.http.get("/v1/sessions/paused").await.body["event_count"],
        7
    );
}

/// A node restarted after a crash with the same `ORCH_NODE_ID` resumes its partitions at once,
/// each with a new epoch (so what is left of its predecessor could not commit), instead of
/// waiting for its old leases to expire.
#[actix_rt::test]
async fn a_node_restarted_with_its_id_resumes_its_partitions_at_once() {
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let first = node(&database, "solo");
    assert_eq!(owned(&[&first]).await, [256]);
    first.kill();
    let again = node(&database, "solo");
    assert_eq!(owned(&[&again]).await, [256], "held before it serves");
    assert_eq!(
        count(
            &database,
            "SELECT count(*) AS n FROM partition_leases WHERE owner = 'solo' AND epoch = 2"
        ),
        256
    );
    let r = again
        .http
        .post(
            "/v1/sessions/s/events",
            serde_json::json!({"event_type": "x", "timestamp": "2026-12-05T10:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Clients spread over three nodes, each request to the next: every node answers for every
/// session, the node that holds a session's partition doing the work.
#[actix_rt::test]
async fn any_node_answers_for_any_session() {
    use futures_util::future::join_all;
    use serde_json::json;
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let (a, b, c) = (
        node(&database, "node-a"),
        node(&database, "node-b"),
        node(&database, "node-c"),
    );
    until_owned(&[&a, &b, &c], &[86, 85, 85], Duration::from_secs(20)).await;
    let nodes = [&a, &b, &c];

    // A new session raced from every node is created once, and nobody gets a 503.
    let puts = (0..30).map(|i| nodes[i % 3].http.put("/v1/sessions/raced", json!({})));
    let mut statuses: Vec<u16> = join_all(puts).await.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "{statuses:?}"
    );

    // Ordered events through every node in turn: stored gap-free, in the client's order.
    for n in 0..30u32 {
        let event = json!({"event_type": "step", "timestamp": "2026-12-05T10:00:00Z",
                           "event_id": format!("e{n}"), "sequence": n});
        let r = nodes[n as usize % 3]
            .http
            .post("/v1/sessions/ordered/events", event)
            .await;
        if r.status != 201 {
            print_warnings(&nodes);
        }
        assert_eq!(
            (r.status, r.body["last_seq"].as_u64()),
            (201, Some(u64::from(n) + 1)),
            "{}",
            r.text
        );
    }
    for n in nodes {
        let listed = n.http.get("/v1/sessions/ordered/events?limit=100").await;
        let ids: Vec<&str> = listed.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (0..30).map(|n| format!("e{n}")).collect();
        assert_eq!(ids, expected);
    }

    // A decision raced from two nodes: one wins, the interaction completes once.
    let created = a
        .http
        .post(
            "/v1/sessions/raced/interactions",
            json!({"interaction_id": "ask", "kind": "approval", "payload": {}}),
        )
        .await;
    if created.status != 201 {
        print_warnings(&nodes);
    }
    assert_eq!(created.status, 201, "{}", created.text);
    let base = "/v1/sessions/raced/interactions/ask";
    let (resolved, rejected) = tokio::join!(
        b.http
            .post(format!("{base}/resolve"), json!({"response": {}})),
        c.http
            .post(format!("{base}/reject"), json!({"reason": "no"}))
    );
    let outcomes = [&resolved, &rejected];
    assert!(
        outcomes.iter().all(|r| r.status == 200 || r.status == 409),
        "{outcomes:?}"
    );
    let winners = outcomes
        .iter()
        .filter(|r| r.status == 200 && r.body["completed_now"] == true)
        .count();
    assert_eq!(winners, 1, "{outcomes:?}");

    // A write acknowledged by one node is visible through every node at once.
    for (i, writer) in nodes.iter().enumerate() {
        let session = format!("/v1/sessions/seen-{i}");
        let r = writer
            .http
            .post(
                format!("{session}/events"),
                json!({"event_type": "x", "timestamp": "2026-12-05T10:00:00Z"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        for reader in nodes {
            let r = reader.http.get(session.clone()).await;
            assert_eq!((r.status, r.body["event_count"].as_i64()), (200, Some(1)));
        }
    }

    // Claude Code's HTTP hook names its session in the body; any node takes it.
    for (i, n) in nodes.iter().enumerate() {
        let input = json!({"session_id": "hooked", "hook_event_name": "UserPromptSubmit",
                           "prompt": format!("step {i}"), "cwd": "/tmp"});
        let r = n.http.post("/v1/hooks/claude-code", input).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let forwarded: f64 = {
        let mut total = 0.0;
        for n in nodes {
            total += metric(n, "orchestrator_forwarded_requests_total").await;
        }
        total
    };
    assert!(forwarded > 0.0, "requests were forwarded to their owners");
}

/// A node that takes a partition over arms the pending deadlines of its sessions: an approval
/// times out on time even though nobody uses its session again.
#[actix_rt::test]
async fn deadlines_fire_on_the_node_that_takes_the_partition_over() {
    use serde_json::json;
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let a = node(&database, "node-a");
    assert_eq!(
        a.http.put("/v1/sessions/timed", json!({})).await.status,
        201
    );
    let created = a
        .http
        .post(
            "/v1/sessions/timed/interactions",
            json!({"interaction_id": "ask", "kind": "approval", "payload": {}, "timeout_ms": 1000}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    // a dies holding the partition; b starts while a's leases still hold, so the deadline
    // passes before b holds the session (b's start-up wakes only the sessions it holds).
    a.kill();
    let b = node(&database, "node-b");
    until_owned(&[&b], &[256], Duration::from_secs(30)).await;
    let started = Instant::now();
    let timed_out = "SELECT count(*) AS n FROM interactions \
                     WHERE interaction_id = 'ask' AND status = 'timed_out'";
    while count(&database, timed_out) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the approval's deadline never fired on the node that took its session over"
        );
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A long-poll on one node wakes for a commit made on another at once, not when its wait
/// ends: each node announces its commits, and the others' listeners wake their readers.
#[actix_rt::test]
async fn a_long_poll_on_one_node_wakes_for_a_commit_on_another() {
    use orchestrator::cluster::partition::partition_of;
    use serde_json::json;
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let (a, b) = (node(&database, "node-a"), node(&database, "node-b"));
    until_owned(&[&a, &b], &[128, 128], Duration::from_secs(20)).await;
    // A session that a holds, so that its commit is a's and b's reader must hear of it.
    let held_by_a = (0..)
        .map(|i| format!("held-{i}"))
        .find(|sid| {
            let partition = partition_of("default", sid, 256);
            let sql = format!(
                "SELECT count(*) AS n FROM partition_leases \
                 WHERE partition = {partition} AND owner = 'node-a'"
            );
            count(&database, &sql) == 1
        })
        .unwrap();
    let latest = b.http.get("/v1/notifications/latest").await.body["id"]
        .as_i64()
        .unwrap();
    let started = Instant::now();
    let (polled, posted) = tokio::join!(
        b.http
            .get(format!("/v1/notifications?after={latest}&wait_ms=20000")),
        async {
            actix_rt::time::sleep(Duration::from_millis(500)).await;
            a.http
                .post(
                    format!("/v1/sessions/{held_by_a}/events"),
                    json!({"event_type": "x", "timestamp": "2026-12-05T10:00:00Z"}),
                )
                .await
        }
    );
    assert_eq!(posted.status, 201, "{}", posted.text);
    assert_eq!(polled.status, 200, "{}", polled.text);
    let heard = polled.body["notifications"].as_array().unwrap();
    assert!(
        heard.iter().any(|n| n["session_id"] == held_by_a.as_str()),
        "{heard:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken by the commit, not by the end of its 20 s wait ({:?})",
        started.elapsed()
    );
}
