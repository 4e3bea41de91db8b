//! The HTTP layer: routes, extraction, and turning actor and store answers into responses.
//! Handlers parse and validate, send one message to an actor or run one read query, and
//! shape the reply; there is no SQL and no business rule here. [`routes`] lists every
//! operation once; [`configure`] registers them and is shared by `main` and the tests.

pub(crate) mod admission;
mod auth;
mod bodies;
pub(crate) mod claude_code;
pub(crate) mod cross_site;
mod docs;
mod dto;
pub mod error;
mod events;
mod extract;
pub(crate) mod forward;
pub(crate) mod guard;
mod health;
pub(crate) mod interactions;
mod notifications;
pub mod openapi;
mod query;
mod routes;
pub mod schemas;
mod search;
mod sessions;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::value::RawValue;

pub use crate::config::DEFAULT_SCOPE;
pub use auth::{CallerScope, StreamTokens};
pub(crate) use query::Query;
pub(crate) use routes::HeadRequest;
pub use routes::{answer_head_like_get, RoutePattern};

use crate::actors::messages::SessionKey;
use crate::actors::{SessionHandle, Writer};
use crate::config::{ApiKeys, Limits};
use crate::domain::ids::SessionId;
use crate::domain::json::{self, BodyRefusal};
use crate::http::error::ApiError;
use crate::store::{DbConnection, DbPool, StoreError};

/// What every handler can reach.
pub struct AppState {
    pub sessions: SessionHandle,
    pub writer: Writer,
    pub pool: DbPool,
    pub api_keys: ApiKeys,
    pub limits: Limits,
    /// A read answers 503 when it has not finished within this.
    pub db_timeout: std::time::Duration,
    pub default_interaction_timeout_ms: i64,
    /// See [`crate::config::Config::stream_slow_consumer`].
    pub stream_slow_consumer: std::time::Duration,
    /// The newest committed notifications, read before the database; its newest id wakes
    /// long-polls and streams.
    pub notification_feed: std::sync::Arc<crate::store::NotificationFeed>,
    /// Tripped when the server stops: streams and long waits end at once.
    pub shutdown: crate::shutdown::Shutdown,
    /// Mints and checks the tokens that open `/v1/stream` without an `Authorization` header.
    pub stream_tokens: auth::StreamTokens,
    /// The hosts and origins the service answers to (see [`cross_site`]).
    pub site_policy: cross_site::SitePolicy,
    /// Every scope's gate (see [`admission`]).
    pub admission: admission::Admission,
    /// Approvals of PreToolUse for the PermissionRequest that follows (see [`claude_code`]).
    pub claude_code_joins: claude_code::JoinRecords,
    /// On PostgreSQL: this node's place in the cluster.
    pub cluster: Option<std::sync::Arc<crate::cluster::Member>>,
}

/// Registers every route (see [`routes`]), the extractor error handlers and the JSON 404
/// answer.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("bad path: {e}")).into()),
    )
    .app_data(web::Data::new(docs::OpenApiDocument(openapi::document())));
    routes::register(cfg);
    cfg.default_service(web::to(|req: HttpRequest| async move {
        Err::<HttpResponse, _>(ApiError::RouteNotFound(req.path().to_owned()))
    }));
}

/// Checks a body as JSON and gives its text, borrowed: 400 when it is not JSON or nests too
/// deep, 422 when a string in it could not be stored (see [`crate::domain::json`]).
pub(crate) fn parse_json(body: &[u8]) -> Result<&RawValue, ApiError> {
    let raw: &RawValue = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    match json::check_body(raw) {
        Ok(()) => Ok(raw),
        Err(BodyRefusal::TooDeep) => Err(ApiError::BadRequest(format!(
            "the body is not valid JSON: arrays and objects nest deeper than {}",
            json::MAX_DEPTH
        ))),
        Err(BodyRefusal::Invalid(e)) => Err(e.into()),
    }
}

/// Validates a session id taken from the path.
pub(crate) fn session_key(scope: &CallerScope, raw_id: &str) -> Result<SessionKey, ApiError> {
    Ok(SessionKey {
        scope: scope.0.clone(),
        session_id: SessionId::parse(raw_id)?,
    })
}

/// Runs a read on a pooled connection, off the async threads: 503 when it has not finished
/// within the database timeout, however many queries it makes and however the database
/// stalls (the query itself runs on until the database's own timeouts end it).
pub(crate) async fn read<T, F>(state: &AppState, query: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
{
    let pool = state.pool.clone();
    let reading = web::block(move || crate::store::with_connection(&pool, query));
    match actix_rt::time::timeout(state.db_timeout, reading).await {
        Ok(result) => Ok(result??),
        Err(_) => Err(ApiError::StorageUnavailable),
    }
}

/// Checks a `limit` query parameter: default 100, 1 to 1000.
pub(crate) fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and 1000, not {n}"
        ))),
    }
}
