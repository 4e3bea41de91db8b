//! What a connection sends before any route sees it: request heads that are too large, too
//! long, malformed or slow get problem JSON like every other error (actix's codec answered
//! them with empty bodies), and well-framed requests, chunked ones and pipelined ones
//! included, pass through untouched. The guard does not depend on the backend: SQLite only.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::Value;

use crate::common::{Backend, TestApp};

/// Sends `bytes` on a fresh connection, then reads until the server closes it (or 20 s).
async fn exchange(app: &TestApp, bytes: Vec<u8>) -> String {
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    actix_rt::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        // The server may refuse and close before taking everything.
        let _ = stream.write_all(&bytes);
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    })
    .await
    .unwrap()
}

/// The status and problem body of the last response in `text`.
fn last_problem(text: &str) -> (u16, Value) {
    let start = text.rfind("HTTP/1.1 ").expect("a response");
    let response = &text[start..];
    let status = response[9..12].parse().unwrap();
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{response}"
    );
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[actix_rt::test]
async fn refused_heads_are_answered_with_problem_json() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!(
                "GET /healthz HTTP/1.1\r\nHost: localhost\r\nCookie: {}\r\n\r\n",
                "a".repeat(40_000)
            ),
            431,
            "header_fields_too_large",
        ),
        (
            format!(
                "GET /healthz HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
                "X-A: 1\r\n".repeat(100)
            ),
            431,
            "header_fields_too_large",
        ),
        (
            format!(
                "GET /v1/sessions?x={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
                "a".repeat(10_000)
            ),
            414,
            "uri_too_long",
        ),
        (
            "POST /v1/sessions/s/events HTTP/1.1\r\nHost: localhost\r\n\
             Content-Length: 99999999999999999999999\r\n\r\n"
                .to_owned(),
            400,
            "bad_content_length",
        ),
        (
            "POST /v1/sessions/s/events HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n"
                .to_owned(),
            400,
            "bad_content_length",
        ),
        (
            "POST /v1/sessions/s/events HTTP/1.1\r\nHost: localhost\r\n\
             Transfer-Encoding: gzip\r\n\r\n"
                .to_owned(),
            400,
            "bad_transfer_encoding",
        ),
        (
            "G(T / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
            400,
            "malformed_request",
        ),
    ];
    for (request, status, code) in cases {
        let response = exchange(&app, request.into_bytes()).await;
        let (got, problem) = last_problem(&response);
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{response}"
        );
        assert_eq!(problem["status"].as_u64(), Some(u64::from(status)));
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // Nothing of a refused request reached a route.
    assert_eq!(app.get("/v1/sessions/s").await.status, 404);
}

/// A client that goes on sending after its head was refused still gets the answer, and the
/// server goes on serving others meanwhile.
#[actix_rt::test]
async fn what_follows_a_refused_head_is_dropped() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let mut bytes =
        b"POST /v1/sessions/s/events HTTP/1.1\r\nHost: localhost\r\nContent-Length: x\r\n\r\n"
            .to_vec();
    bytes.extend(std::iter::repeat_n(b'z', 8 << 20));
    let sending = exchange(&app, bytes);
    let meanwhile = async {
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        app.get("/healthz").await.status
    };
    let (response, healthz) = tokio::join!(sending, meanwhile);
    assert_eq!(healthz, 200);
    let (status, problem) = last_problem(&response);
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("bad_content_length")),
        "{response}"
    );
}

#[actix_rt::test]
async fn a_head_that_does_not_arrive_in_time_is_a_408() {
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.limits.body_timeout = Duration::from_millis(400);
    })
    .await
    .expect("SQLite");
    // Half a head, then silence.
    let response = exchange(&app, b"GET /healthz HTTP/1.1\r\nHo".to_vec()).await;
    let (status, problem) = last_problem(&response);
    assert_eq!(
        (status, problem["code"].as_str()),
        (408, Some("request_timeout")),
        "{response}"
    );
    // A connection that sends nothing at all.
    let response = exchange(&app, Vec::new()).await;
    assert_eq!(last_problem(&response).0, 408, "{response}");
}

#[actix_rt::test]
async fn pipelined_and_chunked_requests_pass_through() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let event = br#"{"event_type": "x", "timestamp": "2026-11-30T10:00:00Z", "event_id": "c1"}"#;
    let mut requests = Vec::new();
    requests.extend_from_slice(b"POST /v1/sessions/p/events HTTP/1.1\r\nHost: localhost\r\n");
    requests
        .extend_from_slice(b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    for piece in event.chunks(20) {
        requests.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        requests.extend_from_slice(piece);
        requests.extend_from_slice(b"\r\n");
    }
    requests.extend_from_slice(b"0\r\n\r\n");
    requests.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    // Last, a request the guard refuses: everything before it is answered first.
    requests.extend_from_slice(
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: x\r\n\r\n",
    );
    let response = exchange(&app, requests).await;
    let statuses: Vec<&str> = response
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &response[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, ["201", "200", "400"], "{response}");
    assert_eq!(last_problem(&response).1["code"], "bad_content_length");
    assert_eq!(app.get("/v1/sessions/p").await.body["event_count"], 1);
}

#[actix_rt::test]
async fn the_refusal_route_is_not_reachable_from_outside() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    for path in ["/_refused/x/malformed", "/_refused/malformed"] {
        assert_eq!(app.get(path).await.status, 404, "{path}");
    }
}

/// What actix-http refused with an empty 400 now gets problem JSON like every other refusal.
#[actix_rt::test]
async fn heads_actix_would_refuse_silently_get_problem_json() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let cases: [(&str, u16, &str); 6] = [
        (
            "POST /v1/sessions/s/events HTTP/1.1\r\nHost: localhost\r\n\
             Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
            400,
            "bad_content_length",
        ),
        (
            "POST /v1/sessions/s/events HTTP/1.1\r\nHost: localhost\r\n\
             Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            400,
            "bad_transfer_encoding",
        ),
        (
            "POST /v1/sessions/s/events HTTP/1.1\r\nHost: localhost\r\n\
             Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            "bad_transfer_encoding",
        ),
        ("GET /healthz HTTP/1.1\r\n\r\n", 400, "bad_host"),
        (
            "GET /healthz HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n",
            400,
            "bad_host",
        ),
        (
            "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n",
            405,
            "method_not_allowed",
        ),
    ];
    for (request, status, code) in cases {
        let response = exchange(&app, request.as_bytes().to_vec()).await;
        let (got, problem) = last_problem(&response);
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{response}"
        );
    }
    assert_eq!(app.get("/v1/sessions/s").await.status, 404);
}

/// An `Upgrade` header no longer switches the guard off for the rest of the connection: the
/// request is served as a plain one and a trickled head after it still times out.
#[actix_rt::test]
async fn an_upgrade_request_is_served_plainly_and_the_guard_stays_on() {
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.limits.body_timeout = Duration::from_millis(400);
    })
    .await
    .expect("SQLite");
    let started = std::time::Instant::now();
    let response = exchange(
        &app,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
          Upgrade: websocket\r\n\r\nGET /healthz HTTP/1.1\r\nHo"
            .to_vec(),
    )
    .await;
    let statuses: Vec<&str> = response
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &response[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, ["200", "408"], "{response}");
    assert_eq!(last_problem(&response).1["code"], "request_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "closed after the head timeout, not held: {:?}",
        started.elapsed()
    );
}

/// A chunked body that trickles past the body timeout gets its 408, and the connection closes
/// with it: `exchange` returns only once the server has closed.
#[actix_rt::test]
async fn a_trickled_chunked_body_gets_408_and_its_connection_closed() {
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.limits.body_timeout = Duration::from_millis(500);
    })
    .await
    .expect("SQLite");
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let (response, closed_after) = actix_rt::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        stream
            .write_all(
                b"POST /v1/sessions/t/events HTTP/1.1\r\nHost: localhost\r\n\
                  Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            )
            .unwrap();
        let started = std::time::Instant::now();
        let mut response = Vec::new();
        // One byte a chunk, every 100 ms, until the server closes (or 20 s).
        while started.elapsed() < Duration::from_secs(20) {
            if stream.write_all(b"1\r\n \r\n").is_err() {
                break;
            }
            let mut buf = [0u8; 4096];
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
        (
            String::from_utf8_lossy(&response).into_owned(),
            started.elapsed(),
        )
    })
    .await
    .unwrap();
    let (status, problem) = last_problem(&response);
    assert_eq!(
        (status, problem["code"].as_str()),
        (408, Some("request_timeout"))
    );
    assert!(
        closed_after < Duration::from_secs(10),
        "the connection closed with the 408, not {closed_after:?} later"
    );
}
