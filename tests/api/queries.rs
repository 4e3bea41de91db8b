//! The event listing and its query parameters.

use serde_json::{json, Value};

use crate::common::{both_backends, event, Backend, TestApp};

fn seqs(r: &crate::common::Resp) -> Vec<i64> {
    r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect()
}

async fn event_listing_filters(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let events: Vec<Value> = (0..10)
        .map(|i| {
            let mut e = event(if i % 2 == 0 { "even" } else { "odd" }, i);
            if i % 3 == 0 {
                e["interaction_id"] = json!("i3");
            }
            e["data"] = json!({"i": i});
            e
        })
        .collect();
    let r = app
        .post("/v1/sessions/q/events", json!({"events": events}))
        .await;
    assert_eq!(r.status, 201);

    let get = |q: &str| app.get(format!("/v1/sessions/q/events{q}"));
    assert_eq!(seqs(&get("").await), (1..=10).collect::<Vec<_>>());
    assert_eq!(seqs(&get("?event_type=odd").await), [2, 4, 6, 8, 10]);
    assert_eq!(seqs(&get("?interaction_id=i3").await), [1, 4, 7, 10]);
    assert_eq!(
        seqs(&get("?event_type=even&interaction_id=i3").await),
        [1, 7]
    );
    assert_eq!(seqs(&get("?after_seq=7").await), [8, 9, 10]);
    assert_eq!(seqs(&get("?limit=3").await), [1, 2, 3]);
    assert_eq!(seqs(&get("?limit=3&offset=2").await), [3, 4, 5]);
    assert_eq!(seqs(&get("?order=desc&limit=2").await), [10, 9]);
    assert_eq!(seqs(&get("?order=asc&after_seq=8").await), [9, 10]);
    assert_eq!(seqs(&get("?order=desc&after_seq=8").await), [10, 9]);
    assert_eq!(seqs(&get("?event_type=none").await), Vec::<i64>::new());
    assert_eq!(seqs(&get("?unknown_param=1").await).len(), 10);

    let r = get("?limit=1&offset=3").await;
    let e = &r.body["events"][0];
    assert_eq!(e["seq"], 4);
    assert_eq!(e["event_type"], "odd");
    assert_eq!(e["timestamp"], "2026-11-22T10:00:03.000Z");
    assert_eq!(e["interaction_id"], "i3");
    assert_eq!(e["data"], json!({"i": 3}));
    assert_eq!(e["event_id"], Value::Null);
    assert_eq!(e["sequence"], Value::Null);
    assert_eq!(e["out_of_order"], false);
    assert!(e["received_at"].as_str().unwrap().ends_with('Z'));

    for bad in [
        "?limit=0",
        "?limit=1001",
        "?limit=x",
        "?offset=-1",
        "?after_seq=-2",
        "?after_seq=a",
        "?order=sideways",
        "?event_type=bad%20type",
        "?interaction_id=a%2Fb",
    ] {
        let r = get(bad).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}: {}",
            r.text
        );
    }
}

both_backends!(event_listing_filters);
