//! One tenant cannot break or starve another. A NUL character in any string is refused at
//! validation on both backends: PostgreSQL cannot store it, and a write it cannot store used
//! to fail the whole group commit, other scopes' writes included, with 503 every time.
//! Requests for sessions that do not exist cost no actor, and live actors are capped.

use actix_web::http::Method;
use futures_util::future::join_all;
use orchestrator::config::ApiKeys;
use serde_json::json;

use crate::common::{both_backends, Backend, Client, TestApp};

both_backends!(
    large_bodies_are_taken_in_little_more_memory_than_their_text,
    a_restart_over_large_pending_interactions_fits_in_little_memory,
    sessions_with_deadlines_are_woken_for_them_not_kept_in_memory,
    listings_are_bounded_in_bytes_and_page_on,
    requests_for_unknown_sessions_start_no_actor,
    live_actors_are_capped_least_recently_used_first,
    a_nul_in_any_string_is_refused_before_anything_is_stored,
    a_tenant_sending_nul_does_not_fail_another_tenants_writes,
    a_trickled_body_is_cut_off_with_408,
);

/// Resolves interaction `iid` of session `sid` and checks that this call completed it.
async fn resolves_now(http: &Client, sid: &str, iid: &str) {
    let r = http
        .post(
            format!("/v1/sessions/{sid}/interactions/{iid}/resolve"),
            json!({"response": "ok"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["completed_now"].as_bool()),
        (200, Some(true)),
        "{}",
        r.text
    );
}

/// Every kind of request that needs an existing session answers 404 for an unknown one without
/// starting its actor (a flood of them used to leave one actor per id alive for the idle
/// timeout). A session created afterwards is served as usual.
async fn requests_for_unknown_sessions_start_no_actor(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let interaction = json!({"interaction_id": "i1", "kind": "approval"});
    let requests = (0..40).map(|n| {
        let app = &app;
        let interaction = interaction.clone();
        async move {
            let sid = format!("ghost-{n}");
            let answers = [
                app.post(
                    format!("/v1/sessions/{sid}/interactions"),
                    interaction.clone(),
                )
                .await,
                app.post(
                    format!("/v1/sessions/{sid}/commands"),
                    json!({"interaction_id": "c1", "payload": {"run": "ls"}}),
                )
                .await,
                app.post(format!("/v1/sessions/{sid}/commands/next"), json!({}))
                    .await,
                app.post(
                    format!("/v1/sessions/{sid}/interactions/i1/resolve"),
                    json!({"response": "yes"}),
                )
                .await,
                app.post(
                    format!("/v1/sessions/{sid}/interactions/i1/cancel"),
                    json!({}),
                )
                .await,
                app.get(format!(
                    "/v1/sessions/{sid}/interactions/i1/wait?timeout_ms=10"
                ))
                .await,
                app.get(format!("/v1/sessions/{sid}/interactions/i1")).await,
                app.get(format!("/v1/sessions/{sid}")).await,
            ];
            answers
                .into_iter()
                .map(|r| (r.status, r.body["code"].as_str().map(str::to_owned)))
                .collect::<Vec<_>>()
        }
    });
    for answers in join_all(requests).await {
        for answer in answers {
            assert_eq!(answer, (404, Some("session_not_found".to_owned())));
        }
    }
    assert_eq!(app.started_session_actors().await, 0, "no actor started");
    assert_eq!(app.live_session_actors().await, 0);

    let r = app.put("/v1/sessions/ghost-0", json!({})).await;
    assert_eq!(r.status, 201);
    let r = app
        .post("/v1/sessions/ghost-0/interactions", interaction)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(app.started_session_actors().await, 1);
}

/// Past the cap of live actors the least recently used idle ones are passivated; one holding
/// work (a pending approval's deadline) stays, and every session still answers from its
/// committed state.
async fn live_actors_are_capped_least_recently_used_first(backend: Backend) {
    let cap = 8;
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.max_live_sessions = cap;
        c.session_threads = Some(2);
        c.sessions.idle_timeout = std::time::Duration::from_secs(3600);
    })
    .await
    else {
        return;
    };
    let approval = json!({"interaction_id": "keep", "kind": "approval", "timeout_ms": 600_000});
    let r = app.post("/v1/sessions/busy/events", one_event()).await;
    assert_eq!(r.status, 201);
    let r = app.post("/v1/sessions/busy/interactions", approval).await;
    assert_eq!(r.status, 201, "{}", r.text);
    for n in 0..60 {
        let r = app
            .post(format!("/v1/sessions/s{n}/events"), one_event())
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let mut live = usize::MAX;
    for _ in 0..100 {
        live = app.live_session_actors().await;
        // Two shards of four each, plus the busy session, which may not leave.
        if live <= cap + 1 {
            break;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(live <= cap + 1, "{live} actors live with a cap of {cap}");
    for n in [0, 30, 59] {
        let r = app.get(format!("/v1/sessions/s{n}")).await;
        assert_eq!(r.body["event_count"], 1, "{}", r.text);
        let again = app
            .post(format!("/v1/sessions/s{n}/events"), one_event())
            .await;
        assert_eq!(
            again.body["duplicates"], 1,
            "dedup survives passivation: {}",
            again.text
        );
    }
    resolves_now(&app, "busy", "keep").await;
}

/// Every listing ends its page before it passes ORCH_MAX_PAGE_BYTES (four concurrent
/// listings of large rows once took gigabytes) and says where to go on; following the pages
/// yields every row once, in order. A row larger than the limit still comes, alone.
async fn listings_are_bounded_in_bytes_and_page_on(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| c.limits.max_page_bytes = 64 * 1024).await
    else {
        return;
    };
    let text = "y".repeat(20_000);
    let events: Vec<_> = (0..10)
        .map(|i| {
            json!({"event_type": "big", "timestamp": "2026-11-30T10:00:00Z",
            "event_id": format!("e{i}"), "data": {"text": text}})
        })
        .collect();
    let r = app
        .post("/v1/sessions/big/events", json!({"events": events}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .get(format!(
                "/v1/sessions/big/events?limit=1000&after_seq={after}"
            ))
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(page.text.len() < 64 * 1024, "{} bytes", page.text.len());
        let got: Vec<i64> = page.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        if got.is_empty() {
            assert_eq!(page.body["truncated"], false);
            break;
        }
        assert_eq!(page.body["truncated"], got.len() == 3, "{got:?}");
        after = *got.last().unwrap();
        seqs.extend(got);
    }
    assert_eq!(seqs, (1..=10).collect::<Vec<i64>>());
    let huge = json!({"event_type": "huge", "timestamp": "2026-11-30T10:00:00Z",
        "data": {"text": "z".repeat(100_000)}});
    assert_eq!(
        app.post("/v1/sessions/huge/events", huge.clone())
            .await
            .status,
        201
    );
    assert_eq!(app.post("/v1/sessions/huge/events", json!({"events": [
        {"event_type": "huge", "timestamp": "2026-11-30T10:00:01Z", "data": {"text": "z".repeat(100_000)}}
    ]})).await.status, 201);
    let page = app.get("/v1/sessions/huge/events?order=desc").await;
    assert_eq!(page.body["events"].as_array().unwrap().len(), 1, "alone");
    assert_eq!(
        (
            page.body["events"][0]["seq"].as_i64(),
            page.body["truncated"].as_bool()
        ),
        (Some(2), Some(true))
    );

    for i in 0..6 {
        let body = json!({"interaction_id": format!("i{i}"), "kind": "question",
            "payload": {"text": text}});
        let r = app.post("/v1/sessions/big/interactions", body).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let mut ids = Vec::new();
    let mut next = String::new();
    loop {
        let page = app
            .get(format!(
                "/v1/sessions/big/interactions?limit=1000&after={next}"
            ))
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(page.text.len() < 64 * 1024);
        for i in page.body["interactions"].as_array().unwrap() {
            ids.push(i["interaction_id"].as_str().unwrap().to_owned());
        }
        match page.body["next_after"].as_str() {
            Some(after) => next = after.to_owned(),
            None => break,
        }
    }
    assert_eq!(ids, ["i0", "i1", "i2", "i3", "i4", "i5"]);
    let page = app
        .get("/v1/sessions/big/interactions?limit=2&after=i3")
        .await;
    let got: Vec<&str> = page.body["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["interaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        (got, page.body["next_after"].as_str()),
        (vec!["i4", "i5"], None)
    );
    let r = app.get("/v1/sessions/big/interactions?after=nope").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("bad_request")),
        "{}",
        r.text
    );

    for i in 0..5 {
        let r = app
            .put(
                format!("/v1/sessions/meta{i}"),
                json!({"metadata": {"text": text}}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let mut listed = 0;
    let mut cursor = String::new();
    loop {
        let page = app
            .get(format!("/v1/sessions?limit=1000&after={cursor}"))
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(page.text.len() < 64 * 1024);
        listed += page.body["sessions"].as_array().unwrap().len();
        match page.body["next_after"].as_str() {
            Some(after) => cursor = after.to_owned(),
            None => break,
        }
    }
    assert_eq!(listed, 5 + 2, "the five with metadata, big and huge");
}

/// A session whose only work is a deadline is passivated like any idle one; the registry wakes
/// it at the deadline, which fires on time. At start-up no session is loaded: each with a
/// pending interaction is woken at its earliest deadline (a restart with many large pending
/// interactions used to load them all at once and run out of memory).
async fn sessions_with_deadlines_are_woken_for_them_not_kept_in_memory(backend: Backend) {
    use std::time::{Duration, Instant};
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.idle_timeout = Duration::from_millis(200);
    })
    .await
    else {
        return;
    };
    assert_eq!(app.put("/v1/sessions/dl", json!({})).await.status, 201);
    let created = Instant::now();
    let approval = json!({"interaction_id": "soon", "kind": "approval", "timeout_ms": 2000});
    assert_eq!(
        app.post("/v1/sessions/dl/interactions", approval)
            .await
            .status,
        201
    );
    let mut live = usize::MAX;
    while created.elapsed() < Duration::from_millis(1800) {
        live = app.live_session_actors().await;
        if live == 0 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(live, 0, "passivated while its deadline waits");
    let mut status = String::new();
    while created.elapsed() < Duration::from_secs(10) {
        let r = app.get("/v1/sessions/dl/interactions/soon").await;
        status = r.body["status"].as_str().unwrap_or_default().to_owned();
        if status != "pending" {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "timed_out");
    assert!(
        created.elapsed() >= Duration::from_millis(2000),
        "not before its deadline"
    );
    let completed: Vec<_> = app
        .all_notifications(Some("dl"))
        .await
        .into_iter()
        .filter(|n| n["type"] == "interaction.completed")
        .collect();
    assert_eq!(completed.len(), 1, "{completed:?}");

    let later = json!({"interaction_id": "later", "kind": "approval", "timeout_ms": 600_000});
    assert_eq!(
        app.post("/v1/sessions/dl/interactions", later).await.status,
        201
    );
    let database = app.stop().await;
    let app = TestApp::start_on(database, |_| {}).await;
    assert_eq!(
        app.started_session_actors().await,
        0,
        "nothing loaded at start-up"
    );
    resolves_now(&app, "dl", "later").await;
}

/// Ten interactions with 4 MiB payloads and day-long deadlines: the real binary restarts over
/// them with its writable memory limited to 128 MiB (RLIMIT_DATA) and serves them. Start-up
/// used to load every one of them into memory as parsed JSON (about 870 MB) and was killed
/// for it again and again under a 600 MiB container limit.
async fn a_restart_over_large_pending_interactions_fits_in_little_memory(backend: Backend) {
    use crate::common::{fresh_database, RemoveOnDrop, ServerProcess};
    let Some(database) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let server = ServerProcess::spawn(&database);
    let blob = "x".repeat((4 << 20) - 1024);
    for i in 0..10 {
        let sid = format!("large{i}");
        assert_eq!(
            server
                .http
                .put(format!("/v1/sessions/{sid}"), json!({}))
                .await
                .status,
            201
        );
        let body = json!({"interaction_id": "q", "kind": "question", "timeout_ms": 86_400_000,
            "payload": {"blob": blob}});
        let r = server
            .http
            .post(format!("/v1/sessions/{sid}/interactions"), body)
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    server.kill();

    let limited = ServerProcess::spawn_limited(&database, &[], Some(128 << 20));
    assert_eq!(limited.http.get("/readyz").await.status, 200);
    resolves_now(&limited.http, "large3", "q").await;
    let r = limited.http.get("/v1/sessions/large7/interactions/q").await;
    assert_eq!(
        r.body["payload"]["blob"].as_str().map(str::len),
        Some(blob.len())
    );
    limited.kill();
}

/// A JSON object of about `bytes` bytes, most of it a long list of one-number lists: the
/// shape that costs a parsed tree the most (tens of times its text).
fn many_small_values(bytes: usize) -> String {
    let mut text = String::from(r#"{"z": 1, "list": ["#);
    let mut i = 0;
    while text.len() < bytes {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&format!("[{}]", i % 10));
        i += 1;
    }
    text.push_str(r#"], "a": {"b": true}}"#);
    text
}

/// Metadata, event data and a command payload of almost 4 MiB each, four of them at once, are
/// stored and served by the real binary with its writable memory limited to 256 MiB
/// (RLIMIT_DATA); it peaks near 145 MiB. Each body used to be parsed into a tree of the whole
/// document: this run took 620 MiB, and one such request alone about 250 MiB.
async fn large_bodies_are_taken_in_little_more_memory_than_their_text(backend: Backend) {
    use crate::common::{fresh_database, RemoveOnDrop, ServerProcess};
    let Some(database) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let server = ServerProcess::spawn_limited(&database, &[], Some(256 << 20));
    let object = many_small_values((4 << 20) - 4096);
    let metadata = format!(r#"{{"metadata": {object}}}"#);
    let command = format!(r#"{{"interaction_id": "c", "payload": {object}}}"#);
    // No event_id: the content key hashes the canonical form of `data`.
    let event = format!(
        r#"{{"event_type": "big", "timestamp": "2026-11-30T10:00:00Z", "data": {object}}}"#
    );
    // Each answer takes the test a while to parse: a fresh client for each request, so none
    // reuses a connection the server closed as idle meanwhile.
    let fresh = || crate::common::Client::new(server.http.base_url.clone());
    let clients: Vec<_> = (0..4).map(|_| fresh()).collect();
    let requests = (0..2).flat_map(|i| {
        let (metadata_client, event_client) = (&clients[2 * i], &clients[2 * i + 1]);
        [
            metadata_client.request(
                Method::PUT,
                format!("/v1/sessions/meta{i}"),
                Some(metadata.clone().into_bytes()),
                None,
            ),
            event_client.request(
                Method::POST,
                format!("/v1/sessions/data{i}/events"),
                Some(event.clone().into_bytes()),
                None,
            ),
        ]
    });
    for r in join_all(requests).await {
        assert_eq!(r.status, 201, "{}", &r.text[..r.text.len().min(300)]);
    }
    assert_eq!(fresh().put("/v1/sessions/cmd", json!({})).await.status, 201);
    let r = fresh()
        .request(
            Method::POST,
            "/v1/sessions/cmd/commands",
            Some(command.into_bytes()),
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", &r.text[..r.text.len().min(300)]);

    let again = fresh()
        .request(
            Method::POST,
            "/v1/sessions/data0/events",
            Some(event.into_bytes()),
            None,
        )
        .await;
    assert_eq!(
        (again.status, again.body["duplicates"].as_u64()),
        (200, Some(1))
    );
    let sent: serde_json::Value = serde_json::from_str(&object).unwrap();
    let r = fresh().get("/v1/sessions/meta1").await;
    assert!(r.body["metadata"] == sent, "metadata differs");
    let r = fresh().get("/v1/sessions/data0/events").await;
    assert!(r.body["events"][0]["data"] == sent, "event data differs");
    let r = fresh().get("/v1/sessions/cmd/interactions/c").await;
    assert!(r.body["payload"] == sent, "command payload differs");
    assert_eq!(fresh().get("/readyz").await.status, 200);
    server.kill();
}

fn one_event() -> serde_json::Value {
    json!({"event_type": "e", "timestamp": "2026-11-30T10:00:00Z", "event_id": "one"})
}

async fn a_nul_in_any_string_is_refused_before_anything_is_stored(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let conversation = json!({"event_type": "conversation_started",
        "timestamp": "2026-11-30T10:00:00Z", "data": {"conversation_id": "a\u{0}b"}});
    let r = app
        .post("/v1/sessions/n1/events", conversation.clone())
        .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (422, Some("data.conversation_id")),
        "{}",
        r.text
    );
    assert_eq!(
        app.get("/v1/sessions/n1").await.status,
        404,
        "nothing stored"
    );

    let batch = json!({"events": [
        {"event_type": "x", "timestamp": "2026-11-30T10:00:00Z"},
        {"event_type": "x", "timestamp": "2026-11-30T10:00:00Z", "data": {"k\u{0}": 1}},
    ]});
    let r = app.post("/v1/sessions/n1/events", batch).await;
    assert_eq!(
        (r.status, r.body["index"].as_u64()),
        (422, Some(1)),
        "{}",
        r.text
    );

    let r = app
        .put("/v1/sessions/n2", json!({"metadata": {"repo": "\u{0}"}}))
        .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (422, Some("metadata.repo"))
    );
    assert_eq!(app.put("/v1/sessions/n2", json!({})).await.status, 201);
    let r = app
        .post(
            "/v1/sessions/n2/interactions",
            json!({"interaction_id": "i1", "kind": "q", "payload": ["\u{0}"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (422, Some("payload[0]"))
    );
    let created = app
        .post(
            "/v1/sessions/n2/interactions",
            json!({"interaction_id": "i1", "kind": "q"}),
        )
        .await;
    assert_eq!(created.status, 201);
    for (action, body, field) in [
        (
            "result",
            json!({"status": "ok", "output": {"o": "\u{0}"}}),
            "output.o",
        ),
        ("resolve", json!({"response": "\u{0}"}), "response"),
        ("reject", json!({"reason": "no\u{0}"}), "reason"),
    ] {
        let r = app
            .post(format!("/v1/sessions/n2/interactions/i1/{action}"), body)
            .await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (422, Some(field)),
            "{action}"
        );
    }
    let still = app.get("/v1/sessions/n2/interactions/i1").await;
    assert_eq!(still.body["status"], "pending");
    // Retrying the refused write is refused the same way, never a 503.
    let r = app.post("/v1/sessions/n1/events", conversation).await;
    assert_eq!(r.status, 422);
}

async fn a_tenant_sending_nul_does_not_fail_another_tenants_writes(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.api_keys = ApiKeys::parse("key-a:alpha,key-b:beta").unwrap();
    })
    .await
    else {
        return;
    };
    let client = |key: &str| {
        let mut client = Client::new(app.base_url.clone());
        client.key = Some(key.into());
        client
    };
    let (alpha, beta) = (client("key-a"), client("key-b"));
    let bad = (0..200).map(|i| {
        let alpha = &alpha;
        async move {
            let body = json!({"event_type": "conversation_started",
                "timestamp": "2026-11-30T10:00:00Z", "event_id": format!("bad-{i}"),
                "data": {"conversation_id": "a\u{0}b"}});
            alpha
                .request(
                    Method::POST,
                    format!("/v1/sessions/a{}/events", i % 4),
                    Some(body.to_string().into_bytes()),
                    None,
                )
                .await
                .status
        }
    });
    let good = (0..200).map(|i| {
        let beta = &beta;
        async move {
            let body = json!({"event_type": "x", "timestamp": "2026-11-30T10:00:00Z",
                "event_id": format!("good-{i}")});
            beta.post(format!("/v1/sessions/b{}/events", i % 8), body)
                .await
                .status
        }
    });
    let (bad, good) = tokio::join!(join_all(bad), join_all(good));
    assert!(bad.iter().all(|s| *s == 422), "{bad:?}");
    assert!(
        good.iter().all(|s| *s == 201),
        "beta's writes all commit: {good:?}"
    );
    let stored: usize = join_all((0..8).map(|i| beta.all_events_len(format!("b{i}"))))
        .await
        .iter()
        .sum();
    assert_eq!(stored, 200);
}

/// A client that sends its body a byte at a time (or stops) is answered 408 problem JSON once
/// ORCH_BODY_TIMEOUT_MS has passed, and its connection is released; nothing is stored.
async fn a_trickled_body_is_cut_off_with_408(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.limits.body_timeout = std::time::Duration::from_millis(400);
    })
    .await
    else {
        return;
    };
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let response = actix_rt::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "POST /v1/sessions/slow/events HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{{"
        )
        .unwrap();
        // A byte every 100 ms: the body would take 40 s to arrive.
        for _ in 0..10 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if stream.write_all(b" ").is_err() {
                break;
            }
        }
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("application/problem+json"), "{response}");
    assert!(
        response.contains("\"code\":\"request_timeout\""),
        "{response}"
    );
    assert_eq!(app.get("/v1/sessions/slow").await.status, 404);
}

/// A stream consumer that reads nothing is cut off after `ORCH_STREAM_SLOW_MS`, although
/// the server never gets to check it (it does not pull a stream whose client accepts nothing):
/// the connection's TCP_USER_TIMEOUT ends it once the client's window has stayed shut.
#[actix_rt::test]
async fn a_stream_consumer_that_never_reads_is_cut_off() {
    use std::io::{Read, Write};
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.stream_slow_consumer = std::time::Duration::from_millis(1000);
    })
    .await
    .expect("SQLite");
    let addr: std::net::SocketAddr = app.base_url.trim_start_matches("http://").parse().unwrap();
    // A small receive buffer (set before connecting, so the window is small) that is never read.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut consumer: std::net::TcpStream = socket.into();
    consumer
        .write_all(b"GET /v1/stream HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    // Far more notifications than the client's window and the server's buffers hold.
    let big = "x".repeat(2000);
    for n in 0..40 {
        let events: Vec<_> = (0..50)
            .map(|i| {
                json!({"event_type": "fill", "timestamp": "2026-11-30T10:00:00Z",
                "event_id": format!("{n}-{i}"), "data": {"text": big}})
            })
            .collect();
        let r = app
            .post(
                format!("/v1/sessions/flood{n}/events"),
                json!({"events": events}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    actix_rt::time::sleep(std::time::Duration::from_secs(4)).await;
    // Now read: a connection still open would go on delivering (and never end); the cut one
    // ends in a reset or an end of file.
    let ended = actix_web::web::block(move || {
        consumer
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            match consumer.read(&mut buffer) {
                Ok(0) => return Ok("end of file"),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok("reset"),
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .unwrap();
    assert!(ended.is_ok(), "the stream was not cut off: {ended:?}");
    // The server goes on serving.
    assert_eq!(app.get("/healthz").await.status, 200);
}
