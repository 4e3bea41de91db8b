//! Sessions: create-once (also under racing first requests), read, list with cursors,
//! restart and passivation.

use std::time::Duration;

use actix_web::http::Method;
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::common::{both_backends, event, Backend, TestApp};

async fn put_creates_once_and_keeps_metadata(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app
        .put("/v1/sessions/s1", json!({"metadata": {"repo": "a"}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["session_id"], "s1");
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["metadata"], json!({"repo": "a"}));
    assert_eq!(r.body["event_count"], 0);
    assert_eq!(
        r.body["interactions"],
        json!({"pending": 0, "completed": 0, "timed_out": 0, "cancelled": 0})
    );
    let created_at = r.body["created_at"].as_str().unwrap().to_owned();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "{created_at}"
    );

    let r = app
        .put("/v1/sessions/s1", json!({"metadata": {"repo": "b"}}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["metadata"],
        json!({"repo": "a"}),
        "metadata unchanged"
    );

    // An empty body is allowed.
    let r = app
        .request(actix_web::http::Method::PUT, "/v1/sessions/s2", None, None)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["metadata"], json!({}));

    // A JSON null body is no body.
    let r = app
        .request(
            actix_web::http::Method::PUT,
            "/v1/sessions/s3",
            Some(b"null".to_vec()),
            None,
        )
        .await;
    assert_eq!(
        (r.status, &r.body["metadata"]),
        (201, &json!({})),
        "{}",
        r.text
    );

    let r = app.get("/v1/sessions/s1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["created_at"], created_at.as_str());

    let created: Vec<Value> = app
        .all_notifications(Some("s1"))
        .await
        .into_iter()
        .filter(|n| n["type"] == "session.created")
        .collect();
    assert_eq!(created.len(), 1);
}

async fn session_errors(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.get("/v1/sessions/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["code"], "session_not_found");
    assert_eq!(r.content_type, "application/problem+json");
    assert_eq!(r.body["type"], "about:blank");

    let r = app.get("/v1/sessions/nope/events").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("session_not_found"))
    );

    let r = app.put("/v1/sessions/s1", json!({"metadata": [1]})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["field"], "metadata");

    let r = app.put("/v1/sessions/s1", json!([1])).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("bad_request"))
    );

    let r = app
        .request(
            actix_web::http::Method::PUT,
            "/v1/sessions/s1",
            Some(b"{oops".to_vec()),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("bad_request"))
    );

    let long = "x".repeat(129);
    let r = app.put(format!("/v1/sessions/{long}"), json!({})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["code"], "validation_failed");
    assert_eq!(r.body["field"], "session_id");
    let r = app.put("/v1/sessions/bad%20id", json!({})).await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (422, Some("session_id"))
    );

    let r = app
        .request(Method::DELETE, "/v1/sessions/s1", None, None)
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let res = awc::Client::new()
        .delete(format!("{}/v1/sessions/s1/events", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(
        res.headers().get("allow").unwrap(),
        "GET, HEAD, POST",
        "RFC 9110: 405 lists the methods"
    );
    let r = app.get("/v2/nothing").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("not_found"))
    );
}

/// The per-session routes sit in nested scopes (one match of the ids per request). Paths
/// inside a scope that name no route still answer 404 problem JSON, wrong methods 405 with
/// their `Allow`, and metrics keep labelling each route by its whole pattern.
async fn routes_inside_a_session_answer_like_any_other(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    assert_eq!(app.put("/v1/sessions/s1", json!({})).await.status, 201);
    let created = app
        .post(
            "/v1/sessions/s1/interactions",
            json!({"interaction_id": "i1", "kind": "approval", "payload": {}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    for path in [
        "/v1/sessions/s1/",
        "/v1/sessions/s1/nothing",
        "/v1/sessions/s1/events/",
        "/v1/sessions/s1/interactions/",
        "/v1/sessions/s1/interactions/i1/",
        "/v1/sessions/s1/interactions/i1/nothing",
        "/v1/sessions/s1/interactions/i1/result/more",
        "/v1/sessions/s1/commands/later",
    ] {
        let r = app.get(path).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (404, Some("not_found")),
            "{path}: {}",
            r.text
        );
    }
    for (method, path, allow) in [
        (Method::DELETE, "/v1/sessions/s1", "GET, HEAD, PUT"),
        (Method::GET, "/v1/sessions/s1/commands", "POST"),
        (Method::GET, "/v1/sessions/s1/commands/next", "POST"),
        (Method::PUT, "/v1/sessions/s1/interactions/i1", "GET, HEAD"),
        (
            Method::GET,
            "/v1/sessions/s1/interactions/i1/result",
            "POST",
        ),
        (
            Method::POST,
            "/v1/sessions/s1/interactions/i1/wait",
            "GET, HEAD",
        ),
    ] {
        let res = awc::Client::new()
            .request(method.clone(), format!("{}{path}", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 405, "{method} {path}");
        assert_eq!(
            res.headers().get("allow").unwrap(),
            allow,
            "{method} {path}"
        );
    }
    let got = app.get("/v1/sessions/s1/interactions/i1").await;
    assert_eq!(got.status, 200, "{}", got.text);
    let metrics = app.get("/metrics").await.text;
    for label in [
        "route=\"/v1/sessions/{session_id}/interactions\",status=\"201\"",
        "route=\"/v1/sessions/{session_id}/interactions/{interaction_id}\",status=\"200\"",
        "route=\"/v1/sessions/{session_id}/interactions/{interaction_id}/result\",status=\"405\"",
        "route=\"/v1/sessions/{session_id}\",status=\"405\"",
        "route=\"unmatched\",status=\"404\"",
    ] {
        assert!(metrics.contains(label), "{label} missing from\n{metrics}");
    }
}

/// 32 first requests race for a new session: one session, one `session.created`, 32 events
/// with distinct increasing seqs.
async fn racing_first_events_create_one_session(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let posts = (0..32).map(|i| {
        let mut e = event("tool_use", i);
        e["data"] = json!({"i": i});
        app.post("/v1/sessions/race/events", e)
    });
    let puts = (0..8).map(|_| app.put("/v1/sessions/race", json!({})));
    let (posts, puts) = futures_util::future::join(join_all(posts), join_all(puts)).await;
    assert!(posts.iter().all(|r| r.status == 201), "{posts:?}");
    let creators = puts.iter().filter(|r| r.status == 201).count()
        + usize::from(puts.iter().all(|r| r.status == 200));
    assert_eq!(
        creators, 1,
        "exactly one creator among the PUTs or the events"
    );
    let mut seqs: Vec<i64> = posts
        .iter()
        .map(|r| r.body["events"][0]["seq"].as_i64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, (1..=32).collect::<Vec<_>>());

    let session = app.get("/v1/sessions/race").await;
    assert_eq!(session.body["event_count"], 32);
    assert_eq!(session.body["last_seq"], 32);
    let events = app.all_events("race").await;
    assert_eq!(events.len(), 32);
    assert!(events
        .windows(2)
        .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()));

    let notes = app.all_notifications(Some("race")).await;
    let created = notes
        .iter()
        .filter(|n| n["type"] == "session.created")
        .count();
    assert_eq!(created, 1, "{notes:?}");
    let listed = app.get("/v1/sessions").await;
    assert_eq!(listed.body["sessions"].as_array().unwrap().len(), 1);
}

/// Newest activity first, cursor paging visits each session exactly once, status filter.
async fn list_pages_by_activity(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    for i in 0..5 {
        let r = app.put(format!("/v1/sessions/s{i}"), json!({})).await;
        assert_eq!(r.status, 201);
        // Distinct activity times, so the order is defined.
        actix_rt::time::sleep(Duration::from_millis(3)).await;
    }
    // Activity on s1 moves it to the front; ending s3 makes it the only ended one.
    app.post("/v1/sessions/s1/events", event("tool_use", 1))
        .await;
    actix_rt::time::sleep(Duration::from_millis(3)).await;
    app.post("/v1/sessions/s3/events", event("session_end", 1))
        .await;

    let mut seen = Vec::new();
    let mut path = "/v1/sessions?limit=2".to_owned();
    loop {
        let r = app.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let page = r.body["sessions"].as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(
            page.iter()
                .map(|s| s["session_id"].as_str().unwrap().to_owned()),
        );
        match r.body["next_after"].as_str() {
            Some(cursor) => path = format!("/v1/sessions?limit=2&after={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["s3", "s1", "s4", "s2", "s0"]);
    // An empty cursor is the first page.
    let r = app.get("/v1/sessions?limit=1&after=").await;
    assert_eq!(r.body["sessions"][0]["session_id"], "s3");

    let ended = app.get("/v1/sessions?status=ended").await;
    let ids: Vec<&str> = ended.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["s3"]);
    assert_eq!(ended.body["next_after"], Value::Null);

    for bad in [
        "/v1/sessions?status=sleeping",
        "/v1/sessions?limit=0",
        "/v1/sessions?limit=1001",
        "/v1/sessions?limit=ten",
        "/v1/sessions?after=zz",
        "/v1/sessions?after=3132",
    ] {
        let r = app.get(bad).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }
}

/// State survives a restart; seqs continue and dedup still knows the old events, also when the
/// in-memory dedup cache is far smaller than the session (database lookup path).
async fn restart_keeps_state_and_dedup(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| c.sessions.dedup_cache = 2).await else {
        return;
    };
    let batch: Vec<Value> = (0..6)
        .map(|i| {
            let mut e = event("tool_use", i);
            if i % 2 == 0 {
                e["event_id"] = json!(format!("id-{i}"));
            }
            e
        })
        .collect();
    let r = app
        .post("/v1/sessions/s/events", json!({"events": batch}))
        .await;
    assert_eq!(r.body["accepted"], 6);
    // Old keys, evicted from the cache of two, are found in the database.
    let r = app
        .post(
            "/v1/sessions/s/events",
            json!({"events": [batch[0], batch[1]]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["events"],
        json!([{"seq": 1, "duplicate": true}, {"seq": 2, "duplicate": true}])
    );

    // A whole batch larger than the cache: every key found in the database, none lost.
    let r = app
        .post("/v1/sessions/s/events", json!({"events": batch.clone()}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seqs: Vec<i64> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);

    let database = app.stop().await;
    let app = TestApp::start_on(database, |c| c.sessions.dedup_cache = 2).await;
    let r = app
        .post(
            "/v1/sessions/s/events",
            json!({"events": [batch[2], event("new", 59)]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.body["events"],
        json!([{"seq": 3, "duplicate": true}, {"seq": 7, "duplicate": false}])
    );
    let s = app.get("/v1/sessions/s").await;
    assert_eq!(
        (s.body["event_count"].as_i64(), s.body["last_seq"].as_i64()),
        (Some(7), Some(7))
    );
    let created = app
        .all_notifications(Some("s"))
        .await
        .into_iter()
        .filter(|n| n["type"] == "session.created")
        .count();
    assert_eq!(created, 1);
}

/// Idle actors are passivated and come back on demand with their state.
async fn idle_sessions_are_passivated_and_reloaded(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.idle_timeout = Duration::from_millis(200)
    })
    .await
    else {
        return;
    };
    for i in 0..3 {
        let r = app
            .post(format!("/v1/sessions/p{i}/events"), event("x", i))
            .await;
        assert_eq!(r.status, 201);
    }
    assert_eq!(app.live_session_actors().await, 3);
    let mut live = 3;
    for _ in 0..50 {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        live = app.live_session_actors().await;
        if live == 0 {
            break;
        }
    }
    assert_eq!(live, 0, "idle actors were not passivated");
    let r = app.post("/v1/sessions/p0/events", event("x", 0)).await;
    assert_eq!(
        (r.status, r.body["events"][0]["seq"].as_i64()),
        (200, Some(1))
    );
    let r = app.post("/v1/sessions/p0/events", event("y", 1)).await;
    assert_eq!(r.body["events"][0]["seq"], 2);
}

/// Passivation racing with traffic: requests keep arriving around the idle deadline and none is
/// lost, duplicated or reordered.
async fn passivation_under_traffic_loses_nothing(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.idle_timeout = Duration::from_millis(60)
    })
    .await
    else {
        return;
    };
    let mut expected = 0;
    for round in 0..12u32 {
        let posts = (0..4).map(|i| app.post("/v1/sessions/hot/events", event("x", round * 4 + i)));
        for r in join_all(posts).await {
            assert_eq!(r.status, 201, "{}", r.text);
        }
        expected += 4;
        // Sleep around the idle deadline so Passivate and new requests cross.
        actix_rt::time::sleep(Duration::from_millis(40 + u64::from(round % 4) * 15)).await;
    }
    let events = app.all_events("hot").await;
    assert_eq!(events.len(), expected);
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=expected as i64).collect::<Vec<_>>());
}

both_backends!(
    put_creates_once_and_keeps_metadata,
    session_errors,
    routes_inside_a_session_answer_like_any_other,
    racing_first_events_create_one_session,
    list_pages_by_activity,
    restart_keeps_state_and_dedup,
    idle_sessions_are_passivated_and_reloaded,
    passivation_under_traffic_loses_nothing,
    a_session_says_its_project_model_title_and_activity,
);

/// A session reads as what its events say: the project (Claude Code's `cwd`), the model, the
/// first prompt as its title, and what it is doing; the same from the list, and after a
/// restart (stored with the session).
async fn a_session_says_its_project_model_title_and_activity(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let hook = |name: &str, data: Value| json!({"event_type": name, "timestamp": "2026-12-05T10:00:00Z", "data": data});
    let post = |body: Value| app.post("/v1/sessions/cc-facts/events", body);
    let r = post(json!({"events": [
        hook("SessionStart", json!({"cwd": "/home/dev/acme", "model": "claude-opus-5-5", "source": "startup"})),
        hook("UserPromptSubmit", json!({"cwd": "/home/dev/acme", "prompt": "fix the flaky test"})),
    ]}))
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let facts = |body: &Value| {
        (
            body["project"].clone(),
            body["model"].clone(),
            body["title"].clone(),
            body["activity"].clone(),
        )
    };
    let got = app.get("/v1/sessions/cc-facts").await;
    assert_eq!(
        facts(&got.body),
        (
            json!("/home/dev/acme"),
            json!("claude-opus-5-5"),
            json!("fix the flaky test"),
            json!("working")
        )
    );
    post(hook("PermissionRequest", json!({"tool_name": "Bash"}))).await;
    assert_eq!(
        app.get("/v1/sessions/cc-facts").await.body["activity"],
        "waiting"
    );
    post(hook("Stop", json!({"last_assistant_message": "fixed"}))).await;
    let listed = app.get("/v1/sessions").await;
    let row = listed.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session_id"] == "cc-facts")
        .cloned()
        .unwrap();
    assert_eq!(row["activity"], "stopped");
    assert_eq!(row["title"], "fix the flaky test");
    // A session of another client, with no such events, says nothing it does not know.
    app.post("/v1/sessions/plain/events", event("x", 1)).await;
    let plain = app.get("/v1/sessions/plain").await;
    assert_eq!(
        facts(&plain.body),
        (Value::Null, Value::Null, Value::Null, Value::Null)
    );

    let database = app.stop().await;
    let app = TestApp::start_on(database, |_| {}).await;
    let got = app.get("/v1/sessions/cc-facts").await;
    assert_eq!(
        facts(&got.body),
        (
            json!("/home/dev/acme"),
            json!("claude-opus-5-5"),
            json!("fix the flaky test"),
            json!("stopped")
        )
    );
}
