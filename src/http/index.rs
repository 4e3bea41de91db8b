//! `GET /` and `GET /docs/api.md`: where a person who opens the server's address finds the
//! API reference (embedded in the binary, so it matches the version running) and the
//! machine-readable document.

use actix_web::HttpResponse;

/// The API reference, as the repository's `docs/api.md`.
const API_REFERENCE: &str = include_str!("../../docs/api.md");

const INDEX: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>orchestrator</title></head>
<body>
<h1>orchestrator</h1>
<p>Coordinates the sessions of AI coding agents over HTTP.</p>
<ul>
<li><a href="/docs/api.md">API reference</a></li>
<li><a href="/openapi.json">OpenAPI document</a></li>
<li><a href="/readyz">Readiness</a> and <a href="/metrics">metrics</a></li>
</ul>
</body>
</html>
"#;

pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(INDEX)
}

pub async fn api_reference() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/markdown; charset=utf-8")
        .body(API_REFERENCE)
}
