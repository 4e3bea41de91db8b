//! Stopping the real binary: SIGTERM and SIGINT end streams and long waits at once, let
//! running writes finish and exit 0; a second SIGINT forces.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{both_backends, fresh_database, Backend, RemoveOnDrop, ServerProcess};

both_backends!(
    a_stop_ends_streams_and_waits_at_once,
    sigint_is_as_graceful_as_sigterm
);

/// A request whose answer is awaited on its own task: (status, body) or the error.
fn spawn_request(
    req: awc::ClientRequest,
    body: Option<serde_json::Value>,
) -> actix_rt::task::JoinHandle<Result<(u16, String), String>> {
    actix_rt::spawn(async move {
        let sent = match body {
            Some(body) => req.send_json(&body).await,
            None => req.send().await,
        };
        let mut res = sent.map_err(|e| e.to_string())?;
        let bytes = res
            .body()
            .limit(16 << 20)
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            res.status().as_u16(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    })
}

async fn a_stop_ends_streams_and_waits_at_once(backend: Backend) {
    let Some(database) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let server = ServerProcess::spawn(&database);
    let base = server.http.base_url.clone();
    assert_eq!(
        server.http.put("/v1/sessions/s1", json!({})).await.status,
        201
    );
    let created = server
        .http
        .post(
            "/v1/sessions/s1/interactions",
            json!({"interaction_id": "i1", "kind": "approval", "timeout_ms": 600000}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);

    let client = awc::Client::builder()
        .timeout(Duration::from_secs(120))
        .finish();
    let stream = spawn_request(client.get(format!("{base}/v1/stream")), None);
    let long_poll = spawn_request(
        client.get(format!("{base}/v1/notifications?after=1000&wait_ms=60000")),
        None,
    );
    let wait = spawn_request(
        client.get(format!(
            "{base}/v1/sessions/s1/interactions/i1/wait?timeout_ms=60000"
        )),
        None,
    );
    let next = spawn_request(
        client.post(format!("{base}/v1/sessions/s1/commands/next?wait_ms=60000")),
        None,
    );
    // Let every request reach its wait.
    actix_rt::time::sleep(Duration::from_millis(500)).await;

    let stopping = Instant::now();
    server.signal("TERM");
    let status = server.exited().await;
    let took = stopping.elapsed();
    eprintln!("{backend:?}: exited {took:?} after SIGTERM");
    assert!(status.success(), "{status:?}");
    // The stop waited for none of the 60 s waits (actix-web's own stop gave up after 30 s).
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");

    let (code, body) = stream.await.unwrap().expect("the stream ended cleanly");
    assert_eq!(code, 200);
    assert!(body.contains("event: interaction.created"), "{body}");
    let (code, body) = long_poll.await.unwrap().expect("the long-poll answered");
    assert_eq!(code, 200);
    assert!(body.contains("\"notifications\":[]"), "{body}");
    let (code, body) = wait.await.unwrap().expect("the wait answered");
    assert_eq!(code, 200);
    assert!(body.contains("\"status\":\"pending\""), "{body}");
    let (code, _) = next.await.unwrap().expect("commands/next answered");
    assert_eq!(code, 204);
}

async fn sigint_is_as_graceful_as_sigterm(backend: Backend) {
    let Some(database) = fresh_database(backend) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let server = ServerProcess::spawn_with(&database, &[("ORCH_REORDER_GAP_MS", "2500")]);
    let base = server.http.base_url.clone();
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    // Sequence 1 waits for 0 until the gap is given up.
    let held = spawn_request(
        client.post(format!("{base}/v1/sessions/g1/events")),
        Some(json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z", "sequence": 1})),
    );
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    server.signal("INT");
    let (code, body) = held
        .await
        .unwrap()
        .expect("the held request got its answer");
    assert_eq!(code, 201, "{body}");
    let status = server.exited().await;
    assert!(status.success(), "{status:?}");

    // What was acknowledged is there after a restart.
    let server = ServerProcess::spawn_with(&database, &[("ORCH_REORDER_GAP_MS", "30000")]);
    let events = server.http.all_events("g1").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["sequence"], 1);

    // A second Ctrl-C does not wait for a request held for 30 s.
    let base = server.http.base_url.clone();
    let held = spawn_request(
        client.post(format!("{base}/v1/sessions/g2/events")),
        Some(json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z", "sequence": 5})),
    );
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    server.signal("INT");
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    server.signal("INT");
    let status = server.exited().await;
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        held.await.unwrap().is_err(),
        "the forced stop answered nothing"
    );
}
