//! Client `sequence` numbers: events are applied (and get their `seq`) in sequence order; an
//! event ahead of a gap waits for it, up to the gap timeout or a buffer cap; a late one is
//! flagged `out_of_order`.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::common::{both_backends, Backend, Client, TestApp};

fn sequenced(sequence: i64, tag: &str) -> Value {
    json!({"event_type": "hook", "timestamp": "2026-11-22T10:00:00Z",
           "sequence": sequence, "data": {"tag": tag, "n": sequence}})
}

/// (sequence, out_of_order) of the session's events in `seq` order.
async fn stored(app: &Client, sid: &str) -> Vec<(i64, bool)> {
    app.all_events(sid)
        .await
        .iter()
        .map(|e| {
            (
                e["sequence"].as_i64().unwrap(),
                e["out_of_order"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Fails the test rather than waiting out a long gap timeout if something is held back wrongly.
async fn soon<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    actix_rt::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what} was held back"))
}

async fn a_reversed_pair_is_stored_in_order(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.reorder_gap = Duration::from_secs(30)
    })
    .await
    else {
        return;
    };
    let second = app.post("/v1/sessions/r/events", sequenced(1, "second"));
    let first = async {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        app.post("/v1/sessions/r/events", sequenced(0, "first"))
            .await
    };
    let (second, first) = soon("the pair", futures_util::future::join(second, first)).await;
    assert_eq!(
        (first.status, second.status),
        (201, 201),
        "{} {}",
        first.text,
        second.text
    );
    assert_eq!(first.body["events"][0]["seq"], 1);
    assert_eq!(second.body["events"][0]["seq"], 2);
    assert_eq!(stored(&app, "r").await, [(0, false), (1, false)]);
}

/// 12 sessions, 20 events each, every session's sequences shuffled and all 240 requests sent
/// at once: each session stores them in sequence order.
async fn shuffled_sequences_are_stored_in_order(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.reorder_gap = Duration::from_secs(30)
    })
    .await
    else {
        return;
    };
    let mut requests = Vec::new();
    for session in 0..12u64 {
        // A fixed permutation per session (seeded LCG), so failures replay.
        let mut order: Vec<i64> = (0..20).collect();
        let mut state = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(session + 1);
        for i in (1..order.len()).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (state >> 33) as usize % (i + 1));
        }
        for sequence in order {
            requests.push(app.post(
                format!("/v1/sessions/shuffled-{session}/events"),
                sequenced(sequence, "x"),
            ));
        }
    }
    let responses = soon("a shuffled session", join_all(requests)).await;
    assert!(
        responses.iter().all(|r| r.status == 201),
        "{:?}",
        responses.iter().find(|r| r.status != 201)
    );
    let in_order: Vec<(i64, bool)> = (0..20).map(|s| (s, false)).collect();
    for session in 0..12 {
        assert_eq!(
            stored(&app, &format!("shuffled-{session}")).await,
            in_order,
            "session {session}"
        );
    }
}

async fn a_gap_times_out_and_the_late_event_is_flagged(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.reorder_gap = Duration::from_millis(200)
    })
    .await
    else {
        return;
    };
    assert_eq!(
        app.post("/v1/sessions/g/events", sequenced(0, "a"))
            .await
            .status,
        201
    );
    // Ahead of the gap at 1: held until the gap timeout, then applied.
    let r = soon(
        "the gap timeout",
        app.post("/v1/sessions/g/events", sequenced(2, "c")),
    )
    .await;
    assert_eq!(r.status, 201);
    // 1 arrives after its gap was given up: applied, flagged.
    let r = app.post("/v1/sessions/g/events", sequenced(1, "b")).await;
    assert_eq!(r.status, 201);
    let r2 = soon(
        "an in-order event",
        app.post("/v1/sessions/g/events", sequenced(3, "d")),
    )
    .await;
    assert_eq!(r2.status, 201);
    assert_eq!(
        stored(&app, "g").await,
        [(0, false), (2, false), (1, true), (3, false)]
    );
    let events = app.all_events("g").await;
    assert_eq!(events[2]["out_of_order"], true);
    // The late one sent again is a plain duplicate.
    let r = app.post("/v1/sessions/g/events", sequenced(1, "b")).await;
    assert_eq!(
        (r.status, r.body["events"][0]["duplicate"].as_bool()),
        (200, Some(true))
    );
}

async fn sequence_conflicts_and_duplicates(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    for s in 0..3 {
        app.post("/v1/sessions/d/events", sequenced(s, "orig"))
            .await;
    }
    // The same event again: deduplicated.
    let r = app
        .post("/v1/sessions/d/events", sequenced(1, "orig"))
        .await;
    assert_eq!(
        (r.status, &r.body["events"][0]),
        (200, &json!({"seq": 2, "duplicate": true}))
    );
    // The same number, other content: refused, nothing stored.
    let r = app
        .post("/v1/sessions/d/events", sequenced(1, "other"))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        (r.body["field"].as_str(), r.body["index"].as_i64()),
        (Some("sequence"), Some(0))
    );
    assert!(r.body["detail"].as_str().unwrap().contains("already taken"));
    // Within one batch too, and the whole batch is refused.
    let batch = json!({"events": [sequenced(3, "x"), sequenced(4, "y"), sequenced(3, "z")]});
    let r = app.post("/v1/sessions/d/events", batch).await;
    assert_eq!(
        (r.status, r.body["index"].as_i64()),
        (422, Some(2)),
        "{}",
        r.text
    );
    assert_eq!(app.get("/v1/sessions/d").await.body["event_count"], 3);
    // A batch is applied in sequence order whatever order it was sent in.
    let batch = json!({"events": [sequenced(5, "f"), sequenced(3, "d"), sequenced(4, "e")]});
    let r = app.post("/v1/sessions/d/events", batch).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let seqs: Vec<i64> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        [6, 4, 5],
        "acks in request order, seqs in sequence order"
    );
    assert_eq!(
        stored(&app, "d")
            .await
            .iter()
            .map(|s| s.0)
            .collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
}

/// Events without `sequence` are never delayed, even while sequenced ones wait.
async fn unsequenced_events_are_never_delayed(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.reorder_gap = Duration::from_secs(30)
    })
    .await
    else {
        return;
    };
    let waiting = app.post("/v1/sessions/u/events", sequenced(1, "ahead"));
    let others = async {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        let plain = json!({"event_type": "plain", "timestamp": "2026-11-22T10:00:00Z"});
        let r = soon(
            "an unsequenced event",
            app.post("/v1/sessions/u/events", plain),
        )
        .await;
        assert_eq!(
            (r.status, r.body["events"][0]["seq"].as_i64()),
            (201, Some(1))
        );
        app.post("/v1/sessions/u/events", sequenced(0, "first"))
            .await
    };
    let (waiting, first) = soon("the gap fill", futures_util::future::join(waiting, others)).await;
    assert_eq!((first.status, waiting.status), (201, 201));
    assert_eq!(waiting.body["events"][0]["seq"], 3);
}

/// Past the per-session or the global cap, gaps are given up at once: nothing waits long,
/// nothing is dropped.
async fn the_reorder_buffer_is_capped(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.reorder_gap = Duration::from_secs(60);
        c.sessions.reorder_max_per_session = 3;
        c.sessions.reorder_max_total = 5;
    })
    .await
    else {
        return;
    };
    // Per session: three wait (the cap), the fourth releases them all, in order.
    let held = join_all((10..13).map(|s| app.post("/v1/sessions/cap/events", sequenced(s, "h"))));
    let overflow = async {
        actix_rt::time::sleep(Duration::from_millis(150)).await;
        app.post("/v1/sessions/cap/events", sequenced(13, "o"))
            .await
    };
    let (held, overflow) = soon(
        "a capped session",
        futures_util::future::join(held, overflow),
    )
    .await;
    assert!(held.iter().chain([&overflow]).all(|r| r.status == 201));
    assert_eq!(
        stored(&app, "cap").await,
        [(10, false), (11, false), (12, false), (13, false)]
    );
    let r = app
        .post("/v1/sessions/cap/events", sequenced(4, "late"))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(stored(&app, "cap").await.last(), Some(&(4, true)));

    // Globally: two sessions hold 2 + 2 events; a third session's 2 would pass the total of 5.
    let held = join_all(["ga", "gb"].map(|sid| {
        app.post(
            format!("/v1/sessions/{sid}/events"),
            json!({"events": [sequenced(5, "x"), sequenced(6, "y")]}),
        )
    }));
    let third = async {
        actix_rt::time::sleep(Duration::from_millis(150)).await;
        let r = soon(
            "the session over the global cap",
            app.post(
                "/v1/sessions/gc/events",
                json!({"events": [sequenced(5, "x"), sequenced(6, "y")]}),
            ),
        )
        .await;
        assert_eq!(r.status, 201);
        // Fill the others' gaps so they complete.
        for sid in ["ga", "gb"] {
            let fill: Vec<Value> = (0..5).map(|s| sequenced(s, "fill")).collect();
            let r = app
                .post(
                    format!("/v1/sessions/{sid}/events"),
                    json!({"events": fill}),
                )
                .await;
            assert_eq!(r.status, 201);
        }
    };
    let (held, ()) = soon("the held sessions", futures_util::future::join(held, third)).await;
    assert!(held.iter().all(|r| r.status == 201));
    let in_order: Vec<(i64, bool)> = (0..7).map(|s| (s, false)).collect();
    assert_eq!(stored(&app, "ga").await, in_order);
    assert_eq!(stored(&app, "gb").await, in_order);
}

fn sequenced_of_size(sequence: i64, bytes: usize) -> Value {
    json!({"event_type": "hook", "timestamp": "2026-11-22T10:00:00Z",
           "sequence": sequence, "data": {"blob": "b".repeat(bytes), "n": sequence}})
}

/// A few large events fill the per-session byte cap long before its event count: the one
/// that would pass it gives up the gap at once, and everything is stored in order.
async fn the_reorder_buffer_is_capped_in_bytes(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.reorder_gap = Duration::from_secs(60);
        c.sessions.reorder_max_bytes_per_session = 2 << 20;
    })
    .await
    else {
        return;
    };
    let held = join_all(
        (10..12).map(|s| app.post("/v1/sessions/bytes/events", sequenced_of_size(s, 900 << 10))),
    );
    let overflow = async {
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        app.post(
            "/v1/sessions/bytes/events",
            sequenced_of_size(12, 900 << 10),
        )
        .await
    };
    let (held, overflow) = soon(
        "a session over its byte cap",
        futures_util::future::join(held, overflow),
    )
    .await;
    assert!(held.iter().chain([&overflow]).all(|r| r.status == 201));
    assert_eq!(
        stored(&app, "bytes").await,
        [(10, false), (11, false), (12, false)]
    );
    // The global byte cap, over two sessions.
    drop(app);
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.reorder_gap = Duration::from_secs(60);
        c.sessions.reorder_max_bytes_total = 2 << 20;
    })
    .await
    else {
        return;
    };
    let held = join_all(["ga", "gb"].map(|sid| {
        app.post(
            format!("/v1/sessions/{sid}/events"),
            sequenced_of_size(5, 900 << 10),
        )
    }));
    let third = async {
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        let r = app
            .post("/v1/sessions/gc/events", sequenced_of_size(5, 900 << 10))
            .await;
        assert_eq!(r.status, 201);
        assert_eq!(stored(&app, "gc").await, [(5, false)]);
        for sid in ["ga", "gb"] {
            let fill: Vec<Value> = (0..5).map(|s| sequenced(s, "fill")).collect();
            let r = app
                .post(
                    format!("/v1/sessions/{sid}/events"),
                    json!({"events": fill}),
                )
                .await;
            assert_eq!(r.status, 201);
        }
    };
    let (held, ()) = soon("the held sessions", futures_util::future::join(held, third)).await;
    assert!(held.iter().all(|r| r.status == 201));
}

/// The repro: concurrent large events ahead of a gap were all held in memory (1.2 GiB for a
/// hundred 4 MiB events). The real binary, with a long gap and a 2 MiB per-session cap, holds
/// three 512 KiB events (its own gauge says so); the fourth would pass the cap, so the gap is
/// given up at once and all four are stored, in order, long before the gap timeout.
async fn large_events_ahead_of_a_gap_fit_in_bounded_memory(backend: Backend) {
    use crate::common::{fresh_database, RemoveOnDrop, ServerProcess};
    let Some(database) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let cap = 2usize << 20;
    let server = ServerProcess::spawn_limited(
        &database,
        &[
            ("ORCH_REORDER_GAP_MS", "60000"),
            ("ORCH_REORDER_MAX_BYTES_PER_SESSION", &cap.to_string()),
        ],
        Some(256 << 20),
    );
    let held_bytes = || async {
        let metrics = server.http.get("/metrics").await.text;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("orchestrator_reorder_held_bytes "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .expect("the gauge is listed")
    };
    let clients: Vec<Client> = (0..4)
        .map(|_| Client::new(server.http.base_url.clone()))
        .collect();
    let post = |n: usize| {
        clients[n].post(
            "/v1/sessions/heavy/events",
            sequenced_of_size(n as i64 + 10, 512 << 10),
        )
    };
    let waiting = join_all((0..3).map(post));
    let overflow = async {
        // Until the three wait.
        let mut held = 0.0;
        for _ in 0..100 {
            actix_rt::time::sleep(Duration::from_millis(50)).await;
            held = held_bytes().await;
            if held >= 3.0 * (512 << 10) as f64 {
                break;
            }
        }
        assert!(
            held >= 3.0 * (512 << 10) as f64 && held <= cap as f64,
            "held {held} bytes"
        );
        post(3).await
    };
    let (waited, overflowed) = soon(
        "events over the byte cap",
        futures_util::future::join(waiting, overflow),
    )
    .await;
    for r in waited.iter().chain([&overflowed]) {
        assert_eq!(r.status, 201, "{}", &r.text[..r.text.len().min(300)]);
    }
    assert_eq!(held_bytes().await, 0.0);
    assert_eq!(
        stored(&server.http, "heavy").await,
        [(10, false), (11, false), (12, false), (13, false)]
    );
}

/// After a restart the expected sequence comes from the stored events: no waiting for numbers
/// the session already has.
async fn a_restart_remembers_the_next_sequence(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.reorder_gap = Duration::from_secs(60)
    })
    .await
    else {
        return;
    };
    for s in 0..3 {
        app.post("/v1/sessions/rs/events", sequenced(s, "x")).await;
    }
    let database = app.stop().await;
    let app = TestApp::start_on(database, |c| {
        c.sessions.reorder_gap = Duration::from_secs(60)
    })
    .await;
    let r = soon(
        "the next sequence after a restart",
        app.post("/v1/sessions/rs/events", sequenced(3, "x")),
    )
    .await;
    assert_eq!(
        (r.status, r.body["events"][0]["seq"].as_i64()),
        (201, Some(4))
    );
    let r = app
        .post("/v1/sessions/rs/events", sequenced(1, "other"))
        .await;
    assert_eq!(
        r.status, 422,
        "a taken number is known after a restart: {}",
        r.text
    );
}

both_backends!(
    a_reversed_pair_is_stored_in_order,
    shuffled_sequences_are_stored_in_order,
    a_gap_times_out_and_the_late_event_is_flagged,
    sequence_conflicts_and_duplicates,
    unsequenced_events_are_never_delayed,
    the_reorder_buffer_is_capped,
    the_reorder_buffer_is_capped_in_bytes,
    large_events_ahead_of_a_gap_fit_in_bounded_memory,
    a_restart_remembers_the_next_sequence,
);
