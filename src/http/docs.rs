//! `GET /docs/api.md`: the API reference, embedded in the binary so it matches the version
//! running (the dashboard at `/` links it beside `/openapi.json`).

use actix_web::HttpResponse;

/// The API reference, as the repository's `docs/api.md`.
const API_REFERENCE: &str = include_str!("../../docs/api.md");

pub async fn api_reference() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/markdown; charset=utf-8")
        .body(API_REFERENCE)
}
