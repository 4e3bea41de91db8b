//! The dashboard: a page served by the binary at `/` that follows sessions live and decides
//! approvals from any tab. Plain HTML, CSS and a JavaScript module, embedded in the binary
//! (no build step, no CDN, works offline); the page uses only the public HTTP API.

use actix_web::{web, HttpResponse};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The page and its assets.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/",
        web::get().to(|| asset("text/html; charset=utf-8", INDEX_HTML)),
    )
    .route(
        "/dashboard/app.js",
        web::get().to(|| asset("text/javascript; charset=utf-8", APP_JS)),
    )
    .route(
        "/dashboard/style.css",
        web::get().to(|| asset("text/css; charset=utf-8", STYLE_CSS)),
    );
}

async fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // The assets change only with the binary; a browser revalidates them on each load.
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}
