//! A 2xx means committed: the real binary is SIGKILLed or SIGTERMed while requests are in
//! flight; after a restart every acknowledged event is there exactly once.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use crate::common::{both_backends, fresh_database, Backend, Client, RemoveOnDrop, ServerProcess};

/// 400 single-event requests over 8 sessions, each with a unique event_id; the server is
/// stopped (by `stop`) once `stop_after` acknowledgements have come back.
async fn load_then_stop(
    server: &ServerProcess,
    stop_after: usize,
    stop: impl FnOnce() + 'static,
) -> Vec<(String, String)> {
    let acked = std::cell::RefCell::new(Vec::new());
    let stop = std::cell::RefCell::new(Some(stop));
    let requests = (0..400).map(|i| {
        let (sid, eid) = (format!("d{}", i % 8), format!("e{i}"));
        let body = json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z",
                          "event_id": eid, "data": {"i": i}});
        let acked = &acked;
        let stop = &stop;
        async move {
            // Spread the requests over time so the stop lands mid-stream.
            actix_rt::time::sleep(Duration::from_millis(i as u64 / 4)).await;
            if let Some(r) = server
                .http
                .try_post(format!("/v1/sessions/{sid}/events"), body)
                .await
            {
                if r.status == 201 || r.status == 200 {
                    acked.borrow_mut().push((sid, eid));
                    if acked.borrow().len() == stop_after {
                        if let Some(stop) = stop.borrow_mut().take() {
                            stop();
                        }
                    }
                }
            }
        }
    });
    join_all(requests).await;
    acked.into_inner()
}

async fn assert_all_stored_once(http: &Client, acked: &[(String, String)]) {
    for sid in (0..8).map(|i| format!("d{i}")) {
        let events = http.all_events(&sid).await;
        let ids: Vec<&str> = events
            .iter()
            .map(|e| e["event_id"].as_str().unwrap())
            .collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "{sid}: an event stored twice");
        for (_, eid) in acked.iter().filter(|(s, _)| *s == sid) {
            assert!(
                ids.contains(&eid.as_str()),
                "{sid}: acknowledged {eid} lost"
            );
        }
        let session = http.get(format!("/v1/sessions/{sid}")).await;
        if session.status == 200 {
            assert_eq!(
                session.body["event_count"].as_u64().unwrap() as usize,
                ids.len()
            );
        }
    }
}

async fn acknowledged_events_survive_sigkill(backend: Backend) {
    let Some(database) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let server = ServerProcess::spawn(&database);
    let pid = server.pid();
    let acked = load_then_stop(&server, 150, move || {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    })
    .await;
    assert!(acked.len() >= 150, "{} acknowledged", acked.len());
    server.kill();
    let server = ServerProcess::spawn(&database);
    assert_all_stored_once(&server.http, &acked).await;
    // Sending everything again stores nothing twice.
    for i in 0..400 {
        let body = json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z",
                          "event_id": format!("e{i}"), "data": {"i": i}});
        server
            .http
            .post(format!("/v1/sessions/d{}/events", i % 8), body)
            .await;
    }
    let total: usize = join_all((0..8).map(|i| server.http.all_events_len(format!("d{i}"))))
        .await
        .iter()
        .sum();
    assert_eq!(total, 400);
    server.kill();
}

async fn sigterm_finishes_in_flight_requests(backend: Backend) {
    let Some(database) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let server = ServerProcess::spawn(&database);
    let pid = server.pid();
    let acked = load_then_stop(&server, 100, move || {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    })
    .await;
    assert!(acked.len() >= 100);
    let status = server.terminate();
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
    let server = ServerProcess::spawn(&database);
    assert_all_stored_once(&server.http, &acked).await;
    server.kill();
}

both_backends!(
    acknowledged_events_survive_sigkill,
    sigterm_finishes_in_flight_requests,
    repeated_sigkills_lose_and_double_nothing,
    the_wal_is_checkpointed_beside_the_committer,
);

/// SQLite commits no longer copy the WAL into the file themselves; the checkpointer thread
/// does, after commits. PostgreSQL has no WAL of ours to checkpoint.
async fn the_wal_is_checkpointed_beside_the_committer(backend: Backend) {
    let Some(database) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let server = ServerProcess::spawn(&database);
    let checkpoints = |metrics: &str| -> u64 {
        let line = "orchestrator_wal_checkpoints_total{result=\"ok\"} ";
        let value = metrics.lines().find_map(|l| l.strip_prefix(line));
        value
            .expect("the checkpoint metric")
            .trim()
            .parse()
            .unwrap()
    };
    let mut seen = 0;
    for i in 0..40 {
        let body = json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z",
                          "event_id": format!("w{i}"), "data": {"i": i}});
        let r = server.http.post("/v1/sessions/wal/events", body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        seen = checkpoints(&server.http.get("/metrics").await.text);
        if seen > 0 {
            break;
        }
        // Checkpoints start at most every 250 ms, after a commit.
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    match backend {
        Backend::Sqlite => assert!(seen > 0, "no checkpoint after 40 commits over 4 s"),
        Backend::Postgres => assert_eq!(seen, 0),
    }
    let failed = server.http.get("/metrics").await.text;
    assert!(
        failed.contains("orchestrator_wal_checkpoints_total{result=\"failed\"} 0"),
        "{failed}"
    );
    server.kill();
    // Whatever was checkpointed or not, a restart finds every event.
    let server = ServerProcess::spawn(&database);
    assert!(server.http.all_events_len("wal".into()).await >= 1);
    server.kill();
}

/// The binary is SIGKILLed three times under mixed load (events, interactions racing results
/// and end events) and restarted. Afterwards: every acknowledged event exactly once, no
/// interaction completed twice, counters equal rows, notification ids without gaps or repeats.
async fn repeated_sigkills_lose_and_double_nothing(backend: Backend) {
    let Some(database) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let mut acked: Vec<(String, String)> = Vec::new();
    // Results answered 200: (session, interaction, output).
    let mut results: Vec<(String, String, i64)> = Vec::new();
    for round in 0..3 {
        let server = ServerProcess::spawn(&database);
        let http = &server.http;
        let sid = format!("k{round}");
        assert_eq!(
            http.put(format!("/v1/sessions/{sid}"), json!({}))
                .await
                .status,
            201
        );
        for n in 0..10 {
            let body =
                json!({"interaction_id": format!("i{n}"), "kind": "approval", "timeout_ms": 60000});
            http.post(format!("/v1/sessions/{sid}/interactions"), body)
                .await;
        }
        let pid = server.pid();
        let killed = std::cell::Cell::new(false);
        let acked_round = std::cell::RefCell::new(Vec::new());
        let results_round = std::cell::RefCell::new(Vec::new());
        let calls = (0..300).map(|i| {
            let (killed, acked_round, results_round, sid, server) =
                (&killed, &acked_round, &results_round, sid.clone(), &server);
            async move {
                actix_rt::time::sleep(Duration::from_millis(i as u64 / 3)).await;
                let target = format!("d{}", i % 4);
                let eid = format!("r{round}-e{i}");
                let body = match i % 3 {
                    0 => json!({"event_type": "session_end", "interaction_id": format!("i{}", i % 10),
                                "timestamp": "2026-11-22T10:00:00Z", "event_id": eid}),
                    _ => json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z", "event_id": eid}),
                };
                let session = if i % 3 == 0 { sid.clone() } else { target };
                if i % 7 == 0 {
                    let (iid, result) = (format!("i{}", i % 10), json!({"status": "ok", "output": i}));
                    let r = server.http.try_post(format!("/v1/sessions/{sid}/interactions/{iid}/result"), result).await;
                    if r.is_some_and(|r| r.status == 200) {
                        results_round.borrow_mut().push((sid.clone(), iid, i as i64));
                    }
                }
                if let Some(r) = server.http.try_post(format!("/v1/sessions/{session}/events"), body).await {
                    if r.status == 201 || r.status == 200 {
                        acked_round.borrow_mut().push((session, eid));
                        if acked_round.borrow().len() == 120 && !killed.replace(true) {
                            let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                        }
                    }
                }
            }
        });
        join_all(calls).await;
        assert!(killed.get(), "round {round}: the kill happened under load");
        acked.extend(acked_round.into_inner());
        results.extend(results_round.into_inner());
        server.kill();
    }
    let server = ServerProcess::spawn(&database);
    let http = &server.http;
    let mut sessions: Vec<String> = acked.iter().map(|(s, _)| s.clone()).collect();
    sessions.sort();
    sessions.dedup();
    for sid in &sessions {
        let events = http.all_events(sid).await;
        let ids: Vec<&str> = events
            .iter()
            .map(|e| e["event_id"].as_str().unwrap())
            .collect();
        let unique: std::collections::HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{sid}: an event stored twice");
        for (_, eid) in acked.iter().filter(|(s, _)| s == sid) {
            assert!(
                unique.contains(eid.as_str()),
                "{sid}: acknowledged {eid} lost"
            );
        }
        let session = http.get(format!("/v1/sessions/{sid}")).await;
        assert_eq!(
            session.body["event_count"].as_u64().unwrap() as usize,
            ids.len()
        );
    }
    for round in 0..3 {
        crate::interactions::assert_consistent(http, &format!("k{round}")).await;
    }
    // An acknowledged result is durable too: its interaction holds it (the slot is written
    // once, so no later result replaced it), whether the result or a session_end completed it.
    assert!(!results.is_empty(), "no result was acknowledged");
    for (sid, iid, output) in &results {
        let i = http
            .get(format!("/v1/sessions/{sid}/interactions/{iid}"))
            .await
            .body;
        assert_eq!(i["status"], "completed", "{sid}/{iid}: {i}");
        assert_eq!(
            i["result"],
            json!(output),
            "{sid}/{iid}: acknowledged result lost: {i}"
        );
    }
    let notes = http.all_notifications(None).await;
    let ids: Vec<i64> = notes.iter().map(|n| n["id"].as_i64().unwrap()).collect();
    let contiguous: Vec<i64> = (1..=ids.len() as i64).collect();
    assert_eq!(
        ids, contiguous,
        "notification ids have no gaps or repeats across crashes"
    );
    server.kill();
}
