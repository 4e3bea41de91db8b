//! Who holds which partition: the leases spread over the live nodes, a killed node's
//! partitions are taken over once its leases expire, a node that stops cleanly hands its
//! partitions over at once, a paused node is fenced, a restarted one resumes, and deadlines
//! move with their partitions.

use std::time::{Duration, Instant};

use crate::common::{fresh_database, Backend, RemoveOnDrop};

use super::*;

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

/// Nodes started together on a new database all start: one migrates it while the others wait
/// for it, instead of each creating the same tables and all but one failing.
#[actix_rt::test]
async fn nodes_started_together_on_a_new_database_all_serve() {
    use crate::common::ServerProcess;
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let ttl = LEASE_TTL_MS.to_string();
    let launched: Vec<_> = ["node-a", "node-b", "node-c"]
        .into_iter()
        .map(|id| {
            ServerProcess::launch(
                &database,
                &[("ORCH_NODE_ID", id), ("ORCH_LEASE_TTL_MS", ttl.as_str())],
                None,
            )
        })
        .collect();
    let nodes: Vec<ServerProcess> = launched.into_iter().map(|l| l.serving()).collect();
    let refs: Vec<&ServerProcess> = nodes.iter().collect();
    until_spread(&refs, Duration::from_secs(30)).await;
}
