//! Scopes and bearer keys, request limits, back-pressure, health endpoints.

use actix_web::http::Method;
use futures_util::future::join_all;
use serde_json::json;

use crate::common::{both_backends, event, Backend, TestApp};
use orchestrator::config::ApiKeys;

async fn scopes_are_isolated(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.api_keys = ApiKeys::parse("key-a:team-a,key-b:team-b").unwrap()
    })
    .await
    else {
        return;
    };
    // No key, an unknown key, a malformed header: 401 problem.
    let r = app.get("/v1/sessions").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(r.content_type, "application/problem+json");
    let r = app
        .request(Method::GET, "/v1/sessions", None, Some("nope"))
        .await;
    assert_eq!(r.status, 401);
    let r = app.post("/v1/sessions/s1/events", event("x", 1)).await;
    assert_eq!(r.status, 401);

    let a = |m: Method, p: &'static str, b: Option<serde_json::Value>| {
        app.request(m, p, b.map(|b| b.to_string().into_bytes()), Some("key-a"))
    };
    let b = |m: Method, p: &'static str, b: Option<serde_json::Value>| {
        app.request(m, p, b.map(|b| b.to_string().into_bytes()), Some("key-b"))
    };
    let r = a(Method::POST, "/v1/sessions/s1/events", Some(event("x", 1))).await;
    assert_eq!(r.status, 201);
    // Another scope's session is "not found", for reads and event listings.
    let r = b(Method::GET, "/v1/sessions/s1", None).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("session_not_found"))
    );
    let r = b(Method::GET, "/v1/sessions/s1/events", None).await;
    assert_eq!(r.status, 404);
    // The same id in another scope is a separate session.
    let r = b(
        Method::PUT,
        "/v1/sessions/s1",
        Some(json!({"metadata": {"team": "b"}})),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = b(Method::POST, "/v1/sessions/s1/events", Some(event("x", 1))).await;
    assert_eq!(
        (r.status, r.body["events"][0]["seq"].as_i64()),
        (201, Some(1))
    );
    let r = a(Method::GET, "/v1/sessions/s1", None).await;
    assert_eq!(r.body["metadata"], json!({}));
    assert_eq!(r.body["event_count"], 1);

    let list_a = a(Method::GET, "/v1/sessions", None).await;
    assert_eq!(list_a.body["sessions"].as_array().unwrap().len(), 1);
    let notes_a = a(Method::GET, "/v1/notifications", None).await;
    let notes_b = b(Method::GET, "/v1/notifications", None).await;
    let ids = |r: &crate::common::Resp| -> Vec<i64> {
        r.body["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_i64().unwrap())
            .collect()
    };
    let (ia, ib) = (ids(&notes_a), ids(&notes_b));
    assert_eq!(ia.len(), 2, "{}", notes_a.text);
    assert_eq!(ib.len(), 2, "{}", notes_b.text);
    assert!(ia.iter().all(|i| !ib.contains(i)));

    // Operational endpoints need no key.
    assert_eq!(app.get("/healthz").await.status, 200);
    assert_eq!(app.get("/readyz").await.status, 200);
    assert_eq!(app.get("/metrics").await.status, 200);
}

async fn oversized_bodies_and_batches_are_refused(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.limits.max_body_bytes = 2048;
        c.limits.max_batch_events = 5;
    })
    .await
    else {
        return;
    };
    let mut big = event("x", 1);
    big["data"] = json!({"blob": "x".repeat(4096)});
    let r = app.post("/v1/sessions/l/events", big).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let r = app
        .put(
            "/v1/sessions/l",
            json!({"metadata": {"blob": "x".repeat(4096)}}),
        )
        .await;
    assert_eq!(r.status, 413);
    let six: Vec<_> = (0..6).map(|i| event("x", i)).collect();
    let r = app
        .post("/v1/sessions/l/events", json!({"events": six}))
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let five: Vec<_> = (0..5).map(|i| event("x", i)).collect();
    assert_eq!(
        app.post("/v1/sessions/l/events", json!({"events": five}))
            .await
            .status,
        201
    );
    assert_eq!(app.get("/v1/sessions/l").await.body["event_count"], 5);
}

/// A write queue of one: concurrent writers beyond it get 503 `overloaded` with Retry-After,
/// and exactly the acknowledged events are stored.
async fn a_full_write_queue_answers_503(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| c.writer.queue_capacity = 1).await else {
        return;
    };
    let mut saw_overload = false;
    let mut acknowledged = 0;
    for round in 0..20 {
        let posts =
            (0..40).map(|i| app.post(format!("/v1/sessions/o{i}/events"), event("x", round)));
        for r in join_all(posts).await {
            match r.status {
                201 => acknowledged += 1,
                503 => {
                    assert_eq!(r.body["code"], "overloaded");
                    assert_eq!(r.retry_after.as_deref(), Some("1"));
                    saw_overload = true;
                }
                other => panic!("unexpected {other}: {}", r.text),
            }
        }
        if saw_overload {
            break;
        }
    }
    assert!(
        saw_overload,
        "40 concurrent writers never overflowed a queue of one"
    );
    let mut stored = 0;
    for i in 0..40 {
        let r = app.get(format!("/v1/sessions/o{i}")).await;
        if r.status == 200 {
            stored += r.body["event_count"].as_i64().unwrap();
        }
    }
    assert_eq!(stored, acknowledged);
}

async fn health_endpoints(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.get("/healthz").await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ok")));
    // Every response carries a request id; a sane one from the caller is echoed.
    let mut req = awc::Client::new().get(format!("{}/healthz", app.base_url));
    req = req.insert_header(("X-Request-Id", "trace-42"));
    let res = req.send().await.unwrap();
    assert_eq!(res.headers().get("x-request-id").unwrap(), "trace-42");
    let res = awc::Client::new()
        .get(format!("{}/healthz", app.base_url))
        .insert_header(("X-Request-Id", "bad id with spaces"))
        .send()
        .await
        .unwrap();
    let generated = res.headers().get("x-request-id").unwrap().to_str().unwrap();
    assert_eq!(generated.len(), 32, "{generated}");
    let r = app.get("/readyz").await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ready")));
    app.post("/v1/sessions/h/events", event("x", 1)).await;
    assert_eq!(app.get("/no/such/route").await.status, 404);
    assert_eq!(app.post("/healthz", json!({})).await.status, 405);
    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/plain"));
    for name in [
        "orchestrator_events_stored_total",
        "orchestrator_duplicate_events_total",
        "orchestrator_notifications_total",
        "orchestrator_live_session_actors",
        "orchestrator_writer_queue_depth",
        "orchestrator_http_requests_total{route=\"/v1/sessions/{session_id}/events\",status=\"201\"}",
        "orchestrator_http_request_seconds_bucket{route=\"/v1/sessions/{session_id}/events\"",
        "orchestrator_commit_seconds_bucket",
        "orchestrator_commit_batch_writes_bucket",
        "orchestrator_commit_batch_events_bucket",
        "orchestrator_interactions_completed_total",
        "orchestrator_reorder_gaps_skipped_total",
        "orchestrator_wal_checkpoints_total",
        // Routes are labelled by the pattern routing matched, also for 405s; other paths
        // share one label.
        "orchestrator_http_requests_total{route=\"/healthz\",status=\"405\"}",
        "orchestrator_http_requests_total{route=\"unmatched\",status=\"404\"}",
    ] {
        assert!(r.text.contains(name), "{name} missing from\n{}", r.text);
    }
}

both_backends!(
    scopes_are_isolated,
    oversized_bodies_and_batches_are_refused,
    a_full_write_queue_answers_503,
    health_endpoints,
);
