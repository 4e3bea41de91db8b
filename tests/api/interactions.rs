//! Interactions, approvals and the command queue: completion exactly once under any
//! interleaving, the result slot written once, deadlines (also across a SIGKILL), waiters,
//! and serial command hand-out.

use std::time::Duration;

use actix_web::http::Method;
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::common::{
    self, both_backends, fresh_database, Backend, Client, RemoveOnDrop, ServerProcess, TestApp,
};

fn ts(second: u32) -> String {
    format!("2026-11-22T10:{:02}:{:02}Z", second / 60, second % 60)
}

async fn session(app: &Client, sid: &str) {
    let r = app.put(format!("/v1/sessions/{sid}"), json!({})).await;
    assert!(r.status == 201 || r.status == 200, "{}", r.text);
}

async fn interaction(app: &Client, sid: &str, id: &str, extra: Value) -> crate::common::Resp {
    let mut body = json!({"interaction_id": id, "kind": "approval", "payload": {"q": id}});
    if let Value::Object(extra) = extra {
        body.as_object_mut().unwrap().extend(extra);
    }
    app.post(format!("/v1/sessions/{sid}/interactions"), body)
        .await
}

fn end_event(id: &str, second: u32) -> Value {
    json!({"event_type": "session_end", "interaction_id": id, "timestamp": ts(second)})
}

/// The session's interaction counters equal the rows, and each completed interaction has
/// exactly one `interaction.completed` notification.
pub(crate) async fn assert_consistent(app: &Client, sid: &str) {
    let s = app.get(format!("/v1/sessions/{sid}")).await.body;
    let list = app
        .get(format!("/v1/sessions/{sid}/interactions?limit=1000"))
        .await
        .body;
    let rows = list["interactions"].as_array().unwrap();
    let count = |statuses: &[&str]| {
        rows.iter()
            .filter(|i| statuses.contains(&i["status"].as_str().unwrap()))
            .count() as i64
    };
    let counters = &s["interactions"];
    assert_eq!(
        counters["pending"].as_i64().unwrap(),
        count(&["queued", "pending"]),
        "{s}"
    );
    assert_eq!(
        counters["completed"].as_i64().unwrap(),
        count(&["completed"])
    );
    assert_eq!(
        counters["timed_out"].as_i64().unwrap(),
        count(&["timed_out"])
    );
    assert_eq!(
        counters["cancelled"].as_i64().unwrap(),
        count(&["cancelled"])
    );
    let notes = app.all_notifications(Some(sid)).await;
    for i in rows {
        let id = i["interaction_id"].as_str().unwrap();
        let completions = notes
            .iter()
            .filter(|n| n["type"] == "interaction.completed" && n["interaction_id"] == id)
            .count();
        let expected = usize::from(!matches!(i["status"].as_str(), Some("queued" | "pending")));
        assert_eq!(completions, expected, "interaction {id}: {i}");
        let created = notes
            .iter()
            .filter(|n| n["type"] == "interaction.created" && n["interaction_id"] == id)
            .count();
        assert_eq!(created, 1, "interaction {id}");
    }
}

async fn result_and_end_event_in_either_order(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    session(&app, "s").await;
    interaction(&app, "s", "first-result", json!({})).await;
    interaction(&app, "s", "first-event", json!({})).await;

    // Result, then the session_end naming it.
    let r = app
        .post(
            "/v1/sessions/s/interactions/first-result/result",
            json!({"status": "ok", "output": 42}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["completed_now"], true);
    let r = app
        .post("/v1/sessions/s/events", end_event("first-result", 1))
        .await;
    assert_eq!(r.status, 201);
    let i = app
        .get("/v1/sessions/s/interactions/first-result")
        .await
        .body;
    assert_eq!(
        (i["status"].as_str(), i["outcome"].as_str()),
        (Some("completed"), Some("ok"))
    );
    assert_eq!(
        (i["completed_by"].as_str(), &i["result"]),
        (Some("result"), &json!(42))
    );
    assert_eq!(i["event_count"], 1);

    // The session_end, then the result: stored, not completed again.
    app.post("/v1/sessions/s/events", end_event("first-event", 2))
        .await;
    let i = app
        .get("/v1/sessions/s/interactions/first-event")
        .await
        .body;
    assert_eq!(
        (i["outcome"].as_str(), i["completed_by"].as_str()),
        (Some("ended"), Some("event"))
    );
    let result = json!({"status": "error", "output": {"msg": "boom"}});
    let r = app
        .post(
            "/v1/sessions/s/interactions/first-event/result",
            result.clone(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["completed_now"], false);
    let i = &r.body["interaction"];
    assert_eq!(
        (i["outcome"].as_str(), i["completed_by"].as_str()),
        (Some("error"), Some("event"))
    );
    assert_eq!(i["result"], json!({"msg": "boom"}));
    // The same result again: idempotent; a different one: 409 with the interaction.
    let r = app
        .post("/v1/sessions/s/interactions/first-event/result", result)
        .await;
    assert_eq!((r.status, &r.body["completed_now"]), (200, &json!(false)));
    let r = app
        .post(
            "/v1/sessions/s/interactions/first-event/result",
            json!({"status": "ok"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("already_completed"))
    );
    assert_eq!(r.body["interaction"]["interaction_id"], "first-event");
    assert_eq!(r.body["interaction"]["session_id"], "s");
    assert_eq!(r.body["interaction"]["result"], json!({"msg": "boom"}));

    // Events naming the interaction are always stored.
    let r = app
        .post("/v1/sessions/s/events", end_event("first-event", 3))
        .await;
    assert_eq!(r.status, 201);
    let r = app
        .post("/v1/sessions/s/events", end_event("never-created", 4))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(app.get("/v1/sessions/s").await.body["status"], "active");
    assert_eq!(
        app.get("/v1/sessions/s/interactions/first-event")
            .await
            .body["event_count"],
        2
    );
    assert_consistent(&app, "s").await;
}

/// 24 interactions, each hit at once by its result and by four session_end events (two of
/// them identical copies): one completion each, the result always kept, every event stored.
async fn results_race_end_events(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    session(&app, "race").await;
    for n in 0..24 {
        interaction(&app, "race", &format!("i{n}"), json!({})).await;
    }
    let mut requests = Vec::new();
    for n in 0..24 {
        let id = format!("i{n}");
        let result = json!({"status": "ok", "output": {"n": n}});
        requests.push(app.post(
            format!("/v1/sessions/race/interactions/{id}/result"),
            result,
        ));
        for second in [n, n, n + 100, n + 200] {
            requests.push(app.post(
                "/v1/sessions/race/events".to_owned(),
                end_event(&id, second),
            ));
        }
    }
    let responses = join_all(requests).await;
    for r in &responses {
        assert!(r.status == 200 || r.status == 201, "{}", r.text);
    }
    for n in 0..24 {
        let i = app
            .get(format!("/v1/sessions/race/interactions/i{n}"))
            .await
            .body;
        assert_eq!(i["status"], "completed");
        assert_eq!(i["result"], json!({"n": n}), "the result is never lost");
        assert_eq!(i["outcome"], "ok");
        assert_eq!(
            i["event_count"], 3,
            "three distinct events, the copy deduplicated"
        );
    }
    assert_eq!(app.get("/v1/sessions/race").await.body["event_count"], 72);
    assert_consistent(&app, "race").await;
}

/// 24 browser tabs decide one approval at once: exactly one wins; the others get 409, or an
/// idempotent 200 when they sent exactly the winning decision.
async fn concurrent_decisions_have_one_winner(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    session(&app, "tabs").await;
    interaction(&app, "tabs", "a", json!({})).await;
    let decision = |tab: usize| -> (&'static str, Value) {
        match tab % 3 {
            0 => ("resolve", json!({"response": {"tab": tab}})),
            1 => ("reject", json!({"reason": format!("tab {tab}")})),
            // Identical decisions from several tabs.
            _ => ("resolve", json!({"response": "same"})),
        }
    };
    let calls = (0..24).map(|tab| {
        let (verb, body) = decision(tab);
        app.post(format!("/v1/sessions/tabs/interactions/a/{verb}"), body)
    });
    let responses = join_all(calls).await;
    let winners: Vec<usize> = (0..24)
        .filter(|&t| responses[t].status == 200 && responses[t].body["completed_now"] == true)
        .collect();
    assert_eq!(winners.len(), 1, "{responses:?}");
    let stored = app.get("/v1/sessions/tabs/interactions/a").await.body;
    for (tab, r) in responses.iter().enumerate() {
        match r.status {
            409 => assert_eq!(r.body["code"], "already_completed"),
            200 if r.body["completed_now"] == false => {
                assert_eq!(tab % 3, 2, "only identical decisions are idempotent");
                assert_eq!(stored["result"], "same");
            }
            200 => {}
            other => panic!("tab {tab}: {other} {}", r.text),
        }
    }
    assert_consistent(&app, "tabs").await;
}

async fn deadlines_time_out_once(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    session(&app, "t").await;
    let r = interaction(&app, "t", "slow", json!({"timeout_ms": 150})).await;
    assert_eq!(r.status, 201);
    assert!(r.body["deadline"].as_str().is_some());
    // Waiting returns when the deadline fires, long before its own timeout.
    let r = app
        .get("/v1/sessions/t/interactions/slow/wait?timeout_ms=60000")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "timed_out");
    assert_eq!(r.body["completed_by"], "timeout");
    assert_eq!(r.body["outcome"], Value::Null);
    // Any decision or cancel after the timeout is refused.
    let r = app
        .post(
            "/v1/sessions/t/interactions/slow/resolve",
            json!({"response": 1}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("already_completed"))
    );
    assert_eq!(r.body["interaction"]["status"], "timed_out");
    let r = app
        .post("/v1/sessions/t/interactions/slow/cancel", json!({}))
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        app.get("/v1/sessions/t").await.body["interactions"]["timed_out"],
        1
    );
    assert_consistent(&app, "t").await;
}

async fn wait_returns_on_completion_cancel_and_timeout(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    session(&app, "w").await;
    for id in ["by-result", "by-cancel", "by-event", "open"] {
        interaction(&app, "w", id, json!({"timeout_ms": 60000})).await;
    }
    let waits = join_all(["by-result", "by-cancel", "by-event"].map(|id| {
        app.get(format!(
            "/v1/sessions/w/interactions/{id}/wait?timeout_ms=60000"
        ))
    }));
    let act = async {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        app.post(
            "/v1/sessions/w/interactions/by-result/result",
            json!({"status": "ok"}),
        )
        .await;
        app.post("/v1/sessions/w/interactions/by-cancel/cancel", json!({}))
            .await;
        app.post("/v1/sessions/w/events", end_event("by-event", 1))
            .await;
    };
    let (waits, ()) = futures_util::future::join(waits, act).await;
    let statuses: Vec<&str> = waits
        .iter()
        .map(|r| r.body["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed", "cancelled", "completed"]);
    assert_eq!(waits[2].body["completed_by"], "event");
    // Still open at the wait's own timeout: its current state.
    let r = app
        .get("/v1/sessions/w/interactions/open/wait?timeout_ms=100")
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("pending"))
    );
    // Already done: at once.
    let r = app.get("/v1/sessions/w/interactions/by-cancel/wait").await;
    assert_eq!(r.body["status"], "cancelled");
    // Cancel twice is idempotent; a result after cancel is 409.
    let r = app
        .post("/v1/sessions/w/interactions/by-cancel/cancel", json!({}))
        .await;
    assert_eq!((r.status, &r.body["completed_now"]), (200, &json!(false)));
    let r = app
        .post(
            "/v1/sessions/w/interactions/by-cancel/result",
            json!({"status": "ok"}),
        )
        .await;
    assert_eq!(r.status, 409);
    // Cancel after another completion is 409.
    let r = app
        .post("/v1/sessions/w/interactions/by-result/cancel", json!({}))
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("already_completed"))
    );
    assert_consistent(&app, "w").await;
}

async fn create_is_idempotent_and_counts_events(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    session(&app, "c").await;
    // Events naming an interaction before it exists still count once it does.
    let early = json!({"event_type": "tool_use", "interaction_id": "i1", "timestamp": ts(1)});
    app.post("/v1/sessions/c/events", early).await;
    let r = interaction(&app, "c", "i1", json!({"timeout_ms": 60000})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["kind"], "approval");
    assert_eq!(r.body["payload"], json!({"q": "i1"}));
    assert_eq!(r.body["event_count"], 1);
    let again = interaction(&app, "c", "i1", json!({"kind": "other"})).await;
    assert_eq!(again.status, 200);
    assert_eq!(
        again.body["kind"], "approval",
        "the existing one, unchanged"
    );
    assert_eq!(again.body["created_at"], r.body["created_at"]);
    let late = json!({"event_type": "tool_result", "interaction_id": "i1", "timestamp": ts(2)});
    app.post("/v1/sessions/c/events", late).await;
    assert_eq!(
        app.get("/v1/sessions/c/interactions/i1").await.body["event_count"],
        2
    );
    // Without an id, the server makes one.
    let r = app
        .post("/v1/sessions/c/interactions", json!({"kind": "question"}))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["interaction_id"].as_str().unwrap().len(), 36);
    // Listing by status.
    let r = app.get("/v1/sessions/c/interactions?status=pending").await;
    assert_eq!(r.body["interactions"].as_array().unwrap().len(), 2);
    let r = app
        .get("/v1/sessions/c/interactions?status=completed")
        .await;
    assert_eq!(r.body["interactions"], json!([]));
    assert_consistent(&app, "c").await;
}

async fn interaction_input_errors(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = interaction(&app, "nosuch", "i", json!({})).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("session_not_found"))
    );
    let r = app
        .post("/v1/sessions/nosuch/commands/next", json!({}))
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("session_not_found"))
    );
    session(&app, "e").await;
    interaction(&app, "e", "i", json!({})).await;
    for verb in ["result", "resolve", "reject", "cancel"] {
        let r = app
            .post(
                format!("/v1/sessions/e/interactions/nope/{verb}"),
                json!({"status": "ok"}),
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (404, Some("interaction_not_found")),
            "{verb}"
        );
    }
    for path in [
        "/v1/sessions/e/interactions/nope",
        "/v1/sessions/e/interactions/nope/wait",
    ] {
        let r = app.get(path).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (404, Some("interaction_not_found"))
        );
    }
    let r = app.get("/v1/sessions/nosuch/interactions/i").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("session_not_found"))
    );
    let invalid = [
        (json!({"interaction_id": "x1"}), "kind"),
        (json!({"interaction_id": "x2", "kind": 3}), "kind"),
        (json!({"interaction_id": "x3", "kind": "bad kind"}), "kind"),
        (
            json!({"interaction_id": "x4", "kind": "k", "timeout_ms": -5}),
            "timeout_ms",
        ),
        (
            json!({"interaction_id": "x5", "kind": "k", "timeout_ms": 0}),
            "timeout_ms",
        ),
        (
            json!({"interaction_id": "x6", "kind": "k", "timeout_ms": 86_400_001}),
            "timeout_ms",
        ),
        (
            json!({"interaction_id": "x7", "kind": "k", "timeout_ms": "10"}),
            "timeout_ms",
        ),
        (
            json!({"interaction_id": "bad id", "kind": "k"}),
            "interaction_id",
        ),
        (json!({"interaction_id": 7, "kind": "k"}), "interaction_id"),
    ];
    for (body, field) in invalid {
        let r = app.post("/v1/sessions/e/interactions", body.clone()).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (422, Some(field)),
            "{body}"
        );
    }
    let r = app.post("/v1/sessions/e/interactions", json!([1])).await;
    assert_eq!(r.status, 400);
    for (verb, body, field) in [
        ("result", json!({}), "status"),
        ("result", json!({"status": "maybe"}), "status"),
        ("reject", json!({"reason": 5}), "reason"),
    ] {
        let r = app
            .post(format!("/v1/sessions/e/interactions/i/{verb}"), body)
            .await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (422, Some(field)),
            "{verb}"
        );
    }
    let r = app
        .post("/v1/sessions/e/commands", json!({"interaction_id": "c"}))
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("payload")));
    let r = app
        .post(
            "/v1/sessions/e/commands",
            json!({"payload": 1, "timeout_ms": -1}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (422, Some("timeout_ms"))
    );
    for bad in [
        "/v1/sessions/e/interactions/i/wait?timeout_ms=60001",
        "/v1/sessions/e/interactions/i/wait?timeout_ms=-1",
        "/v1/sessions/e/interactions?status=done",
    ] {
        let r = app.get(bad).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }
    let r = app
        .post("/v1/sessions/e/commands/next?wait_ms=60001", json!({}))
        .await;
    assert_eq!(r.status, 400);
    // Nothing of the refused requests was stored.
    assert_eq!(
        app.get("/v1/sessions/e/interactions").await.body["interactions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn commands_are_handed_out_one_at_a_time(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    session(&app, "q").await;
    assert_eq!(
        app.post("/v1/sessions/q/commands/next", json!({}))
            .await
            .status,
        204
    );
    for n in 1..=5 {
        let r = app
            .post("/v1/sessions/q/commands", json!({"interaction_id": format!("c{n}"), "payload": {"n": n}, "timeout_ms": 60000}))
            .await;
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (201, Some("queued")),
            "{}",
            r.text
        );
        assert_eq!(
            (r.body["kind"].as_str(), &r.body["deadline"]),
            (Some("command"), &Value::Null)
        );
    }
    // A decision on a queued command is refused with a clear reason.
    let r = app
        .post(
            "/v1/sessions/q/interactions/c2/result",
            json!({"status": "ok"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("not_started"))
    );
    assert!(r.body["detail"].as_str().unwrap().contains("queued"));

    // Ten concurrent callers: one gets c1, the rest 204 while it is pending.
    let nexts =
        join_all((0..10).map(|_| app.post("/v1/sessions/q/commands/next", json!({})))).await;
    let handed: Vec<&Value> = nexts
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| &r.body)
        .collect();
    assert_eq!(handed.len(), 1, "{nexts:?}");
    assert_eq!(handed[0]["interaction_id"], "c1");
    assert_eq!(handed[0]["status"], "pending");
    assert!(handed[0]["deadline"].as_str().is_some());
    assert!(nexts.iter().all(|r| r.status == 200 || r.status == 204));
    assert_eq!(
        app.post("/v1/sessions/q/commands/next?wait_ms=50", json!({}))
            .await
            .status,
        204
    );

    app.post(
        "/v1/sessions/q/interactions/c1/result",
        json!({"status": "ok"}),
    )
    .await;
    let r = app.post("/v1/sessions/q/commands/next", json!({})).await;
    assert_eq!(r.body["interaction_id"], "c2");
    // Cancelling the pending command frees the queue too.
    app.post("/v1/sessions/q/interactions/c2/cancel", json!({}))
        .await;

    // Four long-polling callers and three commands left: each command goes to exactly one
    // caller, in order, as the previous one completes; the fourth caller gets 204.
    let waiters = join_all((0..4).map(|_| {
        app.request(
            Method::POST,
            "/v1/sessions/q/commands/next?wait_ms=3000",
            None,
            None,
        )
    }));
    let driver = async {
        let mut done = 0;
        while done < 3 {
            actix_rt::time::sleep(Duration::from_millis(30)).await;
            let pending = app.get("/v1/sessions/q/interactions?status=pending").await;
            for c in pending.body["interactions"].as_array().unwrap() {
                let id = c["interaction_id"].as_str().unwrap();
                let r = app
                    .post(
                        format!("/v1/sessions/q/interactions/{id}/result"),
                        json!({"status": "ok"}),
                    )
                    .await;
                assert_eq!(r.status, 200);
                done += 1;
            }
        }
    };
    let (waiters, ()) = futures_util::future::join(waiters, driver).await;
    let mut got: Vec<&str> = waiters
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.body["interaction_id"].as_str().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, ["c3", "c4", "c5"]);
    assert_eq!(waiters.iter().filter(|r| r.status == 204).count(), 1);
    assert_consistent(&app, "q").await;
}

/// SIGKILL with pending interactions whose deadlines pass while the server is down: after a
/// restart they time out once; another restart emits nothing more.
async fn deadlines_fire_after_a_crash(backend: Backend) {
    let Some(database) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let server = ServerProcess::spawn(&database);
    session(&server.http, "k").await;
    for n in 0..5 {
        let r = interaction(
            &server.http,
            "k",
            &format!("d{n}"),
            json!({"timeout_ms": 300}),
        )
        .await;
        assert_eq!(r.status, 201);
    }
    interaction(&server.http, "k", "long", json!({"timeout_ms": 600000})).await;
    server.kill();
    actix_rt::time::sleep(Duration::from_millis(400)).await;

    let server = ServerProcess::spawn(&database);
    let mut timed_out = 0;
    for _ in 0..100 {
        let r = server
            .http
            .get("/v1/sessions/k/interactions?status=timed_out")
            .await;
        timed_out = r.body["interactions"].as_array().unwrap().len();
        if timed_out == 5 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        timed_out, 5,
        "deadlines that passed while down fire after the restart"
    );
    assert_eq!(
        server
            .http
            .get("/v1/sessions/k/interactions/long")
            .await
            .body["status"],
        "pending"
    );
    assert_consistent(&server.http, "k").await;
    let before = server.http.all_notifications(Some("k")).await.len();
    server.kill();

    let server = ServerProcess::spawn(&database);
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.http.all_notifications(Some("k")).await.len(), before);
    assert_consistent(&server.http, "k").await;
    server.kill();
    if let orchestrator::store::DatabaseTarget::Sqlite(path) = database {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}

/// A create starts its interaction's event count with the stored events that named it before
/// it existed, however the actor learns of them: it counts them itself (it saw them arrive, or
/// loaded a session none of whose events named an interaction), asks the database (it loaded
/// a session whose events name interactions), or, past 1,024 ids nobody created, gives up
/// counting and asks the database again.
async fn early_events_count_however_the_actor_learned_of_them(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.idle_timeout = Duration::from_secs(3600)
    })
    .await
    else {
        return;
    };
    let naming = |id: &str, second: u32| json!({"event_type": "tool_use", "interaction_id": id, "timestamp": ts(second)});
    let post = |sid: &str, body: Value| {
        let app = &app;
        let url = format!("/v1/sessions/{sid}/events");
        async move {
            let r = app.post(url, body).await;
            assert_eq!(r.status, 201, "{}", r.text);
        }
    };
    let restart = |sid: &'static str| {
        let app = &app;
        async move {
            let latest = app.started_session_actors().await;
            app.passivate(sid, latest).await;
        }
    };
    let event_count = |sid: &str, id: &str| {
        let app = &app;
        let (sid, id) = (sid.to_owned(), id.to_owned());
        async move {
            let r = interaction(app, &sid, &id, json!({})).await;
            assert_eq!(r.status, 201, "{}", r.text);
            r.body["event_count"].as_i64().unwrap()
        }
    };

    // The database counts: the actor that saw the first event is gone, and its successor
    // loaded a session whose events name an interaction.
    post("db", naming("a1", 1)).await;
    restart("db").await;
    post("db", naming("a1", 2)).await;
    assert_eq!(event_count("db", "a1").await, 2);

    // The actor counts: none of the stored events it loaded named an interaction.
    post("mem", crate::common::event("start", 1)).await;
    restart("mem").await;
    post("mem", naming("b1", 2)).await;
    post("mem", naming("b2", 3)).await;
    post("mem", naming("b1", 4)).await;
    assert_eq!(event_count("mem", "b1").await, 2);
    assert_eq!(event_count("mem", "b2").await, 1);
    assert_eq!(event_count("mem", "b3").await, 0);

    // 1,200 ids nobody created: the actor stops counting them and asks the database.
    for first in [0, 600] {
        let events: Vec<Value> = (first..first + 600)
            .map(|n| naming(&format!("c{n}"), 1))
            .collect();
        post("many", json!({ "events": events })).await;
    }
    post("many", naming("c5", 2)).await;
    assert_eq!(event_count("many", "c5").await, 2);
    assert_eq!(event_count("many", "c1199").await, 1);
    post("many", naming("late", 3)).await;
    assert_eq!(event_count("many", "late").await, 1);
    assert_eq!(event_count("many", "never-named").await, 0);
    for sid in ["db", "mem", "many"] {
        assert_consistent(&app, sid).await;
    }
}

/// Who decided is kept with the decision, across a restart, and shown by every read; the
/// same decision from a second tab keeps the first decider; a bad name is refused whole.
async fn who_decided_is_kept_with_the_decision(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    session(&app, "who").await;
    for id in ["a1", "r1", "n1", "bad"] {
        assert_eq!(interaction(&app, "who", id, json!({})).await.status, 201);
    }
    let base = "/v1/sessions/who/interactions";
    let r = app
        .post(
            format!("{base}/a1/resolve"),
            json!({"response": {"ok": true}, "decided_by": " Ana "}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["interaction"]["decided_by"], "Ana");
    // A second tab with the same decision: accepted, the first decider kept.
    let r = app
        .post(
            format!("{base}/a1/resolve"),
            json!({"response": {"ok": true}, "decided_by": "Bo"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["completed_now"].as_bool()),
        (200, Some(false))
    );
    assert_eq!(r.body["interaction"]["decided_by"], "Ana");
    let r = app
        .post(
            format!("{base}/r1/reject"),
            json!({"reason": "not now", "decided_by": "Bo"}),
        )
        .await;
    assert_eq!(r.body["interaction"]["decided_by"], "Bo");
    assert_eq!(r.body["interaction"]["result"], "not now");
    let r = app.post(format!("{base}/n1/resolve"), json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["interaction"]["decided_by"], Value::Null);
    for (body, detail) in [
        (
            json!({"decided_by": ""}),
            "decided_by: must be 1 to 128 characters",
        ),
        (
            json!({"decided_by": "x".repeat(129)}),
            "decided_by: must be 1 to 128 characters",
        ),
        (
            json!({"decided_by": "a\nb"}),
            "decided_by: must not contain control characters",
        ),
        (json!({"decided_by": 7}), "decided_by: must be a string"),
    ] {
        for action in ["resolve", "reject"] {
            let r = app.post(format!("{base}/bad/{action}"), body.clone()).await;
            assert_eq!(
                (r.status, r.body["code"].as_str()),
                (422, Some("validation_failed")),
                "{body}"
            );
            assert_eq!(r.body["detail"], detail);
        }
    }
    let r = app.get(format!("{base}/bad")).await;
    assert_eq!(
        r.body["status"], "pending",
        "a refused decision changes nothing"
    );
    // Stored, not only held: a restarted server reads it back.
    let database = app.stop().await;
    let app = TestApp::start_on(database, |_| {}).await;
    assert_eq!(
        app.get(format!("{base}/a1")).await.body["decided_by"],
        "Ana"
    );
    let listed = app.get(base).await.body;
    let by: Vec<&Value> = listed["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["decided_by"])
        .collect();
    assert_eq!(
        by,
        [&json!("Ana"), &json!("Bo"), &Value::Null, &Value::Null]
    );
}

both_backends!(
    who_decided_is_kept_with_the_decision,
    result_and_end_event_in_either_order,
    early_events_count_however_the_actor_learned_of_them,
    results_race_end_events,
    concurrent_decisions_have_one_winner,
    deadlines_time_out_once,
    wait_returns_on_completion_cancel_and_timeout,
    create_is_idempotent_and_counts_events,
    interaction_input_errors,
    commands_are_handed_out_one_at_a_time,
    deadlines_fire_after_a_crash,
    a_dropped_wait_releases_its_waiter,
    a_draining_actor_stops_once_its_last_wait_ends,
    a_successor_loads_only_after_its_predecessor_stopped,
    a_panicking_actor_still_releases_its_successor,
    a_passivation_request_that_missed_a_message_is_refused,
    a_long_session_evicts_finished_interactions_and_keeps_deadlines,
);

/// A session with more interactions than its actor keeps in memory: finished ones are
/// evicted and looked up again when asked for (reads, repeated and conflicting decisions),
/// and an old open one keeps its deadline through hundreds of later commits.
async fn a_long_session_evicts_finished_interactions_and_keeps_deadlines(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    session(&app, "long").await;
    let r = interaction(&app, "long", "early-open", json!({"timeout_ms": 2500})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    interaction(&app, "long", "early-done", json!({})).await;
    let r = app
        .post(
            "/v1/sessions/long/interactions/early-done/resolve",
            json!({"response": "first"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // 400 more, created and resolved 50 at a time: well past the in-memory cache.
    for chunk in 0..8 {
        let ids: Vec<String> = (chunk * 50..chunk * 50 + 50)
            .map(|n| format!("i{n}"))
            .collect();
        let created = join_all(
            ids.iter()
                .map(|id| interaction(&app, "long", id, json!({}))),
        )
        .await;
        assert!(created.iter().all(|r| r.status == 201), "{created:?}");
        let resolved = join_all(ids.iter().map(|id| {
            app.post(
                format!("/v1/sessions/long/interactions/{id}/resolve"),
                json!({"response": id}),
            )
        }))
        .await;
        assert!(resolved.iter().all(|r| r.status == 200), "{resolved:?}");
    }
    let evicted = app.get("/v1/sessions/long/interactions/early-done").await;
    assert_eq!(
        (
            evicted.status,
            evicted.body["status"].as_str(),
            &evicted.body["result"]
        ),
        (200, Some("completed"), &json!("first")),
        "{}",
        evicted.text
    );
    let again = app
        .post(
            "/v1/sessions/long/interactions/early-done/resolve",
            json!({"response": "first"}),
        )
        .await;
    assert_eq!(
        (again.status, again.body["completed_now"].as_bool()),
        (200, Some(false)),
        "{}",
        again.text
    );
    let other = app
        .post(
            "/v1/sessions/long/interactions/early-done/reject",
            json!({"reason": "too late"}),
        )
        .await;
    assert_eq!(
        (other.status, other.body["code"].as_str()),
        (409, Some("already_completed"))
    );
    let timed_out = app
        .get("/v1/sessions/long/interactions/early-open/wait?timeout_ms=60000")
        .await;
    assert_eq!(
        (timed_out.status, timed_out.body["status"].as_str()),
        (200, Some("timed_out")),
        "{}",
        timed_out.text
    );
    let counters = app.get("/v1/sessions/long").await.body["interactions"].clone();
    assert_eq!(
        (
            &counters["completed"],
            &counters["timed_out"],
            &counters["pending"]
        ),
        (&json!(401), &json!(1), &json!(0))
    );
    assert_consistent(&app, "long").await;
}

/// The registry's sweep found an actor idle, and a request for its session reached the
/// registry before the actor's passivation request did: that request arms a 60 s deadline.
/// Passivating the actor then would leave it draining until the deadline fired, and every
/// later request to the session waiting for it (the race harness saw creates answered after
/// 60 s). The actor says how many forwarded messages it had seen; a stale count is refused and
/// it stays the session's actor. A request that saw everything is honoured.
async fn a_passivation_request_that_missed_a_message_is_refused(backend: Backend) {
    use orchestrator::actors::messages::Passivate;
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.idle_timeout = Duration::from_secs(3600)
    })
    .await
    else {
        return;
    };
    let started = || app.started_session_actors();
    session(&app, "late").await; // the first actor: generation 1, one message received
    let body = json!({"interaction_id": "i0", "kind": "approval", "timeout_ms": 60_000});
    let r = app.post("/v1/sessions/late/interactions", body).await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Sent when the actor had seen only the PUT.
    let stale = Passivate {
        key: common::default_scope_key("late").into(),
        generation: 1,
        received: Some(1),
        wake_at: None,
    };
    app.server.sessions.passivate(stale).await;
    let body = json!({"interaction_id": "i1", "kind": "approval", "timeout_ms": 60_000});
    let next = app.post("/v1/sessions/late/interactions", body);
    let r = actix_rt::time::timeout(Duration::from_secs(20), next)
        .await
        .expect("answered while i0's deadline is still running, not when it fires");
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(started().await, 1, "the actor was kept, no successor");

    // A session whose actor has seen every message it was sent is passivated.
    session(&app, "done").await; // generation 2, one message
    let current = Passivate {
        key: common::default_scope_key("done").into(),
        generation: 2,
        received: Some(1),
        wake_at: None,
    };
    app.server.sessions.passivate(current).await;
    let r = app.get("/v1/sessions/done").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.put("/v1/sessions/done", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(started().await, 3, "a successor serves the session");
}

/// An actor told to shut down while a `commands/next` caller waits on it stops once that wait
/// has ended, so its successor can start. The wait's end runs no group, so nothing calls the
/// actor's own idle check; it stops because nothing refers to it any more (actix stops an actor
/// without addresses or pending timers). While every actor had its own housekeeping timer, that
/// timer kept it alive forever and every later request to the session hung behind it (this
/// test failed with the code before the registry-wide sweep).
async fn a_draining_actor_stops_once_its_last_wait_ends(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.idle_timeout = Duration::from_secs(3600)
    })
    .await
    else {
        return;
    };
    // The first actor of a fresh server is generation 1.
    session(&app, "drain").await;
    let waiting = app.post("/v1/sessions/drain/commands/next?wait_ms=400", json!({}));
    let passivate = async {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        app.passivate("drain", 1).await;
        let live = app.live_session_actors().await;
        assert_eq!(
            live, 0,
            "the registry no longer routes to the draining actor"
        );
    };
    let (waited, ()) = futures_util::future::join(waiting, passivate).await;
    assert_eq!(waited.status, 204, "{}", waited.text);
    let next = actix_rt::time::timeout(
        Duration::from_secs(10),
        app.post(
            "/v1/sessions/drain/events",
            crate::common::event("after", 1),
        ),
    )
    .await
    .expect("the successor actor serves the session");
    assert_eq!(next.status, 201, "{}", next.text);
}

/// A client that gives up on a wait (drops its connection) releases its waiter: the session
/// actor, with nothing else holding it, becomes idle and is passivated. A leaked waiter would
/// keep it alive forever.
async fn a_dropped_wait_releases_its_waiter(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.idle_timeout = Duration::from_millis(300)
    })
    .await
    else {
        return;
    };
    session(&app, "dw").await;
    // A queued command has no deadline timer, so only the waiter keeps the actor busy.
    let r = app
        .post(
            "/v1/sessions/dw/commands",
            json!({"interaction_id": "c", "payload": 1}),
        )
        .await;
    assert_eq!(r.status, 201);
    let impatient = awc::Client::builder()
        .timeout(Duration::from_millis(200))
        .finish();
    let gave_up = impatient
        .get(format!(
            "{}/v1/sessions/dw/interactions/c/wait?timeout_ms=60000",
            app.base_url
        ))
        .send()
        .await;
    assert!(
        gave_up.is_err(),
        "the client timed out and dropped the connection"
    );
    let mut live = usize::MAX;
    for _ in 0..60 {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        live = app.live_session_actors().await;
        if live == 0 {
            break;
        }
    }
    assert_eq!(
        live, 0,
        "the dropped waiter was released and the actor passivated"
    );
    // The command is still there, untouched.
    let r = app.get("/v1/sessions/dw/interactions/c").await;
    assert_eq!(r.body["status"], "queued");
}

/// A request for a session whose actor is still draining starts a successor that loads only
/// once the draining one has reported stopped: its answer comes after the predecessor's last
/// one, and its event continues the predecessor's numbering.
async fn a_successor_loads_only_after_its_predecessor_stopped(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        c.sessions.idle_timeout = Duration::from_secs(3600)
    })
    .await
    else {
        return;
    };
    let first = app
        .post(
            "/v1/sessions/heir/events",
            crate::common::event("before", 1),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let waiting = async {
        let r = app
            .post("/v1/sessions/heir/commands/next?wait_ms=500", json!({}))
            .await;
        (r, std::time::Instant::now())
    };
    let successor = async {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        app.passivate("heir", 1).await;
        // The predecessor still holds the wait; this starts generation 2 behind it.
        let r = app
            .post("/v1/sessions/heir/events", crate::common::event("after", 2))
            .await;
        (r, std::time::Instant::now())
    };
    let ((waited, wait_done), (next, next_done)) =
        futures_util::future::join(waiting, successor).await;
    assert_eq!(waited.status, 204, "{}", waited.text);
    assert_eq!(next.status, 201, "{}", next.text);
    assert!(
        next_done >= wait_done,
        "the successor answered before its predecessor's last request ended"
    );
    assert_eq!(next.body["events"][0]["seq"], 2, "{}", next.text);
    let live = app.live_session_actors().await;
    assert_eq!(live, 1);
}

/// A session actor that panics must still report "stopped" (a successor may be waiting for that
/// report before it loads), and the session goes on where the committed state left it.
async fn a_panicking_actor_still_releases_its_successor(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let first = app
        .post(
            "/v1/sessions/boom/events",
            crate::common::event("before", 1),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let key = crate::common::default_scope_key("boom");
    let panicked = app.server.sessions.panic_session_for_test(key).await;
    assert!(panicked.is_err(), "the actor answered instead of panicking");
    let next = actix_rt::time::timeout(
        Duration::from_secs(10),
        app.post("/v1/sessions/boom/events", crate::common::event("after", 2)),
    )
    .await
    .expect("the successor of a panicked actor serves the session");
    assert_eq!(next.status, 201, "{}", next.text);
    assert_eq!(next.body["events"][0]["seq"], 2, "{}", next.text);
    let started = app.started_session_actors().await;
    assert_eq!(started, 2, "one successor, started once");
}
