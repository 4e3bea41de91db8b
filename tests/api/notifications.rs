//! Notifications as a feed: long-poll woken by commits, SSE with resume from any id, identical
//! gap-free sequences for concurrent consumers, scope isolation.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::common::{both_backends, event, Backend, TestApp};
use orchestrator::config::ApiKeys;

async fn long_poll_wakes_on_commit(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    app.post("/v1/sessions/lp/events", event("x", 1)).await;
    let after = app.get("/v1/notifications").await.body["next_after"]
        .as_i64()
        .unwrap();
    // Nothing newer: waits, then returns empty with the same cursor.
    let r = app
        .get(format!("/v1/notifications?after={after}&wait_ms=100"))
        .await;
    assert_eq!(r.body["notifications"], json!([]));
    assert_eq!(r.body["next_after"], after);
    // A commit while it waits wakes it with the news (long before its 30 s).
    let poll = app.get(format!("/v1/notifications?after={after}&wait_ms=30000"));
    let write = async {
        actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
        app.post("/v1/sessions/lp/events", event("y", 2)).await
    };
    let (r, w) = futures_util::future::join(poll, write).await;
    assert_eq!(w.status, 201);
    let notes = r.body["notifications"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{}", r.text);
    assert_eq!(notes[0]["type"], "events.appended");
    assert_eq!(notes[0]["last_seq"], 2);
    // Filters apply while waiting: news of another session does not end the wait early with
    // the wrong rows.
    let cursor = r.body["next_after"].as_i64().unwrap();
    let poll = app.get(format!(
        "/v1/notifications?after={cursor}&session_id=lp&wait_ms=300"
    ));
    let other = app.post("/v1/sessions/other/events", event("z", 3));
    let (r, _) = futures_util::future::join(poll, other).await;
    assert_eq!(r.body["notifications"], json!([]));
    let r = app.get("/v1/notifications?wait_ms=60001").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("bad_request"))
    );
}

async fn sse_resumes_from_every_id(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    for i in 0..4 {
        app.post("/v1/sessions/sse/events", event("x", i)).await;
    }
    app.post("/v1/sessions/sse/events", event("session_end", 10))
        .await;
    app.post("/v1/sessions/noise/events", event("x", 1)).await;
    let all = app.all_notifications(Some("sse")).await;
    let ids: Vec<i64> = all.iter().map(|n| n["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 7, "{all:?}");
    // The replay from the start equals the listing, message for message.
    let replay = app.sse("?session_id=sse", None, ids.len()).await;
    for ((id, event, data), listed) in replay.iter().zip(&all) {
        assert_eq!(*id, listed["id"].as_i64().unwrap());
        assert_eq!(event, listed["type"].as_str().unwrap());
        assert_eq!(data, listed);
    }
    // Resuming after each id gives exactly the tail, by header and by query.
    for (k, id) in ids.iter().enumerate().take(ids.len() - 1) {
        let tail: Vec<i64> = app
            .sse("?session_id=sse", Some(*id), ids.len() - k - 1)
            .await
            .into_iter()
            .map(|m| m.0)
            .collect();
        assert_eq!(tail, ids[k + 1..], "after {id}");
        let by_query = app
            .sse(&format!("?session_id=sse&after={id}"), None, 1)
            .await;
        assert_eq!(by_query[0].0, ids[k + 1]);
    }
    // From the last id it goes live: the next commit arrives on the open stream.
    let live = app.sse("?session_id=sse", Some(*ids.last().unwrap()), 1);
    let write = async {
        actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
        app.post("/v1/sessions/sse/events", event("late", 30)).await
    };
    let (live, _) = futures_util::future::join(live, write).await;
    assert_eq!(live[0].1, "events.appended");
    assert!(live[0].0 > *ids.last().unwrap());
    let r = app
        .request(
            actix_web::http::Method::GET,
            "/v1/stream?after=-1",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 400);
}

/// Posts 60 events concurrently to sessions c0..c2 while three consumers follow the stream
/// from the start; returns what each consumer saw. Commits group concurrent requests, so the
/// count is not known in advance: a last write to session "done" marks the end.
async fn write_while_three_consumers_follow(app: &TestApp) -> Vec<Vec<(i64, String, Value)>> {
    let writes = async {
        let written = join_all(
            (0..60).map(|i| app.post(format!("/v1/sessions/c{}/events", i % 3), event("x", i))),
        )
        .await;
        app.put("/v1/sessions/done", json!({})).await;
        written
    };
    let consumers =
        join_all((0..3).map(|_| app.sse_until("", None, |m| m.2["session_id"] == "done")));
    let (written, seen) = futures_util::future::join(writes, consumers).await;
    assert!(written.iter().all(|r| r.status == 201));
    seen
}

/// Three consumers follow the stream while 60 events are posted concurrently to three
/// sessions: all see the same, gap-free, strictly increasing sequence.
async fn concurrent_consumers_see_identical_sequences(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let seen = write_while_three_consumers_follow(&app).await;
    let all = app.all_notifications(None).await;
    let listed: Vec<i64> = all.iter().map(|n| n["id"].as_i64().unwrap()).collect();
    assert!(listed.len() >= 4);
    for consumer in &seen {
        let ids: Vec<i64> = consumer.iter().map(|m| m.0).collect();
        assert_eq!(
            ids, listed,
            "each consumer sees the listing's order, no gap, no repeat"
        );
    }
    let contiguous: Vec<i64> = (listed[0]..listed[0] + listed.len() as i64).collect();
    assert_eq!(listed, contiguous, "one committer: ids have no holes");
}

async fn feeds_are_scoped(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.api_keys = ApiKeys::parse("ka:a,kb:b").unwrap()
    })
    .await
    else {
        return;
    };
    let mut a = crate::common::Client::new(app.base_url.clone());
    a.key = Some("ka".into());
    let mut b = crate::common::Client::new(app.base_url.clone());
    b.key = Some("kb".into());
    a.post("/v1/sessions/s/events", event("x", 1)).await;
    b.post("/v1/sessions/s/events", event("x", 1)).await;
    a.post("/v1/sessions/s/events", event("x", 2)).await;
    let a_ids: Vec<i64> = a.sse("", None, 3).await.iter().map(|m| m.0).collect();
    let b_ids: Vec<i64> = b.sse("", None, 2).await.iter().map(|m| m.0).collect();
    assert!(a_ids.iter().all(|i| !b_ids.contains(i)));
    // b's long-poll is not woken by a's news.
    let after = *b_ids.last().unwrap();
    let poll = b.get(format!("/v1/notifications?after={after}&wait_ms=300"));
    let write = a.post("/v1/sessions/s/events", event("x", 3));
    let (r, _) = futures_util::future::join(poll, write).await;
    assert_eq!(r.body["notifications"], json!([]));
    let r = app
        .request(actix_web::http::Method::GET, "/v1/stream", None, None)
        .await;
    assert_eq!(r.status, 401);
}

/// A consumer that is behind and slower than ORCH_STREAM_SLOW_MS per page is disconnected
/// after a page, and resumes from its last id with nothing lost.
async fn slow_stream_consumers_are_disconnected_and_resume(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.stream_slow_consumer = std::time::Duration::ZERO;
    })
    .await
    else {
        return;
    };
    let created =
        join_all((0..520).map(|i| app.put(format!("/v1/sessions/s{i}"), json!({})))).await;
    assert!(created.iter().all(|r| r.status == 201));
    // Reads until the server ends the stream.
    let first = app.sse_until("", None, |_| false).await;
    assert_eq!(first.len(), 500, "one page, then disconnected");
    let last = first.last().unwrap().0;
    let rest = app.sse("", Some(last), 20).await;
    let mut ids: Vec<i64> = first.iter().chain(&rest).map(|m| m.0).collect();
    let all: Vec<i64> = app
        .all_notifications(None)
        .await
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, all, "nothing lost or repeated across the reconnect");
    ids.dedup();
    assert_eq!(ids.len(), 520);
}

/// Readers near the head of the outbox get the committer's in-memory feed; readers further
/// behind (here: more than 5 notifications) and every reader after a restart get the database.
/// Both give the same notifications, in the same order, with no gap and no repeat.
async fn memory_and_database_serve_the_same_outbox(backend: Backend) {
    let small_feed = |c: &mut orchestrator::config::Config| c.notification_cache = 5;
    let Some(app) = TestApp::start_with(backend, small_feed).await else {
        return;
    };
    // Live consumers: some pages from memory, some (when they fall behind) from the database.
    let seen = write_while_three_consumers_follow(&app).await;
    let listed = app.all_notifications(None).await;

    // After a restart the feed is empty: everything below comes from the database.
    let database = app.stop().await;
    let app = TestApp::start_on(database, small_feed).await;
    let stored = app.all_notifications(None).await;
    assert_eq!(
        listed, stored,
        "the same rows from memory and from the database"
    );
    for consumer in &seen {
        let streamed: Vec<&Value> = consumer.iter().map(|m| &m.2).collect();
        let expected: Vec<&Value> = stored.iter().collect();
        assert_eq!(
            streamed, expected,
            "each live consumer saw exactly the stored outbox"
        );
    }

    // New commits after the restart fill the feed again: a walk one notification at a time
    // reads the old ones from the database and the newest five from memory.
    for i in 0..8 {
        let r = app
            .post(format!("/v1/sessions/c{}/events", i % 2), event("y", i))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let all = app.all_notifications(None).await;
    assert_eq!(all.len(), stored.len() + 8);
    let mut walked = Vec::new();
    let mut after = 0;
    loop {
        let r = app
            .get(format!("/v1/notifications?after={after}&limit=1"))
            .await;
        let page = r.body["notifications"].as_array().unwrap().clone();
        let Some(next) = page.first() else { break };
        after = next["id"].as_i64().unwrap();
        walked.extend(page);
    }
    assert_eq!(walked, all);
    let of_c1: Vec<Value> = all
        .iter()
        .filter(|n| n["session_id"] == "c1")
        .cloned()
        .collect();
    assert_eq!(app.all_notifications(Some("c1")).await, of_c1);
    let tail = app
        .sse("", Some(all[all.len() - 3]["id"].as_i64().unwrap()), 2)
        .await;
    let tail: Vec<&Value> = tail.iter().map(|m| &m.2).collect();
    assert_eq!(tail, all[all.len() - 2..].iter().collect::<Vec<_>>());
}

both_backends!(
    slow_stream_consumers_are_disconnected_and_resume,
    memory_and_database_serve_the_same_outbox,
    long_poll_wakes_on_commit,
    sse_resumes_from_every_id,
    concurrent_consumers_see_identical_sequences,
    feeds_are_scoped,
);
