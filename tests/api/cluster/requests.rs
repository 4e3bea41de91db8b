//! Any node answers for any session, and what one node commits the others' readers and
//! waiters hear of at once.

use std::time::{Duration, Instant};

use crate::common::{fresh_database, Backend, RemoveOnDrop};

use super::*;

/// Clients spread over three nodes, each request to the next: every node answers for every
/// session, the node that holds a session's partition doing the work.
#[actix_rt::test]
async fn any_node_answers_for_any_session() {
    use futures_util::future::join_all;
    use serde_json::json;
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let (a, b, c) = (
        node(&database, "node-a"),
        node(&database, "node-b"),
        node(&database, "node-c"),
    );
    until_owned(&[&a, &b, &c], &[86, 85, 85], Duration::from_secs(20)).await;
    let nodes = [&a, &b, &c];

    // A new session raced from every node is created once, and nobody gets a 503.
    let puts = (0..30).map(|i| nodes[i % 3].http.put("/v1/sessions/raced", json!({})));
    let mut statuses: Vec<u16> = join_all(puts).await.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "{statuses:?}"
    );

    // Ordered events through every node in turn: stored gap-free, in the client's order.
    for n in 0..30u32 {
        let event = json!({"event_type": "step", "timestamp": "2026-12-05T10:00:00Z",
                           "event_id": format!("e{n}"), "sequence": n});
        let r = nodes[n as usize % 3]
            .http
            .post("/v1/sessions/ordered/events", event)
            .await;
        if r.status != 201 {
            print_warnings(&nodes);
        }
        assert_eq!(
            (r.status, r.body["last_seq"].as_u64()),
            (201, Some(u64::from(n) + 1)),
            "{}",
            r.text
        );
    }
    for n in nodes {
        let listed = n.http.get("/v1/sessions/ordered/events?limit=100").await;
        let ids: Vec<&str> = listed.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (0..30).map(|n| format!("e{n}")).collect();
        assert_eq!(ids, expected);
    }

    // A decision raced from two nodes: one wins, the interaction completes once.
    let created = a
        .http
        .post(
            "/v1/sessions/raced/interactions",
            json!({"interaction_id": "ask", "kind": "approval", "payload": {}}),
        )
        .await;
    if created.status != 201 {
        print_warnings(&nodes);
    }
    assert_eq!(created.status, 201, "{}", created.text);
    let base = "/v1/sessions/raced/interactions/ask";
    let (resolved, rejected) = tokio::join!(
        b.http
            .post(format!("{base}/resolve"), json!({"response": {}})),
        c.http
            .post(format!("{base}/reject"), json!({"reason": "no"}))
    );
    let outcomes = [&resolved, &rejected];
    assert!(
        outcomes.iter().all(|r| r.status == 200 || r.status == 409),
        "{outcomes:?}"
    );
    let winners = outcomes
        .iter()
        .filter(|r| r.status == 200 && r.body["completed_now"] == true)
        .count();
    assert_eq!(winners, 1, "{outcomes:?}");

    // A write acknowledged by one node is visible through every node at once.
    for (i, writer) in nodes.iter().enumerate() {
        let session = format!("/v1/sessions/seen-{i}");
        let r = writer
            .http
            .post(
                format!("{session}/events"),
                json!({"event_type": "x", "timestamp": "2026-12-05T10:00:00Z"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        for reader in nodes {
            let r = reader.http.get(session.clone()).await;
            assert_eq!((r.status, r.body["event_count"].as_i64()), (200, Some(1)));
        }
    }

    // Claude Code's HTTP hook names its session in the body; any node takes it.
    for (i, n) in nodes.iter().enumerate() {
        let input = json!({"session_id": "hooked", "hook_event_name": "UserPromptSubmit",
                           "prompt": format!("step {i}"), "cwd": "/tmp"});
        let r = n.http.post("/v1/hooks/claude-code", input).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let forwarded: f64 = {
        let mut total = 0.0;
        for n in nodes {
            total += metric(n, "orchestrator_forwarded_requests_total").await;
        }
        total
    };
    assert!(forwarded > 0.0, "requests were forwarded to their owners");
}

/// A long-poll on one node wakes for a commit made on another at once, not when its wait
/// ends: each node announces its commits, and the others' listeners wake their readers.
#[actix_rt::test]
async fn a_long_poll_on_one_node_wakes_for_a_commit_on_another() {
    use serde_json::json;
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let (a, b) = (node(&database, "node-a"), node(&database, "node-b"));
    until_owned(&[&a, &b], &[128, 128], Duration::from_secs(20)).await;
    // A session that a holds, so that its commit is a's and b's reader must hear of it.
    let held_by_a = session_held_by(&database, "node-a", "held");
    let latest = b.http.get("/v1/notifications/latest").await.body["id"]
        .as_i64()
        .unwrap();
    let started = Instant::now();
    let (polled, posted) = tokio::join!(
        b.http
            .get(format!("/v1/notifications?after={latest}&wait_ms=20000")),
        async {
            actix_rt::time::sleep(Duration::from_millis(500)).await;
            a.http
                .post(
                    format!("/v1/sessions/{held_by_a}/events"),
                    json!({"event_type": "x", "timestamp": "2026-12-05T10:00:00Z"}),
                )
                .await
        }
    );
    assert_eq!(posted.status, 201, "{}", posted.text);
    assert_eq!(polled.status, 200, "{}", polled.text);
    let heard = polled.body["notifications"].as_array().unwrap();
    assert!(
        heard.iter().any(|n| n["session_id"] == held_by_a.as_str()),
        "{heard:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken by the commit, not by the end of its 20 s wait ({:?})",
        started.elapsed()
    );
}

/// Waiters reached through one node hear of decisions and commands made through another: an
/// interaction wait and a `commands/next` caller, both sent to a node that does not hold the
/// session (and forwarded to the one that does), return as soon as the decision or the command
/// lands, not when their waits end.
#[actix_rt::test]
async fn waiters_hear_of_decisions_and_commands_made_through_another_node() {
    use serde_json::json;
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let [a, b, c] = three_nodes(&database).await;
    let sid = session_held_by(&database, "node-a", "waited");
    let session = format!("/v1/sessions/{sid}");
    assert_eq!(b.http.put(session.clone(), json!({})).await.status, 201);
    let created = c
        .http
        .post(
            format!("{session}/interactions"),
            json!({"interaction_id": "ask", "kind": "approval", "timeout_ms": 60000}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);

    let started = Instant::now();
    let (waited, resolved) = tokio::join!(
        c.http
            .get(format!("{session}/interactions/ask/wait?timeout_ms=20000")),
        async {
            actix_rt::time::sleep(Duration::from_millis(500)).await;
            b.http
                .post(
                    format!("{session}/interactions/ask/resolve"),
                    json!({"response": {"approved": true}}),
                )
                .await
        }
    );
    assert_eq!(resolved.status, 200, "{}", resolved.text);
    assert_eq!(waited.status, 200, "{}", waited.text);
    assert_eq!(waited.body["status"], "completed", "{}", waited.text);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the wait ended with the decision, not its timeout ({:?})",
        started.elapsed()
    );

    let started = Instant::now();
    let (next, queued) = tokio::join!(
        c.http
            .post(format!("{session}/commands/next?wait_ms=20000"), json!({})),
        async {
            actix_rt::time::sleep(Duration::from_millis(500)).await;
            a.http
                .post(
                    format!("{session}/commands"),
                    json!({"interaction_id": "cmd-1", "payload": {"prompt": "go on"}}),
                )
                .await
        }
    );
    assert_eq!(queued.status, 201, "{}", queued.text);
    assert_eq!(next.status, 200, "{}", next.text);
    assert_eq!(next.body["interaction_id"], "cmd-1", "{}", next.text);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "commands/next answered with the command, not at the end of its wait ({:?})",
        started.elapsed()
    );
}

/// An SSE stream on one node sees a commit made on another promptly: the committing node
/// announces it, and the stream's node reads it from the database.
#[actix_rt::test]
async fn an_sse_stream_on_one_node_sees_commits_made_on_another() {
    use serde_json::json;
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let (a, b) = (node(&database, "node-a"), node(&database, "node-b"));
    until_owned(&[&a, &b], &[128, 128], Duration::from_secs(20)).await;
    let sid = session_held_by(&database, "node-a", "streamed");
    let query = format!("?session_id={sid}");
    let started = Instant::now();
    let (messages, posted) = tokio::join!(
        b.http.sse_until(&query, None, |m| m.1 == "events.appended"),
        async {
            actix_rt::time::sleep(Duration::from_millis(500)).await;
            a.http
                .post(
                    format!("/v1/sessions/{sid}/events"),
                    json!({"event_type": "x", "timestamp": "2026-12-05T10:00:00Z"}),
                )
                .await
        }
    );
    assert_eq!(posted.status, 201, "{}", posted.text);
    let kinds: Vec<&str> = messages.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(kinds, ["session.created", "events.appended"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the stream saw the other node's commit after {:?}",
        started.elapsed()
    );
}

/// A follower paging the notifications through every node in turn while writers post through
/// all three skips nothing: the ids it sees are every id committed, in order, without gaps.
#[actix_rt::test]
async fn a_follower_paging_notifications_under_load_skips_nothing() {
    use super::load::{Load, Nodes};
    use std::cell::Cell;
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let nodes = three_nodes(&database).await;
    let urls = Nodes::new(nodes.iter().map(|n| n.http.base_url.clone()));
    let start = nodes[0].http.get("/v1/notifications/latest").await.body["id"]
        .as_i64()
        .unwrap();
    let last = Cell::new(None::<i64>);
    let follow = async {
        let mut seen = Vec::new();
        let mut after = start;
        for turn in 0.. {
            if last.get().is_some_and(|last| after >= last) {
                return seen;
            }
            let r = nodes[turn % 3]
                .http
                .get(format!(
                    "/v1/notifications?after={after}&limit=50&wait_ms=1000"
                ))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            for n in r.body["notifications"].as_array().unwrap() {
                seen.push(n["id"].as_i64().unwrap());
            }
            after = r.body["next_after"].as_i64().unwrap();
        }
        unreachable!()
    };
    let load = async {
        let load = Load::start(&urls, "f", 12);
        actix_rt::time::sleep(Duration::from_secs(5)).await;
        let written = load.finish().await;
        let latest = nodes[1].http.get("/v1/notifications/latest").await.body["id"]
            .as_i64()
            .unwrap();
        last.set(Some(latest));
        written
    };
    let (seen, written) = tokio::join!(follow, load);
    let events: usize = written.iter().map(|w| w.acknowledged.len()).sum();
    let latest = last.get().unwrap();
    eprintln!(
        "the follower saw {} notifications of {events} events",
        seen.len()
    );
    assert!(events > 100, "load ran: {events} events");
    let expected: Vec<i64> = (start + 1..=latest).collect();
    assert_eq!(seen, expected, "every id, in order, once");
}

/// Search text finds the events written through every node: one node fills the index at a
/// time, and what the others committed is in it.
#[actix_rt::test]
async fn search_finds_what_every_node_wrote() {
    use futures_util::future::join_all;
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let nodes = three_nodes(&database).await;
    let posts = (0..60).map(|i| {
        nodes[i % 3].http.post(
            format!("/v1/sessions/searched-{}/events", i % 12),
            crate::search::bash(&format!("cargo needle{i}")),
        )
    });
    for r in join_all(posts).await {
        assert_eq!(r.status, 201, "{}", r.text);
    }
    for n in &nodes {
        let body = crate::search::search_until(&n.http, "q=cargo&limit=100", 60).await;
        assert_eq!(body["events"].as_array().unwrap().len(), 60, "{body}");
    }
}
