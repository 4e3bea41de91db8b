//! `/openapi.json` is generated from the code; `docs/openapi.json` is the checked-in copy.
//! The test fails when they drift (regenerate with `UPDATE_OPENAPI=1 cargo test openapi`),
//! and when the server's routes and the document's disagree.

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

    // The server serves what the document says: each documented path answers a method it
    // does not document with 405 and an `Allow` naming exactly the documented ones.
    let paths = served["paths"].as_object().unwrap();
    for (path, item) in paths {
        let mut documented: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|method| method.to_uppercase())
            .collect();
        if documented.iter().any(|m| m == "GET") {
            documented.push("HEAD".into());
        }
        documented.sort();
        let url = path
            .replace("{session_id}", "s1")
            .replace("{interaction_id}", "i1");
        let res = awc::Client::new()
            .delete(format!("{}{url}", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 405, "DELETE {path}");
        assert_eq!(
            res.headers().get("allow").unwrap().to_str().unwrap(),
            documented.join(", "),
            "{path}"
        );
    }
    // Errors are documented as problem JSON.
    let post_events = &paths["/v1/sessions/{session_id}/events"]["post"]["responses"];
    assert!(post_events["422"]["content"]["application/problem+json"].is_object());
    // The edge's answers are documented where they apply: the Host check everywhere,
    // admission on /v1, a foreign Origin where something may change, JSON where a body is.
    for status in ["403", "415", "421", "429"] {
        assert!(
            post_events[status]["content"]["application/problem+json"].is_object(),
            "POST events documents {status}"
        );
    }
    let get_events = &paths["/v1/sessions/{session_id}/events"]["get"]["responses"];
    assert!(get_events["421"].is_object() && get_events["429"].is_object());
    assert!(get_events["403"].is_null() && get_events["415"].is_null());
    let healthz = &paths["/healthz"]["get"]["responses"];
    assert!(healthz["421"].is_object() && healthz["429"].is_null());
    let cancel = &paths["/v1/sessions/{session_id}/interactions/{interaction_id}/cancel"]["post"]
        ["responses"];
    assert!(
        cancel["403"].is_object() && cancel["415"].is_null(),
        "cancel takes no body"
    );
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

/// Operation ids are unique (OpenAPI requires it; links and generated clients rely on it), and
/// every link names an existing operation and fills each of its path parameters.
#[actix_rt::test]
async fn operation_ids_are_unique_and_links_resolve() {
    let document = orchestrator::http::openapi::document();
    let mut operations = std::collections::BTreeMap::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap().to_owned();
            let previous = operations.insert(id.clone(), (path.clone(), operation.clone()));
            assert!(
                previous.is_none(),
                "operationId {id} twice ({method} {path})"
            );
        }
    }
    let mut links = 0;
    for (_, operation) in operations.values() {
        for response in operation["responses"].as_object().unwrap().values() {
            let Some(map) = response.get("links").and_then(Value::as_object) else {
                continue;
            };
            for link in map.values() {
                links += 1;
                let target = link["operationId"].as_str().unwrap();
                let (path, _) = operations.get(target).expect("the linked operation exists");
                let filled = link["parameters"].as_object().unwrap();
                let taken: Vec<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .collect();
                let mut names: Vec<&str> = filled.keys().map(String::as_str).collect();
                names.sort_unstable();
                let mut expected = taken.clone();
                expected.sort_unstable();
                assert_eq!(
                    names, expected,
                    "{target}: each path parameter, and only those"
                );
            }
        }
    }
    // A PUT session links to four operations on the session; creating an interaction and
    // queueing a command link to six on the new interaction; each from its 200 and its 201.
    assert_eq!(links, 2 * 4 + 2 * 2 * 6);
}
