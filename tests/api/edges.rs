//! What a newcomer types and probes: HEAD, the root page, the bearer scheme in any case,
//! malformed query values, integers beyond 64 bits, and times RFC 3339 cannot write.

use actix_web::http::Method;
use serde_json::{json, Value};

use crate::common::{both_backends, Backend, TestApp};

both_backends!(
    head_answers_every_get_route,
    the_root_page_links_the_docs,
    the_bearer_scheme_is_case_insensitive,
    a_bad_query_value_names_its_parameter,
    json_numbers_come_back_exactly_as_sent,
    json_keeps_its_key_order_and_loses_only_whitespace,
    json_nested_too_deep_is_a_400,
    times_outside_four_digit_years_are_refused,
);

async fn head_answers_every_get_route(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    assert_eq!(app.put("/v1/sessions/h1", json!({})).await.status, 201);
    let created = app
        .post(
            "/v1/sessions/h1/interactions",
            json!({"interaction_id": "i1", "kind": "q"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    for path in [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/v1/sessions",
        "/v1/sessions/h1",
        "/v1/sessions/h1/events",
        "/v1/sessions/h1/interactions",
        "/v1/sessions/h1/interactions/i1",
        "/v1/sessions/h1/interactions/i1/wait?timeout_ms=1",
        "/v1/notifications",
        "/v1/stream",
    ] {
        let head = app.request(Method::HEAD, path, None, None).await;
        assert_eq!(head.status, 200, "HEAD {path}");
        assert!(
            head.text.is_empty(),
            "HEAD {path} has a body: {}",
            head.text
        );
        if path == "/v1/stream" {
            // A GET would stream until the server stops.
            assert_eq!(head.content_type, "text/event-stream");
            continue;
        }
        let get = app.get(path).await;
        assert_eq!(get.status, 200, "GET {path}");
        assert_eq!(head.content_type, get.content_type, "{path}");
    }
    let missing = app
        .request(Method::HEAD, "/v1/sessions/nope", None, None)
        .await;
    assert_eq!(missing.status, 404);
}

async fn the_root_page_links_the_docs(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let root = app.get("/").await;
    assert_eq!(root.status, 200);
    assert!(
        root.content_type.starts_with("text/html"),
        "{}",
        root.content_type
    );
    for link in ["/docs/api.md", "/openapi.json"] {
        assert!(
            root.text.contains(&format!("href=\"{link}\"")),
            "{link}: {}",
            root.text
        );
        assert_eq!(app.get(link).await.status, 200, "{link}");
    }
    let reference = app.get("/docs/api.md").await;
    assert!(reference.text.starts_with("# The orchestrator HTTP API"));
}

async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.api_keys = orchestrator::config::ApiKeys::parse("k1:alpha").unwrap();
    })
    .await
    else {
        return;
    };
    let client = awc::Client::new();
    for header in ["Bearer k1", "bearer k1", "BEARER k1"] {
        let res = client
            .get(format!("{}/v1/sessions", app.base_url))
            .insert_header(("Authorization", header))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{header}");
    }
    for header in ["Bearer k2", "Basic k1", "Bearer k1x", "Bearer"] {
        let res = client
            .get(format!("{}/v1/sessions", app.base_url))
            .insert_header(("Authorization", header))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{header}");
    }
}

async fn a_bad_query_value_names_its_parameter(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    assert_eq!(app.put("/v1/sessions/q1", json!({})).await.status, 201);
    for (path, parameter) in [
        ("/v1/sessions/q1/events?after_seq=x", "after_seq"),
        ("/v1/sessions/q1/events?limit=10&offset=-", "offset"),
        ("/v1/notifications?after=1.5", "after"),
        ("/v1/notifications?wait_ms=-1", "wait_ms"),
        ("/v1/sessions?limit=ten", "limit"),
        ("/v1/sessions/q1/commands/next?wait_ms=soon", "wait_ms"),
    ] {
        let method = if path.contains("commands/next") {
            Method::POST
        } else {
            Method::GET
        };
        let r = app.request(method, path, None, None).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("bad_request")),
            "{path}"
        );
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(parameter), "{path}: {detail}");
    }
}

async fn json_numbers_come_back_exactly_as_sent(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let body = br#"{"event_type": "x", "timestamp": "2026-11-22T10:00:00Z",
        "data": {"big": 18446744073709551616, "neg": -9223372036854775809,
                 "exact": 0.1000000000000000055511151231257827, "small": 7}}"#;
    let posted = app.post_raw("/v1/sessions/n1/events", body).await;
    assert_eq!(posted.status, 201, "{}", posted.text);
    let listed = app.get("/v1/sessions/n1/events").await;
    for digits in [
        "\"big\":18446744073709551616",
        "\"neg\":-9223372036854775809",
        "\"small\":7",
    ] {
        assert!(listed.text.contains(digits), "{digits}: {}", listed.text);
    }
    let exact = &listed.body["events"][0]["data"]["exact"];
    assert_eq!(
        exact.to_string().trim_end_matches('0'),
        "0.1000000000000000055511151231257827"
    );

    let metadata = br#"{"metadata": {"id": 123456789012345678901234567890}}"#;
    let put = app
        .request(
            Method::PUT,
            "/v1/sessions/n2",
            Some(metadata.to_vec()),
            None,
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.text);
    let session = app.get("/v1/sessions/n2").await;
    assert!(
        session.text.contains("123456789012345678901234567890"),
        "{}",
        session.text
    );
    // The same event sent again is still a duplicate.
    let again = app.post_raw("/v1/sessions/n1/events", body).await;
    assert_eq!(
        (again.status, again.body["duplicates"].clone()),
        (200, Value::from(1))
    );
}

async fn json_keeps_its_key_order_and_loses_only_whitespace(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let created = app
        .request(
            Method::PUT,
            "/v1/sessions/k1",
            Some(br#"{"metadata": {"b": 1, "a": [ 2,	3 ], "s": "x  y"}}"#.to_vec()),
            None,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let read = app.get("/v1/sessions/k1").await;
    match backend {
        Backend::Sqlite => assert!(
            read.text
                .contains(r#""metadata":{"b":1,"a":[2,3],"s":"x  y"}"#),
            "{}",
            read.text
        ),
        // jsonb orders keys its own way once the session is read back from the database.
        Backend::Postgres => assert_eq!(
            read.body["metadata"],
            json!({"b": 1, "a": [2, 3], "s": "x  y"})
        ),
    }
    // The content key of an event without an id ignores key order all the same.
    let event = |data: &str| {
        format!(r#"{{"event_type": "x", "timestamp": "2026-11-22T10:00:00Z", "data": {data}}}"#)
    };
    let first = app
        .post_raw(
            "/v1/sessions/k1/events",
            event(r#"{"a": 1, "b": 2}"#).as_bytes(),
        )
        .await;
    assert_eq!(first.status, 201);
    let second = app
        .post_raw(
            "/v1/sessions/k1/events",
            event(r#"{"b":2,"a":1}"#).as_bytes(),
        )
        .await;
    assert_eq!(
        (second.status, second.body["duplicates"].clone()),
        (200, Value::from(1))
    );
}

async fn json_nested_too_deep_is_a_400(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let nested = |depth: usize| {
        format!(
            r#"{{"metadata": {{"deep": {}{}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    // The body object and `metadata` are two levels.
    let ok = app
        .request(
            Method::PUT,
            "/v1/sessions/d1",
            Some(nested(126).into_bytes()),
            None,
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    let deep = app
        .request(
            Method::PUT,
            "/v1/sessions/d2",
            Some(nested(127).into_bytes()),
            None,
        )
        .await;
    assert_eq!(
        (deep.status, deep.content_type.as_str()),
        (400, "application/problem+json"),
        "{}",
        deep.text
    );
    assert!(
        deep.body["detail"].as_str().unwrap().contains("128"),
        "{}",
        deep.text
    );
    assert_eq!(app.get("/v1/sessions/d2").await.status, 404);
}

async fn times_outside_four_digit_years_are_refused(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    for timestamp in ["0000-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"] {
        let r = app
            .post(
                "/v1/sessions/t1/events",
                json!({"event_type": "x", "timestamp": timestamp}),
            )
            .await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (422, Some("timestamp")),
            "{timestamp}: {}",
            r.text
        );
    }
    let edge = app
        .post(
            "/v1/sessions/t1/events",
            json!({"event_type": "x", "timestamp": "9999-12-31T23:59:59.999Z"}),
        )
        .await;
    assert_eq!(edge.status, 201, "{}", edge.text);
    let listed = app.get("/v1/sessions/t1/events").await;
    assert_eq!(
        listed.body["events"][0]["timestamp"],
        "9999-12-31T23:59:59.999Z"
    );
}
