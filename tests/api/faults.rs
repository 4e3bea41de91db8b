//! Faults against the real database: PostgreSQL refusing this test's database under load.
//! Requests fail fast with 503 `storage_unavailable` (never hang), nothing acknowledged is
//! lost, a notification stream followed across the outage misses and repeats nothing, and the
//! service recovers by itself when the database is back.

use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};
use futures_util::future::join_all;
use serde_json::json;

use crate::common::{event, TestApp};
use orchestrator::store::DatabaseTarget;

/// Cuts this test's database off: running connections are terminated, new ones refused.
fn set_database_reachable(database: &DatabaseTarget, reachable: bool) {
    let DatabaseTarget::Postgres(url) = database else {
        unreachable!("a Postgres test")
    };
    let name = url.rsplit('/').next().unwrap().to_owned();
    let admin = crate::common::postgres_admin_url().expect("a PostgreSQL cluster");
    let mut admin = PgConnection::establish(&admin).unwrap();
    diesel::sql_query(format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS {reachable}"
    ))
    .execute(&mut admin)
    .unwrap();
    if !reachable {
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .execute(&mut admin)
        .unwrap();
    }
}

#[actix_rt::test]
async fn postgres_outage_gives_503_then_recovers() {
    let Some(app) = TestApp::start_with(crate::common::Backend::Postgres, |c| {
        c.db_timeout = Duration::from_millis(500);
    })
    .await
    else {
        return;
    };
    let r = app.post("/v1/sessions/f/events", event("before", 1)).await;
    assert_eq!(r.status, 201);
    let before_outage = app.all_notifications(None).await;
    let last_before = before_outage.last().unwrap()["id"].as_i64().unwrap();
    // A stream that follows the whole outage, resuming with Last-Event-ID whenever the server
    // ends it (as a browser's EventSource does), until the marker session after recovery.
    let follow = async {
        let mut seen: Vec<serde_json::Value> = Vec::new();
        while seen.last().is_none_or(|m| m["session_id"] != "end") {
            let from = seen
                .last()
                .map_or(last_before, |m| m["id"].as_i64().unwrap());
            let part = app
                .sse_until("", Some(from), |m| m.2["session_id"] == "end")
                .await;
            if part.is_empty() {
                actix_rt::time::sleep(Duration::from_millis(100)).await;
            }
            seen.extend(part.into_iter().map(|m| m.2));
        }
        seen
    };
    let outage = async {
        set_database_reachable(&app.database, false);
        let during = join_all((0..20).map(|i| {
            let path = if i % 2 == 0 {
                "/v1/sessions/f/events".to_owned()
            } else {
                format!("/v1/sessions/g{i}/events")
            };
            app.post(path, event("during", 100 + i))
        }));
        let during = actix_rt::time::timeout(Duration::from_secs(20), during)
            .await
            .expect("no request hangs while the database is down");
        let mut refused = 0;
        for r in &during {
            assert!(r.status == 503 || r.status == 201, "{}", r.text);
            if r.status == 503 {
                assert_eq!(r.body["code"], "storage_unavailable", "{}", r.text);
                assert_eq!(r.retry_after.as_deref(), Some("1"));
                refused += 1;
            }
        }
        assert!(refused > 0, "the outage was noticed");
        let r = app.get("/readyz").await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (503, Some("storage_unavailable"))
        );
        let r = app.get("/v1/sessions/f").await;
        assert_eq!(r.status, 503);
        assert_eq!(
            app.get("/healthz").await.status,
            200,
            "the process itself is alive"
        );

        set_database_reachable(&app.database, true);
        // Recovery without a restart: the pool reconnects, crashed session actors reload.
        let mut recovered = false;
        for attempt in 0..40 {
            let r = app
                .post("/v1/sessions/f/events", event("after", 1000 + attempt))
                .await;
            if r.status == 201 {
                recovered = true;
                break;
            }
            assert_eq!(r.status, 503, "{}", r.text);
            actix_rt::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(recovered, "the service came back by itself");
        assert_eq!(app.get("/readyz").await.status, 200);
        assert_eq!(app.put("/v1/sessions/end", json!({})).await.status, 201);
        during
    };
    let (streamed, during) = futures_util::future::join(follow, outage).await;
    let after_outage = app.all_notifications(None).await[before_outage.len()..].to_vec();
    assert_eq!(
        streamed, after_outage,
        "the stream saw exactly what is stored, across the outage and its reconnects"
    );
    // Exactly the acknowledged events are stored.
    let acknowledged = 1
        + during
            .iter()
            .enumerate()
            .filter(|(i, r)| i % 2 == 0 && r.status == 201)
            .count()
        + 1;
    let events = app.all_events("f").await;
    assert_eq!(events.len(), acknowledged, "{events:?}");
    let session = app.get("/v1/sessions/f").await;
    assert_eq!(
        session.body["event_count"].as_u64().unwrap() as usize,
        acknowledged
    );
    let r = app
        .post(
            "/v1/sessions/f/events",
            json!({"event_type": "x", "timestamp": "2026-11-22T11:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 201);
}

/// SQLite: another process holds the write lock. Writes fail within ORCH_DB_TIMEOUT_MS with
/// 503 (nothing stored), reads go on (WAL), writes succeed again once the lock is gone, and a
/// stream that was live throughout sees exactly the stored notifications.
#[actix_rt::test]
async fn sqlite_write_lock_gives_503_then_recovers() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::start_with(crate::common::Backend::Sqlite, |c| {
        c.db_timeout = Duration::from_millis(300);
    })
    .await
    .unwrap();
    assert_eq!(
        app.post("/v1/sessions/l/events", event("before", 1))
            .await
            .status,
        201
    );
    let DatabaseTarget::Sqlite(path) = &app.database else {
        unreachable!()
    };
    let mut blocker = diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
    let before = app.all_notifications(Some("l")).await;
    let last_before = before.last().unwrap()["id"].as_i64().unwrap();
    // A live stream across the outage: the failed commits make the committer's notification
    // feed forget what it held, and the stream must still go on without a gap or a repeat.
    let live = app.sse_until("?session_id=l", Some(last_before), |m| {
        m.2["type"] == "interaction.created"
    });
    let outage = async {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        blocker.batch_execute("BEGIN EXCLUSIVE").unwrap();
        let during = actix_rt::time::timeout(
            Duration::from_secs(20),
            join_all((0..5).map(|i| app.post("/v1/sessions/l/events", event("during", 10 + i)))),
        )
        .await
        .expect("no request hangs on a locked database");
        // Reads are not blocked by a writer in WAL mode, but the service is not ready: its
        // commits fail.
        assert_eq!(app.get("/v1/sessions/l").await.body["event_count"], 1);
        let ready = app.get("/readyz").await;
        assert_eq!(
            (ready.status, ready.body["code"].as_str()),
            (503, Some("storage_unavailable")),
            "{}",
            ready.text
        );
        blocker.batch_execute("ROLLBACK").unwrap();
        // The session's actor restarts after the failed commits; on a busy machine that can
        // take longer than this test's 300 ms timeout, and a 503 is then the answer to retry.
        let mut r = app.post("/v1/sessions/l/events", event("after", 30)).await;
        for _ in 0..20 {
            if r.status != 503 {
                break;
            }
            actix_rt::time::sleep(Duration::from_millis(100)).await;
            r = app.post("/v1/sessions/l/events", event("after", 30)).await;
        }
        assert_eq!(r.status, 201, "{}", r.text);
        // The end of what the stream must see.
        let marker = json!({"interaction_id": "end", "kind": "marker"});
        let r = app.post("/v1/sessions/l/interactions", marker).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            app.get("/readyz").await.status,
            200,
            "a commit went through"
        );
        during
    };
    let (streamed, during) = futures_util::future::join(live, outage).await;
    for r in &during {
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (503, Some("storage_unavailable")),
            "{}",
            r.text
        );
        assert_eq!(r.retry_after.as_deref(), Some("1"));
    }
    let events = app.all_events("l").await;
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    // A refused write is not known to be stored; one whose commit was still waiting for the
    // lock when its deadline passed is stored once the lock is released, exactly once.
    assert_eq!(types.first(), Some(&"before"));
    assert_eq!(types.last(), Some(&"after"));
    assert!(
        types.len() <= 2 + 5 && types[1..types.len() - 1].iter().all(|t| *t == "during"),
        "{types:?}"
    );
    let after: Vec<serde_json::Value> =
        app.all_notifications(Some("l")).await[before.len()..].to_vec();
    let streamed: Vec<serde_json::Value> = streamed.into_iter().map(|m| m.2).collect();
    assert_eq!(
        streamed, after,
        "the live stream saw exactly what is stored"
    );
    assert_eq!(
        after[0]["id"].as_i64().unwrap(),
        last_before + 1,
        "no id was used up by the refused commits"
    );
}

/// PostgreSQL cuts every connection of this database while the service is idle (a restart, a
/// failover, an administrator). Pooled connections idle for over a second are checked before
/// use, and so is the committer's, so the next reads and writes succeed without a 503.
#[actix_rt::test]
async fn connections_cut_while_idle_are_replaced_without_an_error() {
    let Some(app) = TestApp::start(crate::common::Backend::Postgres).await else {
        return;
    };
    let r = app
        .post("/v1/sessions/cut/events", event("before", 1))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(app.get("/v1/sessions/cut/events").await.status, 200);

    // Terminate the backends but keep accepting new connections.
    set_database_reachable(&app.database, false);
    set_database_reachable(&app.database, true);
    actix_rt::time::sleep(orchestrator::store::TRUSTED_AFTER_USE + Duration::from_millis(300))
        .await;

    let r = app.get("/v1/sessions/cut/events").await;
    assert_eq!(r.status, 200, "a read after the cut: {}", r.text);
    let r = app.post("/v1/sessions/cut/events", event("after", 2)).await;
    assert_eq!(r.status, 201, "a write after the cut: {}", r.text);
    let r = app.post("/v1/sessions/other/events", event("new", 3)).await;
    assert_eq!(r.status, 201, "a new session after the cut: {}", r.text);
    assert_eq!(app.all_events("cut").await.len(), 2);
}

/// PostgreSQL: another session holds `ACCESS EXCLUSIVE` on the events table for longer than
/// ORCH_DB_TIMEOUT_MS. The commit waiting for it gives up at the lock timeout, so the write is
/// answered 503 while the lock is still held (it answered 201 after the lock was released, up
/// to 14 s later); once the lock is gone the same write commits.
#[actix_rt::test]
async fn a_locked_postgres_table_gives_503_within_the_timeout() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let Some(app) = TestApp::start_with(crate::common::Backend::Postgres, |c| {
        c.db_timeout = Duration::from_millis(500);
    })
    .await
    else {
        return;
    };
    assert_eq!(
        app.post("/v1/sessions/lk/events", event("before", 1))
            .await
            .status,
        201
    );
    let DatabaseTarget::Postgres(url) = app.database.clone() else {
        unreachable!()
    };
    let held = Arc::new(AtomicBool::new(false));
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = {
        let held = held.clone();
        std::thread::spawn(move || {
            use diesel::connection::SimpleConnection;
            let mut blocker = PgConnection::establish(&url).unwrap();
            blocker
                .batch_execute("BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE;")
                .unwrap();
            held.store(true, Ordering::SeqCst);
            locked_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_secs(6));
            held.store(false, Ordering::SeqCst);
            blocker.batch_execute("ROLLBACK;").unwrap();
        })
    };
    locked_rx.recv().unwrap();
    let during = app.post("/v1/sessions/lk/events", event("during", 2)).await;
    let answered_while_held = held.load(Ordering::SeqCst);
    assert_eq!(
        (during.status, during.body["code"].as_str()),
        (503, Some("storage_unavailable")),
        "{}",
        during.text
    );
    assert!(
        answered_while_held,
        "answered only after the lock was released"
    );
    // Not ready once the commit has run past the timeout or failed (both within it).
    let mut ready = app.get("/readyz").await;
    for _ in 0..20 {
        if ready.status != 200 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        ready = app.get("/readyz").await;
    }
    assert_eq!(
        (ready.status, ready.body["code"].as_str()),
        (503, Some("storage_unavailable")),
        "not ready while commits fail: {}",
        ready.text
    );
    // A read that needs the locked table ends at the timeout too.
    let read_started = std::time::Instant::now();
    let listing = app.get("/v1/sessions/lk/events").await;
    assert_eq!(listing.status, 503, "{}", listing.text);
    assert!(
        read_started.elapsed() < Duration::from_secs(4),
        "{:?}",
        read_started.elapsed()
    );
    while !holder.is_finished() {
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    holder.join().unwrap();
    // A new client: the server has closed the idle kept-alive connection meanwhile. The
    // session's actor crashed on the failed commit, so this write waits for a successor to
    // load; on a loaded machine that can take longer than this test's 500 ms deadline, and the
    // answer is then the documented "503, retry shortly". A client retrying gets its 201.
    let client = crate::common::Client::new(app.base_url.clone());
    let mut after = client
        .post("/v1/sessions/lk/events", event("during", 2))
        .await;
    for _ in 0..20 {
        if after.status != 503 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(200)).await;
        after = client
            .post("/v1/sessions/lk/events", event("during", 2))
            .await;
    }
    assert_eq!(after.status, 201, "{}", after.text);
    assert_eq!(app.all_events("lk").await.len(), 2);
    assert_eq!(client.get("/readyz").await.status, 200);
}

/// However the database stalls (here the commit hangs before it starts, as on a frozen
/// filesystem, where no database timeout fires), a write is answered 503 within
/// ORCH_DB_TIMEOUT_MS and `/readyz` says 503 while the commit is stuck. The write itself is not
/// withdrawn: it commits once the stall ends, and its retry finds it stored.
#[actix_rt::test]
async fn a_stalled_commit_answers_503_within_the_timeout() {
    let app = TestApp::start_with(crate::common::Backend::Sqlite, |c| {
        c.db_timeout = Duration::from_millis(500);
    })
    .await
    .expect("SQLite");
    let write = |n: u32| {
        json!({"event_type": "x", "timestamp": "2026-11-30T10:00:00Z",
        "event_id": format!("e{n}")})
    };
    assert_eq!(
        app.post("/v1/sessions/st/events", write(1)).await.status,
        201
    );
    app.server.writer.stall_next_commit(Duration::from_secs(3));
    let started = std::time::Instant::now();
    let during = app.post("/v1/sessions/st/events", write(2)).await;
    assert_eq!(
        (during.status, during.body["code"].as_str()),
        (503, Some("storage_unavailable")),
        "{}",
        during.text
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // Not ready once the commit has run past the timeout.
    let mut ready = app.get("/readyz").await;
    for _ in 0..10 {
        if ready.status != 200 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        ready = app.get("/readyz").await;
    }
    assert_eq!(ready.status, 503, "stalled: {}", ready.text);
    let mut retry = app.post("/v1/sessions/st/events", write(2)).await;
    for _ in 0..20 {
        if retry.status != 503 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(250)).await;
        retry = app.post("/v1/sessions/st/events", write(2)).await;
    }
    assert_eq!(
        (retry.status, retry.body["duplicates"].as_i64()),
        (200, Some(1)),
        "stored once, by the stalled commit: {}",
        retry.text
    );
    assert_eq!(app.all_events("st").await.len(), 2);
    assert_eq!(app.get("/readyz").await.status, 200);
}

/// A database that fails every write used to write a log line per failed commit, actor and
/// query: tens of thousands in seconds. Each call site now writes a few lines per window.
#[actix_rt::test]
async fn an_outage_costs_a_few_log_lines_not_one_per_request() {
    use crate::common::{fresh_database, RemoveOnDrop, ServerProcess};
    let Some(database) = fresh_database(crate::common::Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let server = ServerProcess::spawn_with(&database, &[("ORCH_DB_TIMEOUT_MS", "300")]);
    for n in 0..50 {
        let r = server
            .http
            .post(format!("/v1/sessions/s{n}/events"), event("before", 1))
            .await;
        assert_eq!(r.status, 201);
    }
    set_database_reachable(&database, false);
    let mut failed = 0;
    for round in 0..6 {
        let answers = join_all((0..50).map(|n| {
            server.http.try_post(
                format!("/v1/sessions/s{n}/events"),
                event("during", round + 2),
            )
        }))
        .await;
        failed += answers
            .iter()
            .filter(|a| a.as_ref().is_some_and(|r| r.status == 503))
            .count();
    }
    set_database_reachable(&database, true);
    assert!(failed >= 100, "the outage failed {failed} writes");
    let log = server.log.lock().unwrap().clone();
    let complaints: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(" ERROR ") || l.contains(" WARN "))
        .collect();
    assert!(
        complaints.len() <= 30,
        "{} warn/error lines for {failed} failed writes:\n{}",
        complaints.len(),
        complaints
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
