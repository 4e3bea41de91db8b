//! Requests a web page of another site could make: a `no-cors` POST with a text body, a form
//! POST, a request from a foreign origin, one addressed to another host name (DNS rebinding).
//! None of them changes anything; the service's own pages and its clients still work. The
//! checks run before any route or database is reached, so SQLite only; the browser's side of
//! the same attacks is tested in headless Chromium (`tests/browser`).

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{Backend, TestApp};

/// Sends one request over a fresh connection and reads the answer: status, head, body.
async fn send(app: &TestApp, head: &str, body: &str) -> (u16, String, Value) {
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let request = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let text = actix_rt::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    })
    .await
    .unwrap();
    let (answer_head, answer_body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = answer_head[9..12].parse().unwrap();
    (
        status,
        answer_head.to_ascii_lowercase(),
        serde_json::from_str(answer_body).unwrap_or(Value::Null),
    )
}

/// A session with a pending approval `perm-1`.
async fn pending_approval(app: &TestApp) {
    assert_eq!(app.put("/v1/sessions/s1", json!({})).await.status, 201);
    let created = app
        .post(
            "/v1/sessions/s1/interactions",
            json!({"interaction_id": "perm-1", "kind": "approval", "timeout_ms": 600000}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
}

async fn assert_still_pending(app: &TestApp) {
    let now = app.get("/v1/sessions/s1/interactions/perm-1").await;
    assert_eq!(now.body["status"], "pending", "{}", now.text);
    let next = app
        .post("/v1/sessions/s1/commands/next?wait_ms=0", json!({}))
        .await;
    assert_eq!(next.status, 204, "no command was queued: {}", next.text);
}

#[actix_rt::test]
async fn a_text_body_cannot_decide_or_queue_anything() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    pending_approval(&app).await;
    let host = format!("Host: {}", app.base_url.trim_start_matches("http://"));
    // What `fetch(…, {mode: "no-cors", headers: {"Content-Type": "text/plain"}})` sends, and a
    // form POST, and a body with no type at all.
    for content_type in [
        "Content-Type: text/plain;charset=UTF-8\r\n",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "Content-Type: multipart/form-data; boundary=x\r\n",
        "",
    ] {
        for path in [
            "/v1/sessions/s1/interactions/perm-1/resolve",
            "/v1/sessions/s1/commands",
        ] {
            let head = format!("POST {path} HTTP/1.1\r\n{host}\r\n{content_type}X-Test: 1");
            let body = r#"{"response":{},"interaction_id":"cmd-1"}"#;
            let (status, _, problem) = send(&app, &head, body).await;
            assert_eq!(status, 415, "{path} {content_type}");
            assert_eq!(problem["code"], "unsupported_media_type");
            assert_eq!(problem["status"], 415);
        }
    }
    assert_still_pending(&app).await;
}

#[actix_rt::test]
async fn a_foreign_origin_may_read_nothing_new_and_change_nothing() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    pending_approval(&app).await;
    let authority = app.base_url.trim_start_matches("http://").to_owned();
    let port = authority.rsplit(':').next().unwrap().to_owned();
    let resolve = format!(
        "POST /v1/sessions/s1/interactions/perm-1/resolve HTTP/1.1\r\nHost: {authority}\r\n\
         Content-Type: application/json"
    );
    let origins = [
        "http://evil.example".to_owned(),
        "http://localhost:1".to_owned(),
        "null".to_owned(),
        // The right port under another host name than the one addressed.
        format!("http://localhost:{port}"),
    ];
    for origin in origins {
        let head = format!("{resolve}\r\nOrigin: {origin}");
        let (status, _, problem) = send(&app, &head, r#"{"response":{}}"#).await;
        assert_eq!(status, 403, "{origin}");
        assert_eq!(problem["code"], "origin_not_allowed", "{origin}");
    }
    assert_still_pending(&app).await;
    // The service's own page may.
    let head = format!("{resolve}\r\nOrigin: http://{authority}");
    let (status, _, body) = send(&app, &head, r#"{"response":{"allow":true}}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["completed_now"], true, "{body}");
}

#[actix_rt::test]
async fn allowed_origins_may_change_things_with_auth_on_too() {
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.allowed_origins = vec!["https://dash.example.com".into()];
        c.api_keys = orchestrator::config::ApiKeys::parse("k1:team").unwrap();
    })
    .await
    .expect("SQLite");
    let authority = app.base_url.trim_start_matches("http://").to_owned();
    let put = format!(
        "PUT /v1/sessions/s2 HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer k1\r\n\
         Content-Type: application/json"
    );
    let (status, _, _) = send(
        &app,
        &format!("{put}\r\nOrigin: https://evil.example"),
        "{}",
    )
    .await;
    assert_eq!(
        status, 403,
        "a valid key does not make a foreign page trusted"
    );
    let (status, _, body) = send(
        &app,
        &format!("{put}\r\nOrigin: https://dash.example.com"),
        "{}",
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[actix_rt::test]
async fn another_host_name_is_misdirected_unless_allowed() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    pending_approval(&app).await;
    for head in [
        "GET /v1/sessions HTTP/1.1\r\nHost: attacker.example",
        "GET / HTTP/1.1\r\nHost: attacker.example:8080",
        "POST /v1/sessions/s1/interactions/perm-1/resolve HTTP/1.1\r\nHost: rebind.attacker.example\r\nContent-Type: application/json",
    ] {
        let (status, _, problem) = send(&app, head, "").await;
        assert_eq!(status, 421, "{head}");
        assert_eq!(problem["code"], "host_not_allowed");
    }
    for host in ["localhost", "127.0.0.1", "app.localhost:1234", "[::1]"] {
        let (status, _, _) =
            send(&app, &format!("GET /healthz HTTP/1.1\r\nHost: {host}"), "").await;
        assert_eq!(status, 200, "{host}");
    }
    assert_still_pending(&app).await;

    let proxied = TestApp::start_with(Backend::Sqlite, |c| {
        c.allowed_hosts = vec!["orch.example.com".into()];
    })
    .await
    .expect("SQLite");
    let head = "GET /v1/sessions HTTP/1.1\r\nHost: orch.example.com";
    assert_eq!(send(&proxied, head, "").await.0, 200);
    let head = "GET /v1/sessions HTTP/1.1\r\nHost: other.example.com";
    assert_eq!(send(&proxied, head, "").await.0, 421);
}

#[actix_rt::test]
async fn the_dashboard_and_every_answer_carry_the_security_headers() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    for path in [
        "/",
        "/dashboard/app.js",
        "/dashboard/style.css",
        "/v1/sessions",
        "/nowhere",
    ] {
        let (_, head, _) = send(&app, &format!("GET {path} HTTP/1.1\r\nHost: localhost"), "").await;
        for header in [
            "content-security-policy: default-src 'self'; frame-ancestors 'none'",
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
        ] {
            assert!(head.contains(header), "{path}: {header} missing in {head}");
        }
    }
    // Refusals carry them too.
    let (status, head, _) = send(&app, "GET / HTTP/1.1\r\nHost: evil.example", "").await;
    assert_eq!(status, 421);
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
}
