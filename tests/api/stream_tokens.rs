//! What the dashboard relies on besides the API every client uses: stream tokens for
//! `EventSource` (which cannot send `Authorization`), and where "from now on" starts.

use actix_web::http::Method;
use orchestrator::config::ApiKeys;

use crate::common::{both_backends, Backend, Client, TestApp};

both_backends!(
    a_stream_token_opens_its_own_scope_only,
    latest_is_where_from_now_on_starts
);

/// A server with auth on and a client for each of its two scopes, alpha and beta.
async fn two_scopes(backend: Backend) -> Option<(TestApp, Client, Client)> {
    let app = TestApp::start_with(backend, |c| {
        c.api_keys = ApiKeys::parse("key-a:alpha,key-b:beta").unwrap();
    })
    .await?;
    let client = |key: &str| {
        let mut client = Client::new(app.base_url.clone());
        client.key = Some(key.into());
        client
    };
    let (alpha, beta) = (client("key-a"), client("key-b"));
    Some((app, alpha, beta))
}

async fn a_stream_token_opens_its_own_scope_only(backend: Backend) {
    let Some((app, alpha, beta)) = two_scopes(backend).await else {
        return;
    };
    assert_eq!(
        beta.put("/v1/sessions/only-beta", serde_json::json!({}))
            .await
            .status,
        201
    );
    assert_eq!(
        alpha
            .put("/v1/sessions/only-alpha", serde_json::json!({}))
            .await
            .status,
        201
    );

    let minted = alpha
        .request(Method::POST, "/v1/stream-tokens", None, None)
        .await;
    assert_eq!(minted.status, 201, "{}", minted.text);
    assert_eq!(minted.body["expires_in"], 300);
    let token = minted.body["token"].as_str().unwrap().to_owned();

    let anonymous = Client::new(app.base_url.clone());
    // Beta's notification is older: a stream of both scopes would start with it.
    let seen = anonymous.sse(&format!("?token={token}"), None, 1).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].2["session_id"], "only-alpha",
        "alpha's notifications only"
    );

    // A token opens the stream and nothing else; a bad one is a 401 like a bad key.
    let elsewhere = anonymous.get(format!("/v1/sessions?token={token}")).await;
    assert_eq!(elsewhere.status, 401);
    let forged = token.replace("alpha", "beta");
    for bad in [forged.as_str(), "garbage", ""] {
        let r = anonymous.get(format!("/v1/stream?token={bad}")).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (401, Some("unauthorized")),
            "{bad}"
        );
    }
    let unauthenticated = anonymous
        .request(Method::POST, "/v1/stream-tokens", None, None)
        .await;
    assert_eq!(unauthenticated.status, 401);
}

async fn latest_is_where_from_now_on_starts(backend: Backend) {
    let Some((app, alpha, beta)) = two_scopes(backend).await else {
        return;
    };
    assert_eq!(alpha.get("/v1/notifications/latest").await.body["id"], 0);
    alpha.put("/v1/sessions/s1", serde_json::json!({})).await;
    let all = alpha.all_notifications(None).await;
    let newest = all.last().unwrap()["id"].as_i64().unwrap();
    assert_eq!(
        alpha.get("/v1/notifications/latest").await.body["id"],
        newest
    );
    assert_eq!(
        beta.get("/v1/notifications/latest").await.body["id"],
        0,
        "another scope's notifications are not counted"
    );
    // Following from it gives exactly what comes next.
    alpha.put("/v1/sessions/s2", serde_json::json!({})).await;
    let next = alpha.get(format!("/v1/notifications?after={newest}")).await;
    let types: Vec<&str> = next.body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["s2"]);
    let r = app
        .request(Method::GET, "/v1/notifications/latest", None, Some("nope"))
        .await;
    assert_eq!(r.status, 401);
}
