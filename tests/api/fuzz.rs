//! HTTP fuzzing: seeded random mutations of valid request bodies, sent to every endpoint that
//! takes a body. Whatever arrives, the answer is a clear 2xx/4xx (never a 5xx, a panic or a
//! hang), and errors are problem JSON with a code.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{both_backends, Backend, TestApp};
use crate::race_harness::Rng;

/// Awkward values to put where a field was.
fn junk(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(i64::MAX),
        4 => json!(1.5e300),
        5 => json!(""),
        6 => json!("x".repeat(rng.below(300) as usize)),
        7 => json!("ünïcødé \u{0} \u{1F600} ' \" \\ / <script>"),
        8 => json!([1, "two", null, {"three": 3}]),
        9 => json!({"nested": {"deeper": [{"deepest": null}]}}),
        10 => json!("2026-02-30T25:61:61Z"),
        _ => json!(u64::MAX),
    }
}

/// A valid body with a few fields removed, replaced or added. (Deadlines in the templates are
/// long so that nothing times out while the consistency check reads.)
fn mutate(rng: &mut Rng, mut body: Value) -> Value {
    for _ in 0..1 + rng.below(3) {
        let Value::Object(map) = &mut body else { break };
        let keys: Vec<String> = map.keys().cloned().collect();
        match rng.below(4) {
            0 if !keys.is_empty() => {
                map.remove(&keys[rng.below(keys.len() as u64) as usize]);
            }
            1 if !keys.is_empty() => {
                let key = keys[rng.below(keys.len() as u64) as usize].clone();
                map.insert(key, junk(rng));
            }
            2 => {
                map.insert(format!("extra{}", rng.below(9)), junk(rng));
            }
            _ => {
                body = if rng.chance(50) {
                    junk(rng)
                } else {
                    json!({"events": [body, junk(rng)]})
                }
            }
        }
    }
    body
}

async fn mutated_bodies_get_clear_answers(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let seed = std::env::var("ORCH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7u64);
    let mut rng = Rng(seed | 1);
    app.put("/v1/sessions/fz", json!({})).await;
    app.post(
        "/v1/sessions/fz/interactions",
        json!({"interaction_id": "i", "kind": "k"}),
    )
    .await;
    let templates: Vec<(&str, Value)> = vec![
        (
            "/v1/sessions/fz/events",
            json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z",
            "data": {"a": 1}, "event_id": "e", "interaction_id": "i", "sequence": 0}),
        ),
        (
            "/v1/sessions/fz/interactions",
            json!({"interaction_id": "j", "kind": "k", "payload": {}, "timeout_ms": 60000}),
        ),
        (
            "/v1/sessions/fz/commands",
            json!({"interaction_id": "c", "payload": {"run": "ls"}, "timeout_ms": 60000}),
        ),
        (
            "/v1/sessions/fz/interactions/i/result",
            json!({"status": "ok", "output": 1}),
        ),
        (
            "/v1/sessions/fz/interactions/i/resolve",
            json!({"response": 1}),
        ),
        (
            "/v1/sessions/fz/interactions/i/reject",
            json!({"reason": "no"}),
        ),
    ];
    let mut sent = 0;
    for round in 0..150 {
        for (path, template) in &templates {
            let body = mutate(&mut rng, template.clone());
            let r = actix_rt::time::timeout(Duration::from_secs(30), app.post(*path, body.clone()))
                .await
                .unwrap_or_else(|_| panic!("seed {seed} round {round}: {path} hung on {body}"));
            sent += 1;
            assert!(
                matches!(r.status, 200 | 201 | 400 | 404 | 409 | 413 | 422),
                "seed {seed} round {round}: {path} {body} -> {} {}",
                r.status,
                r.text
            );
            if r.status >= 400 {
                assert_eq!(r.content_type, "application/problem+json", "{path} {body}");
                assert!(r.body["code"].is_string(), "{}", r.text);
            }
        }
        // Raw garbage too.
        let garbage: Vec<u8> = (0..rng.below(200)).map(|_| rng.below(256) as u8).collect();
        let r = app.post_raw("/v1/sessions/fz/events", &garbage).await;
        assert!(
            matches!(r.status, 400 | 422),
            "seed {seed}: garbage -> {} {}",
            r.status,
            r.text
        );
        sent += 1;
    }
    assert_eq!(sent, 150 * 7);
    // The session is still consistent after all that.
    crate::interactions::assert_consistent(&app, "fz").await;
}

both_backends!(mutated_bodies_get_clear_answers);
