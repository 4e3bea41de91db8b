//! `GET /docs/api.md`: the API reference, embedded in the binary so it matches the version
//! running (the dashboard at `/` links it beside `/openapi.json`).

use actix_web::HttpResponse;

/// The API reference, as the repository's `docs/api.md`.
const API_REFERENCE: &str = include_str!("../../docs/api.md");

/// The API reference in Markdown, for the version running.
#[utoipa::path(get, path = "/docs/api.md", operation_id = "api_reference", tag = "operations",
    security(()),
    responses((status = 200, description = "The API reference", content_type = "text/markdown")))]
pub async fn api_reference() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/markdown; charset=utf-8")
        .body(API_REFERENCE)
}
