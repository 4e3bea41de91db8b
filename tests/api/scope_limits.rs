//! Per-scope limits: a scope over its in-flight requests, its bytes per second or its open
//! waits gets 429 with Retry-After, before its body is read, while another scope is served as
//! usual. Admission runs before any route or database is reached: SQLite only.

use std::io::Write;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use serde_json::json;

use crate::common::{event, Backend, TestApp};
use orchestrator::config::{ApiKeys, ScopeLimits};

async fn two_scopes(limits: ScopeLimits) -> TestApp {
    TestApp::start_with(Backend::Sqlite, move |c| {
        c.api_keys = ApiKeys::parse("key-a:team-a,key-b:team-b").unwrap();
        c.scope_limits = limits;
        c.limits.body_timeout = Duration::from_secs(3);
    })
    .await
    .expect("SQLite")
}

/// Posts one event to session `sid` as the holder of `key`.
async fn post_event(app: &TestApp, key: &str, sid: &str) -> crate::common::Resp {
    app.request(
        Method::POST,
        format!("/v1/sessions/{sid}/events"),
        Some(event("x", 1).to_string().into_bytes()),
        Some(key),
    )
    .await
}

/// A GET of the session list as the holder of `key`.
async fn list_sessions(app: &TestApp, key: &str) -> crate::common::Resp {
    app.request(Method::GET, "/v1/sessions", None, Some(key))
        .await
}

/// Opens a POST whose body never finishes arriving: it holds one of its scope's slots until
/// the body timeout.
fn stalled_post(app: &TestApp, key: &str) -> std::net::TcpStream {
    let addr = app.base_url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /v1/sessions/slow/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    )
    .unwrap();
    stream
}

#[actix_rt::test]
async fn a_scope_over_its_in_flight_requests_waits_then_gets_429_and_others_do_not() {
    let app = two_scopes(ScopeLimits {
        max_in_flight: 2,
        queue_wait: Duration::from_millis(300),
        ..ScopeLimits::default()
    })
    .await;
    let _held = [stalled_post(&app, "key-a"), stalled_post(&app, "key-a")];
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let a = post_event(&app, "key-a", "a1").await;
    assert_eq!(a.status, 429, "{}", a.text);
    assert_eq!(a.body["code"], "too_many_requests");
    assert_eq!(a.retry_after.as_deref(), Some("1"));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it waited for a slot first"
    );
    let b = post_event(&app, "key-b", "b1").await;
    assert_eq!(b.status, 201, "another scope is served: {}", b.text);
    // Health and metrics are not gated.
    assert_eq!(app.get("/healthz").await.status, 200);
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains(r#"orchestrator_throttled_requests_total{limit="in_flight"} 1"#),
        "{metrics}"
    );
    // Once the stalled bodies time out, the scope is served again.
    actix_rt::time::sleep(Duration::from_secs(3)).await;
    let a = post_event(&app, "key-a", "a1").await;
    assert_eq!(a.status, 201, "{}", a.text);
}

#[actix_rt::test]
async fn a_scope_over_its_bytes_per_second_gets_429_with_the_time_to_wait() {
    let app = two_scopes(ScopeLimits {
        bytes_per_sec: 100_000,
        queue_wait: Duration::from_millis(200),
        ..ScopeLimits::default()
    })
    .await;
    // 100 KB of burst, then 900 KB of debt: nine seconds at 100 KB/s.
    let big = json!({"metadata": {"blob": "x".repeat(1_000_000)}});
    let r = app
        .request(
            Method::PUT,
            "/v1/sessions/big",
            Some(big.to_string().into_bytes()),
            Some("key-a"),
        )
        .await;
    assert_eq!(
        r.status, 201,
        "one large body is never refused for its size"
    );
    let r = list_sessions(&app, "key-a").await;
    assert_eq!(r.status, 429, "{}", r.text);
    let retry: u64 = r.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((7..=10).contains(&retry), "Retry-After {retry}");
    let r = list_sessions(&app, "key-b").await;
    assert_eq!(r.status, 200);
}

#[actix_rt::test]
async fn a_scope_over_its_open_waits_gets_429_and_keeps_its_short_requests() {
    let app = two_scopes(ScopeLimits {
        max_waits: 1,
        ..ScopeLimits::default()
    })
    .await;
    let put = |key: &'static str| {
        app.request(
            Method::PUT,
            "/v1/sessions/w",
            Some(b"{}".to_vec()),
            Some(key),
        )
    };
    assert_eq!(put("key-a").await.status, 201);
    let long_poll = app.request(
        Method::GET,
        "/v1/notifications?after=1000000&wait_ms=2000",
        None,
        Some("key-a"),
    );
    let second = async {
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        let second = app
            .request(
                Method::GET,
                "/v1/notifications?after=1000000&wait_ms=2000",
                None,
                Some("key-a"),
            )
            .await;
        let short = app
            .request(Method::GET, "/v1/sessions/w", None, Some("key-a"))
            .await;
        let other = app
            .request(
                Method::GET,
                "/v1/notifications?after=1000000&wait_ms=100",
                None,
                Some("key-b"),
            )
            .await;
        (second, short, other)
    };
    let (first, (second, short, other)) = futures_util::future::join(long_poll, second).await;
    assert_eq!(first.status, 200);
    assert_eq!(second.status, 429, "{}", second.text);
    assert_eq!(second.body["code"], "too_many_requests");
    assert_eq!(short.status, 200, "short requests take no wait");
    assert_eq!(other.status, 200, "another scope's waits are its own");
    // The wait ended: its place is free again.
    let again = app
        .request(
            Method::GET,
            "/v1/notifications?after=1000000&wait_ms=10",
            None,
            Some("key-a"),
        )
        .await;
    assert_eq!(again.status, 200);
}

#[actix_rt::test]
async fn a_scope_over_its_request_rate_waits_its_turn_then_gets_429() {
    let app = two_scopes(ScopeLimits {
        requests_per_sec: 20,
        queue_wait: Duration::from_millis(500),
        ..ScopeLimits::default()
    })
    .await;
    // A second's worth at once, ten more in their turns within the queue time, then refusals.
    let started = Instant::now();
    let answers = futures_util::future::join_all(
        (0..60).map(|_| app.request(Method::GET, "/v1/sessions", None, Some("key-a"))),
    )
    .await;
    let served = answers.iter().filter(|r| r.status == 200).count();
    let refused: Vec<_> = answers.iter().filter(|r| r.status == 429).collect();
    assert_eq!(served + refused.len(), 60);
    assert!((25..=35).contains(&served), "{served} served");
    assert_eq!(refused[0].body["code"], "too_many_requests");
    assert!(refused[0].retry_after.is_some());
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the served ones took turns"
    );
    let b = list_sessions(&app, "key-b").await;
    assert_eq!(b.status, 200, "another scope has its own rate");
}
