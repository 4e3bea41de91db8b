//! Hot polled reads are answered from memory: many pollers of one session do not mean as many
//! database queries (the session actor's state), and neither do readers of the newest
//! notifications (the committer's feed). Measured on the binary's own /metrics (a separate
//! process, so other tests' reads do not count).

use futures_util::future::join_all;

use serde_json::json;

use crate::common::{
    both_backends, event, fresh_database, Backend, RemoveOnDrop, ServerProcess, TestApp,
};

fn counter(metrics: &str, source: &str) -> u64 {
    counter_of(metrics, "orchestrator_session_reads_total", source)
}

fn counter_of(metrics: &str, name: &str, source: &str) -> u64 {
    let prefix = format!("{name}{{source=\"{source}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

async fn pollers_of_a_hot_session_cost_no_database_reads(backend: Backend) {
    let Some(database) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let server = ServerProcess::spawn(&database);
    let http = &server.http;
    let r = http.post("/v1/sessions/hot/events", event("x", 1)).await;
    assert_eq!(r.status, 201);
    let before = http.get("/metrics").await.text;

    let summaries = join_all((0..300).map(|_| http.get("/v1/sessions/hot")));
    let polls = join_all((0..300).map(|_| http.get("/v1/sessions/hot/events?after_seq=1")));
    let (summaries, polls) = futures_util::future::join(summaries, polls).await;
    assert!(summaries
        .iter()
        .all(|r| r.status == 200 && r.body["event_count"] == 1));
    assert!(polls
        .iter()
        .all(|r| r.status == 200 && r.body["events"].as_array().unwrap().is_empty()));

    let after = http.get("/metrics").await.text;
    let memory = counter(&after, "memory") - counter(&before, "memory");
    let from_database = counter(&after, "database") - counter(&before, "database");
    assert_eq!(memory, 600, "{after}");
    assert_eq!(from_database, 0);

    // Fresh data is still seen at once: the actor's state is the committed state.
    http.post("/v1/sessions/hot/events", event("y", 2)).await;
    let r = http.get("/v1/sessions/hot/events?after_seq=1").await;
    assert_eq!(r.body["events"].as_array().unwrap().len(), 1);
    assert_eq!(http.get("/v1/sessions/hot").await.body["event_count"], 2);
    server.kill();
    if let orchestrator::store::DatabaseTarget::Sqlite(path) = database {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}

/// Readers of the newest notifications are served from the feed; after a restart the feed
/// is empty and the same listing comes from the database, with the same content.
async fn readers_of_the_newest_notifications_cost_no_database_reads(backend: Backend) {
    let Some(database) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let reads = |metrics: &str, source| {
        counter_of(metrics, "orchestrator_notification_reads_total", source)
    };
    let server = ServerProcess::spawn(&database);
    let http = &server.http;
    let r = http.post("/v1/sessions/n/events", event("x", 1)).await;
    assert_eq!(r.status, 201);
    let before = http.get("/metrics").await.text;
    let listings = join_all((0..50).map(|_| http.get("/v1/notifications?after=0"))).await;
    let after = http.get("/metrics").await.text;
    assert_eq!(
        reads(&after, "memory") - reads(&before, "memory"),
        50,
        "{after}"
    );
    assert_eq!(reads(&after, "database"), reads(&before, "database"));
    let listed = &listings[0].body["notifications"];
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "session.created, events.appended"
    );
    assert!(listings.iter().all(|r| &r.body["notifications"] == listed));
    server.terminate();

    let server = ServerProcess::spawn(&database);
    let r = server.http.get("/v1/notifications?after=0").await;
    assert_eq!(
        &r.body["notifications"], listed,
        "the same rows from the database"
    );
    let metrics = server.http.get("/metrics").await.text;
    assert_eq!(reads(&metrics, "database"), 1, "{metrics}");
    server.kill();
    if let orchestrator::store::DatabaseTarget::Sqlite(path) = database {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}

/// What a notification announces is readable by the time the notification is: a reader that
/// follows the feed and reads each session it hears of finds it, with at least the events
/// announced. (Sessions are read from their actor's state, which must not lag the feed while
/// the actor's commit is still on its way back to it.)
async fn what_a_notification_announces_is_readable_at_once(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    const SESSIONS: usize = 60;
    const EVENTS: u32 = 3;
    let writes = async {
        for i in 0..SESSIONS {
            let sid = format!("announced-{i}");
            let r = app
                .put(format!("/v1/sessions/{sid}"), json!({"metadata": {}}))
                .await;
            assert_eq!(r.status, 201, "{}", r.text);
            for n in 0..EVENTS {
                let r = app
                    .post(format!("/v1/sessions/{sid}/events"), event("x", n))
                    .await;
                assert_eq!(r.status, 201, "{}", r.text);
            }
        }
    };
    let reads = async {
        let (mut cursor, mut heard) = (0, 0);
        while heard < SESSIONS * (1 + EVENTS as usize) {
            let r = app
                .get(format!("/v1/notifications?after={cursor}&wait_ms=10000"))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            for note in r.body["notifications"].as_array().unwrap() {
                heard += 1;
                let sid = note["session_id"].as_str().unwrap();
                let s = app.get(format!("/v1/sessions/{sid}")).await;
                assert_eq!(s.status, 200, "{} announced, then {}", note, s.text);
                if note["type"] == "events.appended" {
                    assert!(
                        s.body["event_count"].as_i64() >= note["last_seq"].as_i64(),
                        "{note} announced, then {}",
                        s.text
                    );
                }
            }
            cursor = r.body["next_after"].as_i64().unwrap();
        }
    };
    futures_util::future::join(writes, reads).await;
}

both_backends!(
    pollers_of_a_hot_session_cost_no_database_reads,
    readers_of_the_newest_notifications_cost_no_database_reads,
    what_a_notification_announces_is_readable_at_once,
);
