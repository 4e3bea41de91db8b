//! Operational endpoints: liveness, readiness (database answers, commits go through, write
//! queue not saturated) and Prometheus metrics. None of them needs a key.

use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde::Serialize;
use utoipa::ToSchema;

use super::{read, AppState};
use crate::http::error::ApiError;
use crate::store::with_backend;

#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process runs", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    status: &'static str,
    /// Session writes waiting for or in a commit.
    write_queue: usize,
}

#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, description = "Database answers, commits go through (none stalled past the database timeout or failed in the last 10 s), write queue below its limit; on PostgreSQL, the node renewed its partition leases within their TTL", body = Ready), crate::http::schemas::Unavailable))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    read(&state, |conn| {
        with_backend!(conn, |c| c.batch_execute("SELECT 1"))?;
        Ok(())
    })
    .await?;
    if let Some(cluster) = &state.cluster {
        if !cluster.ownership.is_current(cluster.lease_ttl) {
            // Its leases may have expired: it cannot say which sessions it may serve.
            return Err(ApiError::StorageUnavailable);
        }
    }
    let load = state.writer.load();
    if load.stalled || load.failing {
        // The database answers reads but cannot commit: stalled, locked, full or gone.
        return Err(ApiError::StorageUnavailable);
    }
    if load.queued >= load.capacity {
        return Err(ApiError::Overloaded);
    }
    Ok(HttpResponse::Ok().json(Ready {
        status: "ready",
        write_queue: load.queued,
    }))
}

#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let live = state.sessions.live_count().await;
    crate::metrics::LIVE_SESSION_ACTORS.set(live as i64);
    let load = state.writer.load();
    crate::metrics::WRITER_QUEUE_DEPTH.set(load.queued as i64);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::render()))
}
