//! Search and activity across sessions (`GET /v1/events`, `GET /v1/activity`), on both
//! backends: what search text finds (phrases, prefixes, the words of Claude Code's hook
//! events), the filters, paging newest first within the byte budget, scopes kept apart, bad
//! parameters, and the full-text index catching up with commits it has not taken yet, after a
//! restart too, and with one node of a cluster indexing at a time.

use std::time::{Duration, Instant};

use awc::http::Method;
use serde_json::{json, Value};

use orchestrator::config::ApiKeys;
use orchestrator::store::models::{EventRow, SearchRow, SessionRow};
use orchestrator::store::search::{self, SearchFilter};
use orchestrator::store::{self, commit_batch, PoolSettings, SessionWrite};

use crate::common::{both_backends, fresh_database, Backend, RemoveOnDrop, ServerProcess, TestApp};

fn hook(kind: &str, data: Value) -> Value {
    json!({"event_type": kind, "timestamp": "2026-12-05T10:00:00Z", "data": data})
}

pub(crate) fn bash(command: &str) -> Value {
    hook(
        "PreToolUse",
        json!({"tool_name": "Bash", "cwd": "/home/dev/acme",
               "tool_input": {"command": command, "description": "Run it"}}),
    )
}

/// (session, seq) of each result, in order.
fn found(body: &Value) -> Vec<(String, i64)> {
    body["events"]
        .as_array()
        .expect("an events array")
        .iter()
        .map(|e| {
            (
                e["session_id"].as_str().unwrap().to_owned(),
                e["seq"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Search text finds an event shortly after its commit (the index is filled between
/// commits): asks until `expected` results come back, for at most 10 s.
pub(crate) async fn search_until(
    app: &crate::common::Client,
    query: &str,
    expected: usize,
) -> Value {
    let started = Instant::now();
    loop {
        let r = app.get(format!("/v1/events?{query}")).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        if r.body["events"].as_array().unwrap().len() >= expected
            || started.elapsed() > Duration::from_secs(10)
        {
            return r.body;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn search_text_finds_commands_paths_prompts_and_replies(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let posts = [
        ("s1", bash("cargo test --workspace")),
        (
            "s1",
            hook(
                "PostToolUse",
                json!({"tool_name": "Edit", "tool_input": {"file_path": "/home/dev/acme/src/main.rs",
                      "old_string": "a", "new_string": "b"},
                      "tool_response": {"stdout": "hidden words"}}),
            ),
        ),
        (
            "s2",
            hook(
                "UserPromptSubmit",
                json!({"prompt": "Fix the flaky login test"}),
            ),
        ),
        (
            "s2",
            hook(
                "Stop",
                json!({"last_assistant_message": "Déjà vu: the login test passes."}),
            ),
        ),
        ("s3", bash("npm run build")),
    ];
    for (session, body) in &posts {
        let r = app
            .post(format!("/v1/sessions/{session}/events"), body.clone())
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // A path as typed is a phrase of its words.
    let r = search_until(&app, "q=src/main.rs", 1).await;
    assert_eq!(found(&r), [("s1".to_owned(), 2)]);
    assert_eq!(
        r["events"][0]["data"]["tool_name"], "Edit",
        "the whole event"
    );
    // Every word must match; the last one as a prefix, as it is being typed.
    let r = search_until(&app, "q=login%20te", 2).await;
    assert_eq!(
        found(&r),
        [("s2".to_owned(), 2), ("s2".to_owned(), 1)],
        "newest first"
    );
    assert_eq!(
        found(&search_until(&app, "q=D%C3%A9J%C3%A0", 1).await),
        [("s2".to_owned(), 2)]
    );
    // Outputs are not searched, and words out of order are not a phrase.
    for nothing in ["q=hidden", "q=main/src", "q=flaky%20nope"] {
        let r = app.get(format!("/v1/events?{nothing}")).await;
        assert_eq!(found(&r.body), [], "{nothing}");
    }
    // Filters without text see every event at once: tool, type, session, and combined.
    let r = app.get("/v1/events?tool=Bash").await;
    assert_eq!(found(&r.body), [("s3".to_owned(), 1), ("s1".to_owned(), 1)]);
    let r = app.get("/v1/events?event_type=Stop").await;
    assert_eq!(found(&r.body), [("s2".to_owned(), 2)]);
    let r = app.get("/v1/events?session_id=s1").await;
    assert_eq!(found(&r.body), [("s1".to_owned(), 2), ("s1".to_owned(), 1)]);
    let r = app.get("/v1/events?tool=Bash&q=cargo").await;
    assert_eq!(found(&r.body), [("s1".to_owned(), 1)]);
    let r = app.get("/v1/events?session_id=s9").await;
    assert_eq!(found(&r.body), [], "an unknown session has no events");
    // A project is a session's working directory, as its facts say.
    let r = app.get("/v1/events?project=/home/dev/acme").await;
    assert_eq!(
        found(&r.body),
        [
            ("s3".to_owned(), 1),
            ("s1".to_owned(), 2),
            ("s1".to_owned(), 1)
        ]
    );
    let r = app.get("/v1/events?project=/home/dev/acme&q=npm").await;
    assert_eq!(found(&r.body), [("s3".to_owned(), 1)]);
    let r = app.get("/v1/events?project=acme").await;
    assert_eq!(found(&r.body), [], "the whole path, not its last part");
    // Time range: all of them were received in the last minute, none in the future.
    let r = app.get("/v1/events?since=2000-01-01T00:00:00Z").await;
    assert_eq!(found(&r.body).len(), 5);
    let r = app.get("/v1/events?since=2999-01-01T00:00:00Z").await;
    assert_eq!(found(&r.body), []);
    let r = app.get("/v1/events?until=2000-01-01T00:00:00Z").await;
    assert_eq!(found(&r.body), []);
}

async fn pages_follow_newest_first_and_stay_within_the_byte_budget(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| c.limits.max_page_bytes = 64 * 1024).await
    else {
        return;
    };
    for i in 0..7 {
        let mut e = bash(&format!("step {i}"));
        e["data"]["pad"] = json!("x".repeat(20 * 1024));
        let r = app.post(format!("/v1/sessions/p{}/events", i % 2), e).await;
        assert_eq!(r.status, 201);
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/events?limit=3&after={a}"),
            None => "/v1/events?limit=3".to_owned(),
        };
        let r = app.get(path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let page = found(&r.body);
        assert!(page.len() <= 3);
        if r.body["truncated"] == true {
            assert!(
                page.len() < 3,
                "truncated only when the byte budget cut the page"
            );
        }
        seen.extend(page);
        pages += 1;
        match r.body["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert!(
        pages >= 3,
        "64 KiB holds at most two 20 KiB events: {pages} pages"
    );
    let steps: Vec<String> = seen.iter().map(|(s, q)| format!("{s}/{q}")).collect();
    assert_eq!(
        steps,
        ["p0/4", "p1/3", "p0/3", "p1/2", "p0/2", "p1/1", "p0/1"],
        "every event once, newest first"
    );
}

async fn scopes_never_see_each_others_events(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.api_keys = ApiKeys::parse("key-a:team-a,key-b:team-b").unwrap()
    })
    .await
    else {
        return;
    };
    let post = |key: &'static str, session: &'static str, command: &'static str| {
        app.request(
            Method::POST,
            format!("/v1/sessions/{session}/events"),
            Some(bash(command).to_string().into_bytes()),
            Some(key),
        )
    };
    assert_eq!(post("key-a", "same", "deploy alpha").await.status, 201);
    assert_eq!(post("key-b", "same", "deploy beta").await.status, 201);
    let get =
        |key: &'static str, path: &'static str| app.request(Method::GET, path, None, Some(key));
    // The index catches up; then each scope finds its own event only.
    let started = Instant::now();
    loop {
        let a = get("key-a", "/v1/events?q=deploy").await;
        let b = get("key-b", "/v1/events?q=deploy").await;
        let (a, b) = (a.body["events"].clone(), b.body["events"].clone());
        if a.as_array().unwrap().len() + b.as_array().unwrap().len() == 2
            || started.elapsed() > Duration::from_secs(10)
        {
            assert_eq!(a.as_array().unwrap().len(), 1, "{a}");
            assert_eq!(a[0]["data"]["tool_input"]["command"], "deploy alpha");
            assert_eq!(b[0]["data"]["tool_input"]["command"], "deploy beta");
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let a = get("key-a", "/v1/events?q=beta").await;
    assert_eq!(a.body["events"], json!([]));
    let a = get("key-a", "/v1/activity").await;
    assert_eq!(a.body["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(
        a.body["total"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_i64().unwrap())
            .sum::<i64>(),
        1
    );
    let none = app.request(Method::GET, "/v1/events", None, None).await;
    assert_eq!(none.status, 401);
}

async fn activity_counts_events_per_minute_per_session(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.get("/v1/activity").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["minutes"], 15);
    assert_eq!(r.body["total"], json!(vec![0; 15]));
    assert_eq!(r.body["sessions"], json!([]));
    let batch: Vec<Value> = (0..3).map(|i| bash(&format!("make {i}"))).collect();
    app.post("/v1/sessions/busy/events", json!({"events": batch}))
        .await;
    app.post("/v1/sessions/calm/events", bash("ls")).await;
    let r = app.get("/v1/activity?minutes=5").await;
    assert_eq!(r.status, 200);
    let body = &r.body;
    assert_eq!(body["minutes"], 5);
    let from = body["from"].as_str().unwrap();
    assert!(from.ends_with(":00.000Z"), "whole minutes: {from}");
    // The events are in the current minute, the last one, or (had the minute turned between
    // posting and asking) the one before.
    let total: Vec<i64> = serde_json::from_value(body["total"].clone()).unwrap();
    assert_eq!(total.len(), 5);
    assert_eq!(total.iter().sum::<i64>(), 4);
    assert_eq!(total[..3], [0, 0, 0]);
    let sessions: Vec<(String, i64)> = body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let counts: Vec<i64> = serde_json::from_value(s["per_minute"].clone()).unwrap();
            assert_eq!(counts.len(), 5);
            (
                s["session_id"].as_str().unwrap().to_owned(),
                counts.iter().sum(),
            )
        })
        .collect();
    assert_eq!(
        sessions,
        [("busy".to_owned(), 3), ("calm".to_owned(), 1)],
        "busiest first"
    );
    assert_eq!(body["others"], json!([0, 0, 0, 0, 0]));
}

async fn bad_parameters_are_400_problems(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let long = "x".repeat(257);
    let many = "a%20".repeat(17);
    for bad in [
        format!("/v1/events?q={long}"),
        format!("/v1/events?q={many}"),
        "/v1/events?limit=0".into(),
        "/v1/events?limit=201".into(),
        "/v1/events?limit=x".into(),
        "/v1/events?since=yesterday".into(),
        "/v1/events?until=2026-12-05".into(),
        "/v1/events?after=1.2".into(),
        "/v1/events?after=a.b.c".into(),
        "/v1/events?session_id=..".into(),
        "/v1/events?event_type=has%20space".into(),
        "/v1/events?tool=".into(),
        format!("/v1/events?tool={}", "t".repeat(65)),
        "/v1/events?project=".into(),
        format!("/v1/events?project={}", "p".repeat(513)),
        "/v1/activity?minutes=0".into(),
        "/v1/activity?minutes=61".into(),
        "/v1/activity?minutes=-1".into(),
    ] {
        let r = app.get(bad.clone()).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}: {}",
            r.body
        );
        assert_eq!(r.content_type, "application/problem+json");
    }
    // Text with no words searches for nothing in particular: every event.
    let r = app.get("/v1/events?q=%22*%20-").await;
    assert_eq!(r.status, 200);
}

fn row(session_key: i64, seq: i64, words: &str) -> (EventRow, SearchRow) {
    let event = EventRow {
        session_key,
        seq,
        event_id: None,
        dedup_key: format!("e:{seq}"),
        event_type: "UserPromptSubmit".into(),
        occurred_at_us: 1_765_000_000_000_000,
        received_at: 1_765_000_000_000 + seq,
        interaction_id: None,
        sequence: None,
        out_of_order: false,
        data: json!({"prompt": words}).to_string(),
    };
    let search = SearchRow {
        scope: "default".into(),
        session_key,
        seq,
        received_at: event.received_at,
        event_type: event.event_type.clone(),
        tool: None,
        words: words.into(),
    };
    (event, search)
}

/// Commits `n` events of session `s1` straight into the store, as a run that stopped before
/// its committer indexed them would have left them.
fn committed_but_not_indexed(target: &store::DatabaseTarget, n: i64) -> store::DbPool {
    let settings = PoolSettings {
        max_size: 2,
        connection_timeout: Duration::from_secs(5),
    };
    let pool = store::connect(target, &settings).expect("connect and migrate");
    let mut session = SessionRow::new_active("default", "s1", 1, 1_765_000_000_000);
    session.event_count = n;
    session.last_seq = n;
    let mut write = SessionWrite::new(session, true);
    for seq in 1..=n {
        let (event, search) = row(1, seq, &format!("needle number{seq}"));
        write.events.push(event);
        write.search.push(search);
    }
    let mut conn = pool.get().unwrap();
    commit_batch(&mut conn, &[write], 1).expect("committed");
    pool
}

async fn the_index_takes_committed_rows_in_passes(backend: Backend) {
    let Some(target) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(target.clone());
    let pool = committed_but_not_indexed(&target, 5);
    let mut conn = pool.get().unwrap();
    let filter = |q: &str| SearchFilter {
        text: orchestrator::domain::search::SearchQuery::parse(q).unwrap(),
        limit: 50,
        ..SearchFilter::default()
    };
    let find = |conn: &mut store::DbConnection, q: &str| {
        search::find(conn, "default", &filter(q), 1 << 20)
            .unwrap()
            .found
            .iter()
            .map(|f| f.event.seq)
            .collect::<Vec<_>>()
    };
    let none = SearchFilter {
        limit: 50,
        ..SearchFilter::default()
    };
    let listed = search::find(&mut conn, "default", &none, 1 << 20).unwrap();
    assert_eq!(listed.found.len(), 5, "the other filters see them at once");
    assert_eq!(
        find(&mut conn, "needle"),
        Vec::<i64>::new(),
        "not indexed yet"
    );
    let pass = search::index_words(&mut conn, 2).unwrap();
    assert_eq!((pass.taken, pass.behind), (2, 3));
    assert_eq!(find(&mut conn, "needle"), [2, 1]);
    let pass = search::index_words(&mut conn, 10).unwrap();
    assert_eq!((pass.taken, pass.behind), (3, 0));
    assert_eq!(find(&mut conn, "needle"), [5, 4, 3, 2, 1]);
    assert_eq!(find(&mut conn, "number3"), [3]);
    let pass = search::index_words(&mut conn, 10).unwrap();
    assert_eq!((pass.taken, pass.behind), (0, 0), "nothing twice");
    assert_eq!(find(&mut conn, "needle").len(), 5);
}

/// With several nodes on one PostgreSQL, one indexes at a time: a pass that finds the cursor
/// locked by another node's pass takes nothing (rather than indexing the same rows twice or
/// waiting), and the rows are indexed once that pass is done.
#[actix_rt::test]
async fn one_node_indexes_at_a_time() {
    use diesel::connection::Connection;
    use diesel::RunQueryDsl;
    let Some(target) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(target.clone());
    let pool = committed_but_not_indexed(&target, 3);
    let (mut holder, mut other) = (pool.get().unwrap(), pool.get().unwrap());
    let store::DbConnection::Pg(holder) = &mut **holder else {
        unreachable!("a PostgreSQL pool");
    };
    holder
        .transaction(|tx| {
            diesel::sql_query("SELECT upto FROM event_words_indexed FOR UPDATE").execute(tx)?;
            let pass = search::index_words(&mut other, 10).unwrap();
            assert_eq!(
                (pass.taken, pass.behind),
                (0, 0),
                "another pass holds the cursor"
            );
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
    let pass = search::index_words(&mut other, 10).unwrap();
    assert_eq!((pass.taken, pass.behind), (3, 0));
}

async fn a_restarted_server_indexes_what_the_last_run_left(backend: Backend) {
    let Some(target) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(target.clone());
    drop(committed_but_not_indexed(&target, 3));
    let server = ServerProcess::spawn(&target);
    // No write comes: the server catches up on its own.
    let body = search_until(&server.http, "q=needle", 3).await;
    assert_eq!(found(&body).len(), 3, "{body}");
    server.kill();
}

both_backends!(
    search_text_finds_commands_paths_prompts_and_replies,
    pages_follow_newest_first_and_stay_within_the_byte_budget,
    scopes_never_see_each_others_events,
    activity_counts_events_per_minute_per_session,
    bad_parameters_are_400_problems,
    the_index_takes_committed_rows_in_passes,
    a_restarted_server_indexes_what_the_last_run_left,
);
