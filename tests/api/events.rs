//! Events: validation before storage, atomic batches, deduplication (within a batch, across
//! requests, concurrently), side effects and their notifications.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::common::{both_backends, event, Backend, TestApp};

async fn batch_with_a_bad_event_stores_nothing(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut events: Vec<Value> = (0..5).map(|i| event("x", i)).collect();
    events[2]["timestamp"] = json!("not a time");
    events[4]["event_type"] = json!("");
    let r = app
        .post("/v1/sessions/b/events", json!({"events": events}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.content_type, "application/problem+json");
    assert_eq!(r.body["code"], "validation_failed");
    assert_eq!(r.body["index"], 2);
    assert_eq!(r.body["field"], "timestamp");
    assert_eq!(
        r.body["detail"],
        "events[2].timestamp: not an RFC 3339 time"
    );
    // Nothing stored: not even the session was created.
    assert_eq!(app.get("/v1/sessions/b").await.status, 404);
    assert!(app.all_notifications(None).await.is_empty());
}

async fn every_validation_rule_is_enforced(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ts = "2026-11-22T10:00:00Z";
    let cases = [
        (json!({"timestamp": ts}), "event_type"),
        (json!({"event_type": 1, "timestamp": ts}), "event_type"),
        (
            json!({"event_type": "has space", "timestamp": ts}),
            "event_type",
        ),
        (
            json!({"event_type": "t".repeat(65), "timestamp": ts}),
            "event_type",
        ),
        (json!({"event_type": "x"}), "timestamp"),
        (
            json!({"event_type": "x", "timestamp": "2026-11-22 10:00"}),
            "timestamp",
        ),
        (
            json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00"}),
            "timestamp",
        ),
        (
            json!({"event_type": "x", "timestamp": ts, "data": [1, 2]}),
            "data",
        ),
        (
            json!({"event_type": "x", "timestamp": ts, "data": 3}),
            "data",
        ),
        (
            json!({"event_type": "x", "timestamp": ts, "event_id": ""}),
            "event_id",
        ),
        (
            json!({"event_type": "x", "timestamp": ts, "event_id": "e".repeat(129)}),
            "event_id",
        ),
        (
            json!({"event_type": "x", "timestamp": ts, "event_id": "naïve"}),
            "event_id",
        ),
        (
            json!({"event_type": "x", "timestamp": ts, "interaction_id": "a b"}),
            "interaction_id",
        ),
        (
            json!({"event_type": "x", "timestamp": ts, "interaction_id": "i".repeat(129)}),
            "interaction_id",
        ),
        (
            json!({"event_type": "x", "timestamp": ts, "sequence": -1}),
            "sequence",
        ),
        (
            json!({"event_type": "x", "timestamp": ts, "sequence": 2.5}),
            "sequence",
        ),
        (
            json!({"event_type": "x", "timestamp": ts, "sequence": "3"}),
            "sequence",
        ),
    ];
    for (body, field) in cases {
        let r = app.post("/v1/sessions/v/events", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.body["field"], field, "{body}");
        assert_eq!(r.body["index"], 0, "{body}");
    }
    // Edge values that are valid.
    let ok = json!({"events": [
        {"event_type": "t".repeat(64), "timestamp": "2026-11-22T11:00:00.5+01:00"},
        {"event_type": "A.b_c:d-1", "timestamp": ts, "event_id": "~ printable !", "sequence": 0,
         "interaction_id": "i".repeat(128), "data": {"nested": {"a": [1, null]}}, "extra": true},
    ]});
    let r = app.post("/v1/sessions/v/events", ok).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Nothing of the rejected requests was stored.
    assert_eq!(app.get("/v1/sessions/v").await.body["event_count"], 2);
}

async fn malformed_bodies_are_bad_requests(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    for body in [
        &b"{not json"[..],
        b"",
        b"[]",
        b"\"text\"",
        b"{\"events\": {}}",
        b"{\"events\": 3}",
    ] {
        let r = app.post_raw("/v1/sessions/m/events", body).await;
        assert_eq!(
            r.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            r.text
        );
        assert_eq!(r.body["code"], "bad_request");
    }
    let r = app
        .post("/v1/sessions/m/events", json!({"events": []}))
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("events")));
    let r = app
        .post(
            "/v1/sessions/m/events",
            json!({"events": [event("x", 1), 7]}),
        )
        .await;
    assert_eq!((r.status, r.body["index"].as_i64()), (422, Some(1)));
    assert_eq!(app.get("/v1/sessions/m").await.status, 404);
}

async fn duplicates_are_stored_once(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut with_id = event("tool_use", 1);
    with_id["event_id"] = json!("evt-1");
    let mut by_content = event("tool_use", 2);
    by_content["data"] = json!({"b": 2, "a": 1});
    let mut same_content_reordered = event("tool_use", 2);
    same_content_reordered["data"] = json!({"a": 1, "b": 2});

    // Within one batch: the copy reports the original's seq.
    let r = app
        .post(
            "/v1/sessions/d/events",
            json!({"events": [with_id, by_content, with_id, same_content_reordered]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["accepted"], 2);
    assert_eq!(r.body["duplicates"], 2);
    assert_eq!(
        r.body["events"],
        json!([{"seq": 1, "duplicate": false}, {"seq": 2, "duplicate": false},
               {"seq": 1, "duplicate": true}, {"seq": 2, "duplicate": true}])
    );
    // Later: all duplicates is a 200.
    let r = app.post("/v1/sessions/d/events", with_id.clone()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["accepted"], 0);
    assert_eq!(r.body["events"], json!([{"seq": 1, "duplicate": true}]));
    // The same event_id with other content is still a duplicate (the id is the identity).
    let mut other = event("other", 9);
    other["event_id"] = json!("evt-1");
    assert_eq!(app.post("/v1/sessions/d/events", other).await.status, 200);
    // Differences that matter make a new event.
    let mut other_interaction = by_content.clone();
    other_interaction["interaction_id"] = json!("i1");
    assert_eq!(
        app.post("/v1/sessions/d/events", other_interaction)
            .await
            .status,
        201
    );
    let s = app.get("/v1/sessions/d").await;
    assert_eq!(s.body["event_count"], 3);
}

/// 24 concurrent copies of each of three events: each stored once, every copy told its seq.
async fn concurrent_duplicates_are_stored_once(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut a = event("tool_use", 1);
    a["event_id"] = json!("same-id");
    let mut b = event("tool_result", 2);
    b["data"] = json!({"out": "ok"});
    let c = json!({"events": [event("batch", 3), event("batch", 4)]});
    let requests = (0..24).flat_map(|_| {
        [
            app.post("/v1/sessions/cd/events", a.clone()),
            app.post("/v1/sessions/cd/events", b.clone()),
            app.post("/v1/sessions/cd/events", c.clone()),
        ]
    });
    let responses = join_all(requests).await;
    assert!(
        responses.iter().all(|r| r.status == 201 || r.status == 200),
        "{responses:?}"
    );
    let accepted: i64 = responses
        .iter()
        .map(|r| r.body["accepted"].as_i64().unwrap())
        .sum();
    assert_eq!(accepted, 4);
    assert_eq!(responses.iter().filter(|r| r.status == 201).count(), 3);
    let events = app.all_events("cd").await;
    assert_eq!(events.len(), 4);
    // Every copy reports the seq of the stored original.
    for (i, r) in responses.iter().enumerate() {
        let stored_type = ["tool_use", "tool_result", "batch"][i % 3];
        let seq = r.body["events"][0]["seq"].as_i64().unwrap();
        let original = events.iter().find(|e| e["seq"] == seq).unwrap();
        assert_eq!(original["event_type"], stored_type);
    }
    let appended = app
        .all_notifications(Some("cd"))
        .await
        .into_iter()
        .filter(|n| n["type"] == "events.appended")
        .collect::<Vec<_>>();
    assert!(!appended.is_empty() && appended.len() <= 3);
    assert_eq!(appended.last().unwrap()["event_count"], 4);
}

async fn side_effects_apply_once_in_order(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let post = |e: Value| app.post("/v1/sessions/fx/events", e);
    let with_data = |t: &str, s: u32, data: Value| {
        let mut e = event(t, s);
        e["data"] = data;
        e
    };
    assert_eq!(post(event("session_start", 1)).await.status, 201);
    let status = || async { app.get("/v1/sessions/fx").await.body };

    post(with_data(
        "session_status_changed",
        2,
        json!({"status": "idle"}),
    ))
    .await;
    assert_eq!(status().await["status"], "idle");
    // Invalid status: stored, nothing changes.
    let r = post(with_data(
        "session_status_changed",
        3,
        json!({"status": "asleep"}),
    ))
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(status().await["status"], "idle");

    post(with_data(
        "conversation_started",
        4,
        json!({"conversation_id": "conv-1"}),
    ))
    .await;
    assert_eq!(status().await["external_conversation_id"], "conv-1");
    post(with_data(
        "conversation_started",
        5,
        json!({"conversation_id": "conv-1"}),
    ))
    .await;
    // A different id: kept as it was, warned and counted.
    let r = post(with_data(
        "conversation_started",
        6,
        json!({"conversation_id": "conv-2"}),
    ))
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(status().await["external_conversation_id"], "conv-1");
    let metrics = app.get("/metrics").await.text;
    let conflicts = metrics
        .lines()
        .find(|l| l.starts_with("orchestrator_conversation_conflicts_total "))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap();
    assert!(conflicts >= 1.0, "{conflicts}");

    // session_end naming an interaction leaves the session as it is.
    let mut end_i = event("session_end", 7);
    end_i["interaction_id"] = json!("unknown-interaction");
    assert_eq!(post(end_i).await.status, 201);
    assert_eq!(status().await["status"], "idle");

    post(event("session_end", 8)).await;
    assert_eq!(status().await["status"], "ended");
    // session_start reactivates an ended session.
    post(event("session_start", 9)).await;
    let s = status().await;
    assert_eq!(s["status"], "active");
    assert_eq!(s["event_count"], 9);

    // In one batch the effects apply in order: ended then active again.
    let r = post(json!({"events": [event("session_end", 10), event("session_start", 11)]})).await;
    assert_eq!(r.status, 201);
    assert_eq!(status().await["status"], "active");

    let updates: Vec<Value> = app
        .all_notifications(Some("fx"))
        .await
        .into_iter()
        .filter(|n| n["type"] == "session.updated")
        .map(|n| n["status"].clone())
        .collect();
    // idle, conversation linked (still idle), ended, active, ended, active.
    assert_eq!(
        updates,
        ["idle", "idle", "ended", "active", "ended", "active"]
    );
}

async fn notifications_report_each_commit(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    app.post(
        "/v1/sessions/n1/events",
        json!({"events": [event("a", 1), event("b", 2)]}),
    )
    .await;
    app.post("/v1/sessions/n2/events", event("session_end", 1))
        .await;
    let all = app.all_notifications(None).await;
    let kinds: Vec<(&str, &str)> = all
        .iter()
        .map(|n| {
            (
                n["session_id"].as_str().unwrap(),
                n["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("n1", "session.created"),
            ("n1", "events.appended"),
            ("n2", "session.created"),
            ("n2", "session.updated"),
            ("n2", "events.appended"),
        ]
    );
    let ids: Vec<i64> = all.iter().map(|n| n["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let appended = &all[1];
    assert_eq!(
        (
            appended["event_count"].as_i64(),
            appended["last_seq"].as_i64()
        ),
        (Some(2), Some(2))
    );
    assert!(
        appended.get("events").is_none() && appended.get("data").is_none(),
        "no bodies"
    );
    assert!(appended["at"].as_str().unwrap().ends_with('Z'));

    // after, session_id and limit.
    let r = app.get(format!("/v1/notifications?after={}", ids[1])).await;
    assert_eq!(r.body["notifications"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["next_after"], ids[4]);
    let r = app.get("/v1/notifications?session_id=n2&limit=2").await;
    let page = r.body["notifications"].as_array().unwrap();
    assert_eq!(page.len(), 2);
    assert!(page.iter().all(|n| n["session_id"] == "n2"));
    assert_eq!(r.body["next_after"], page[1]["id"]);
    let r = app.get(format!("/v1/notifications?after={}", ids[4])).await;
    assert_eq!(r.body["notifications"], json!([]));
    assert_eq!(
        r.body["next_after"], ids[4],
        "nothing newer: the cursor stays"
    );
    for bad in [
        "after=-1",
        "after=x",
        "limit=0",
        "limit=1001",
        "session_id=a%20b",
    ] {
        let r = app.get(format!("/v1/notifications?{bad}")).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }
}

both_backends!(
    batch_with_a_bad_event_stores_nothing,
    every_validation_rule_is_enforced,
    malformed_bodies_are_bad_requests,
    duplicates_are_stored_once,
    concurrent_duplicates_are_stored_once,
    side_effects_apply_once_in_order,
    notifications_report_each_commit,
);
