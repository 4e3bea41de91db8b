//! The API's documents, served: `GET /docs/api.md`, the API reference embedded in the binary
//! so it matches the version running, and `GET /openapi.json`, the OpenAPI document (the
//! dashboard at `/` links both).

use actix_web::{web, HttpResponse};

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

/// The OpenAPI 3 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
pub async fn openapi_json(document: web::Data<OpenApiDocument>) -> HttpResponse {
    HttpResponse::Ok().json(&document.0)
}

/// The OpenAPI document as served, built once when the routes are registered (see
/// `super::openapi`).
pub struct OpenApiDocument(pub serde_json::Value);
