//! `/openapi.json` is generated from the code; `docs/openapi.json` is the checked-in copy.
//! The test fails when they drift (regenerate with `UPDATE_OPENAPI=1 cargo test openapi`),
//! and when a route the server has is missing from the document.

use serde_json::Value;

use crate::common::{Backend, TestApp};

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

#[actix_rt::test]
async fn the_served_document_matches_the_checked_in_copy() {
    let app = TestApp::start(Backend::Sqlite).await.unwrap();
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    let served = r.body;
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(CHECKED_IN, &pretty).unwrap();
    }
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(CHECKED_IN).expect("docs/openapi.json exists"),
    )
    .unwrap();
    assert!(
        served == checked_in,
        "docs/openapi.json is stale: regenerate it with UPDATE_OPENAPI=1 cargo test openapi"
    );

    // Every route of the contract is documented, with its methods.
    let paths = served["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/healthz", &["get"][..]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
        ("/openapi.json", &["get"]),
        ("/v1/sessions", &["get"]),
        ("/v1/sessions/{session_id}", &["put", "get"]),
        ("/v1/sessions/{session_id}/events", &["post", "get"]),
        ("/v1/sessions/{session_id}/interactions", &["post", "get"]),
        (
            "/v1/sessions/{session_id}/interactions/{interaction_id}",
            &["get"],
        ),
        (
            "/v1/sessions/{session_id}/interactions/{interaction_id}/result",
            &["post"],
        ),
        (
            "/v1/sessions/{session_id}/interactions/{interaction_id}/resolve",
            &["post"],
        ),
        (
            "/v1/sessions/{session_id}/interactions/{interaction_id}/reject",
            &["post"],
        ),
        (
            "/v1/sessions/{session_id}/interactions/{interaction_id}/cancel",
            &["post"],
        ),
        (
            "/v1/sessions/{session_id}/interactions/{interaction_id}/wait",
            &["get"],
        ),
        ("/v1/sessions/{session_id}/commands", &["post"]),
        ("/v1/sessions/{session_id}/commands/next", &["post"]),
        ("/v1/notifications", &["get"]),
        ("/v1/stream", &["get"]),
    ] {
        for method in methods {
            assert!(
                paths[path].get(method).is_some(),
                "{method} {path} undocumented"
            );
        }
    }
    assert_eq!(
        paths.len(),
        18,
        "a documented path the test does not know: {:?}",
        paths.keys()
    );
    // Errors are documented as problem JSON.
    let post_events = &paths["/v1/sessions/{session_id}/events"]["post"]["responses"];
    assert!(post_events["422"]["content"]["application/problem+json"].is_object());
    let schemas = served["components"]["schemas"].as_object().unwrap();
    for name in [
        "Problem",
        "SessionDto",
        "InteractionDto",
        "EventDto",
        "AppendResponse",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
}
