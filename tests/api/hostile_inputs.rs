//! Small requests that used to cost much, and input that used to break a request: strings
//! that an event copies into its session and every notification are short; notification
//! pages are bounded in bytes; JSON that is not Unicode is refused wherever it appears, and
//! stored text that cannot be parsed never fails an answer; ids that browsers cannot address
//! are refused. On both backends.

use std::time::Duration;

use diesel::RunQueryDsl;
use orchestrator::store::{self, PoolSettings};
use serde_json::{json, Value};

use crate::common::{both_backends, Backend, TestApp};

both_backends!(
    strings_copied_into_sessions_and_notifications_are_short,
    notification_pages_are_bounded_in_bytes,
    json_that_is_not_unicode_is_refused_everywhere,
    stored_text_that_does_not_parse_never_fails_an_answer,
    ids_browsers_cannot_address_are_refused,
);

fn event(event_type: &str, second: u32, data: Value) -> Value {
    json!({
        "event_type": event_type,
        "timestamp": format!("2026-12-05T10:00:{:02}Z", second % 60),
        "event_id": format!("{event_type}-{second}"),
        "data": data,
    })
}

/// The repro: one `conversation_started` with a huge id, then a small batch of alternating
/// status changes, each of which wrote a `session.updated` notification copying the id.
async fn strings_copied_into_sessions_and_notifications_are_short(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let huge = "c".repeat((4 << 20) - 1024);
    for (data, field) in [
        (json!({"conversation_id": huge}), "data.conversation_id"),
        (
            json!({"conversation_id": "c".repeat(257)}),
            "data.conversation_id",
        ),
        (json!({"status": "s".repeat(65)}), "data.status"),
    ] {
        let event_type = if field == "data.status" {
            "session_status_changed"
        } else {
            "conversation_started"
        };
        let r = app
            .post("/v1/sessions/amp/events", event(event_type, 1, data))
            .await;
        assert_eq!(r.status, 422, "{}", &r.text[..r.text.len().min(300)]);
        assert_eq!(r.body["field"], field);
    }
    assert_eq!(
        app.get("/v1/sessions/amp").await.status,
        404,
        "nothing stored"
    );

    let longest = "c".repeat(256);
    let linked = app
        .post(
            "/v1/sessions/amp/events",
            event(
                "conversation_started",
                1,
                json!({"conversation_id": longest}),
            ),
        )
        .await;
    assert_eq!(linked.status, 201, "{}", linked.text);
    let statuses: Vec<Value> = (0..1000)
        .map(|n| {
            let status = if n % 2 == 0 { "idle" } else { "active" };
            json!({
                "event_type": "session_status_changed",
                "timestamp": "2026-12-05T10:00:02Z",
                "event_id": format!("st-{n}"),
                "data": {"status": status},
            })
        })
        .collect();
    let batch = app
        .post("/v1/sessions/amp/events", json!({ "events": statuses }))
        .await;
    assert_eq!(
        batch.status,
        201,
        "{}",
        &batch.text[..batch.text.len().min(300)]
    );
    let page = app.get("/v1/notifications?limit=1000").await;
    assert_eq!(page.status, 200);
    let count = page.body["notifications"].as_array().unwrap().len();
    assert_eq!(count, 1000, "a page of small notifications");
    assert!(
        page.text.len() < 1000 * 600,
        "{} bytes for 1000 notifications",
        page.text.len()
    );
}

/// With a small page budget, a listing, a long-poll and a stream each send what fits and let
/// the reader go on from there: every notification arrives once, in order.
async fn notification_pages_are_bounded_in_bytes(backend: Backend) {
    let budget = 8 * 1024;
    let Some(app) = TestApp::start_with(backend, |c| c.limits.max_page_bytes = budget).await else {
        return;
    };
    let conversation = "c".repeat(256);
    let mut events = vec![event(
        "conversation_started",
        0,
        json!({"conversation_id": conversation}),
    )];
    events.extend((1..200).map(|n| {
        let status = if n % 2 == 0 { "active" } else { "idle" };
        event("session_status_changed", n, json!({ "status": status }))
    }));
    let r = app
        .post("/v1/sessions/paged/events", json!({ "events": events }))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut after = 0;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let wait = if pages % 2 == 0 { "" } else { "&wait_ms=100" };
        let page = app
            .get(format!("/v1/notifications?limit=1000&after={after}{wait}"))
            .await;
        assert_eq!(page.status, 200);
        let rows = page.body["notifications"].as_array().unwrap().clone();
        if rows.is_empty() {
            break;
        }
        pages += 1;
        assert!(
            page.text.len() < budget + 2048,
            "page {pages}: {} bytes",
            page.text.len()
        );
        seen.extend(rows.iter().map(|n| n["id"].as_i64().unwrap()));
        after = page.body["next_after"].as_i64().unwrap();
    }
    assert!(pages > 3, "the budget cut pages: {pages}");
    let total = seen.len();
    assert!(
        total > 200,
        "session.created, events.appended and 200 updates: {total}"
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order, once");
    let streamed = app.sse("", None, total).await;
    let streamed: Vec<i64> = streamed.into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(streamed, seen, "the stream sends the same, page by page");
}

/// `\ud800`-`\udfff` escapes that are not surrogate pairs are not Unicode (RFC 8259 §8.2):
/// 422 in every body that keeps JSON, and nothing stored.
async fn json_that_is_not_unicode_is_refused_everywhere(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let lone = r#""\ud800""#;
    let put = app
        .request(
            actix_web::http::Method::PUT,
            "/v1/sessions/u",
            Some(format!(r#"{{"metadata": {{"m": {lone}}}}}"#).into_bytes()),
            None,
        )
        .await;
    assert_eq!(
        (put.status, put.body["field"].as_str()),
        (422, Some("metadata.m")),
        "{}",
        put.text
    );
    assert_eq!(app.put("/v1/sessions/u", json!({})).await.status, 201);
    let created = app
        .post(
            "/v1/sessions/u/interactions",
            json!({"interaction_id": "i1", "kind": "approval", "timeout_ms": 600000}),
        )
        .await;
    assert_eq!(created.status, 201);
    let cases = [
        (
            "/v1/sessions/u/interactions",
            format!(
                r#"{{"interaction_id": "i2", "kind": "approval", "payload": {{"c": {lone}}}}}"#
            ),
            "payload.c",
        ),
        (
            "/v1/sessions/u/commands",
            format!(r#"{{"interaction_id": "c1", "payload": [{lone}]}}"#),
            "payload[0]",
        ),
        (
            "/v1/sessions/u/interactions/i1/resolve",
            r#"{"response": {"c": "\udbff"}}"#.to_owned(),
            "response.c",
        ),
        (
            "/v1/sessions/u/interactions/i1/reject",
            r#"{"reason": "no \udc00"}"#.to_owned(),
            "reason",
        ),
        (
            "/v1/sessions/u/interactions/i1/result",
            format!(r#"{{"status": "ok", "output": {lone}}}"#),
            "output",
        ),
    ];
    for (path, body, field) in cases {
        let r = app.post_raw(path, body.as_bytes()).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (422, Some(field)),
            "{path}: {}",
            r.text
        );
        assert_eq!(r.body["code"], "validation_failed");
    }
    // Events that differ only in such escapes were all taken for one: now none is stored.
    for escape in [r"\ud800", r"\udbff", r"\udfff"] {
        let body = format!(
            r#"{{"event_type": "x", "timestamp": "2026-12-05T10:00:00Z", "data": {{"c": "{escape}"}}}}"#
        );
        let r = app.post_raw("/v1/sessions/u/events", body.as_bytes()).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (422, Some("data.c")),
            "{}",
            r.text
        );
    }
    // A surrogate pair is Unicode and kept as sent.
    let pair = r#"{"event_type": "x", "timestamp": "2026-12-05T10:00:00Z", "data": {"c": "\ud83d\ude00"}}"#;
    assert_eq!(
        app.post_raw("/v1/sessions/u/events", pair.as_bytes())
            .await
            .status,
        201
    );
    let session = app.get("/v1/sessions/u").await;
    assert_eq!(session.body["event_count"], 1);
    let i1 = app.get("/v1/sessions/u/interactions/i1").await;
    assert_eq!(i1.body["status"], "pending", "{}", i1.text);
}

/// Text stored by an earlier build that refused nothing of the above: a conflict answer that
/// shows the interaction used to panic on it (and close the connection without an answer).
async fn stored_text_that_does_not_parse_never_fails_an_answer(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    assert_eq!(app.put("/v1/sessions/old", json!({})).await.status, 201);
    let created = app
        .post(
            "/v1/sessions/old/interactions",
            json!({"interaction_id": "i1", "kind": "approval", "payload": {"c": "x"}}),
        )
        .await;
    assert_eq!(created.status, 201);
    let cancelled = app
        .post("/v1/sessions/old/interactions/i1/cancel", json!({}))
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    let database = app.stop().await;
    {
        let settings = PoolSettings {
            max_size: 1,
            connection_timeout: Duration::from_secs(5),
        };
        let pool = store::connect(&database, &settings).expect("connect");
        let mut conn = pool.get().unwrap();
        let sql = r#"UPDATE interactions SET payload = '{"c":"\ud800"}'"#;
        match &mut **conn {
            store::DbConnection::Sqlite(c) => diesel::sql_query(sql).execute(c),
            store::DbConnection::Pg(c) => diesel::sql_query(sql).execute(c),
        }
        .unwrap();
    }
    let app = TestApp::start_on(database, |_| {}).await;
    let resolved = app
        .post(
            "/v1/sessions/old/interactions/i1/resolve",
            json!({"response": {}}),
        )
        .await;
    assert_eq!(resolved.status, 409, "{}", resolved.text);
    assert_eq!(resolved.body["code"], "already_completed");
    let shown = app.get("/v1/sessions/old/interactions/i1").await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert!(
        shown.text.contains(r#""payload":{"c":"\ud800"}"#),
        "served as it was stored: {}",
        shown.text
    );
}

async fn ids_browsers_cannot_address_are_refused(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    for path in [
        "/v1/sessions/%2E",
        "/v1/sessions/%2E%2E",
        "/v1/sessions/%2e/events",
    ] {
        let r = app
            .request(
                actix_web::http::Method::PUT,
                path,
                Some(b"{}".to_vec()),
                None,
            )
            .await;
        assert!(matches!(r.status, 404 | 405 | 422), "{path}: {}", r.text);
    }
    let put = app
        .request(
            actix_web::http::Method::PUT,
            "/v1/sessions/%2E%2E",
            Some(b"{}".to_vec()),
            None,
        )
        .await;
    assert_eq!(
        (put.status, put.body["field"].as_str()),
        (422, Some("session_id")),
        "{}",
        put.text
    );
    assert_eq!(app.put("/v1/sessions/s", json!({})).await.status, 201);
    let r = app
        .post(
            "/v1/sessions/s/interactions",
            json!({"interaction_id": "..", "kind": "approval"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (422, Some("interaction_id")),
        "{}",
        r.text
    );
    let r = app
        .post(
            "/v1/sessions/s/events",
            json!({"event_type": "x", "timestamp": "2026-12-05T10:00:00Z", "interaction_id": "."}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        app.put("/v1/sessions/...", json!({})).await.status,
        201,
        "three dots are a name"
    );
}
