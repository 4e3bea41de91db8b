//! The HTTP layer: routes, extraction, and turning actor and store answers into responses.
//! Handlers parse and validate, send one message to an actor or run one read query, and
//! shape the reply; there is no SQL and no business rule here. [`configure`] registers every
//! route and is shared by `main` and the tests.

pub(crate) mod admission;
mod auth;
pub(crate) mod claude_code;
pub(crate) mod cross_site;
mod docs;
mod dto;
pub mod error;
mod events;
mod extract;
pub(crate) mod guard;
mod health;
pub(crate) mod interactions;
mod notifications;
pub mod openapi;
mod query;
pub mod schemas;
mod search;
mod sessions;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::value::RawValue;

pub use crate::config::DEFAULT_SCOPE;
pub use auth::{CallerScope, StreamTokens};
pub(crate) use query::Query;

use crate::actors::messages::SessionKey;
use crate::actors::{SessionHandle, Writer};
use crate::config::{ApiKeys, Limits};
use crate::domain::ids::SessionId;
use crate::domain::json::{self, BodyRefusal, Fields};
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
}

/// Registers every route, the extractor error handlers and the JSON 404/405 answers.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("bad path: {e}")).into()),
    )
    .service(resource("/docs/api.md", "GET, HEAD").route(web::get().to(docs::api_reference)))
    .service(resource("/healthz", "GET, HEAD").route(web::get().to(health::healthz)))
    .service(resource("/readyz", "GET, HEAD").route(web::get().to(health::readyz)))
    .service(resource("/metrics", "GET, HEAD").route(web::get().to(health::metrics)))
    .service(resource("/openapi.json", "GET, HEAD").route(web::get().to(openapi::openapi_json)))
    .service(resource("/v1/sessions", "GET, HEAD").route(web::get().to(sessions::list)))
    .service(session_routes())
    .service(resource("/v1/events", "GET, HEAD").route(web::get().to(search::events)))
    .service(resource("/v1/activity", "GET, HEAD").route(web::get().to(search::activity)))
    .service(resource("/v1/notifications", "GET, HEAD").route(web::get().to(notifications::list)))
    .service(
        resource("/v1/notifications/latest", "GET, HEAD")
            .route(web::get().to(notifications::latest)),
    )
    .service(resource("/v1/stream", "GET, HEAD").route(web::get().to(notifications::stream)))
    .service(resource("/v1/stream-tokens", "POST").route(web::post().to(auth::create_stream_token)))
    .service(resource("/v1/hooks/claude-code", "POST").route(web::post().to(claude_code::hook)))
    .default_service(web::to(|req: HttpRequest| async move {
        Err::<HttpResponse, _>(ApiError::RouteNotFound(req.path().to_owned()))
    }));
}

/// The patterns of the per-session routes, scopes included.
const SESSION: &str = "/v1/sessions/{session_id}";
const INTERACTION: &str = "/v1/sessions/{session_id}/interactions/{interaction_id}";

/// Every route under one session. Nested scopes match the session id (and the interaction id)
/// once per request: actix tries a scope's pattern, then only the routes inside it, where a
/// flat list ran the regex of every earlier route in turn (five of them before an
/// interaction's `/result`; `regex_lite` was 3.5 % of the server's CPU samples at 1,000
/// completions/s).
fn session_routes() -> actix_web::Scope {
    web::scope(SESSION)
        .service(
            resource_in(SESSION, "/v1/sessions/{session_id}", "GET, HEAD, PUT")
                .route(web::put().to(sessions::put))
                .route(web::get().to(sessions::get)),
        )
        .service(
            resource_in(
                SESSION,
                "/v1/sessions/{session_id}/events",
                "GET, HEAD, POST",
            )
            .route(web::post().to(events::post))
            .route(web::get().to(events::list)),
        )
        .service(
            resource_in(
                SESSION,
                "/v1/sessions/{session_id}/interactions",
                "GET, HEAD, POST",
            )
            .route(web::post().to(interactions::create))
            .route(web::get().to(interactions::list)),
        )
        .service(
            resource_in(SESSION, "/v1/sessions/{session_id}/commands", "POST")
                .route(web::post().to(interactions::enqueue_command)),
        )
        .service(
            resource_in(SESSION, "/v1/sessions/{session_id}/commands/next", "POST")
                .route(web::post().to(interactions::next_command)),
        )
        .service(
            web::scope(&INTERACTION[SESSION.len()..])
                .service(
                    resource_in(
                        INTERACTION,
                        "/v1/sessions/{session_id}/interactions/{interaction_id}",
                        "GET, HEAD",
                    )
                    .route(web::get().to(interactions::get)),
                )
                .service(
                    resource_in(
                        INTERACTION,
                        "/v1/sessions/{session_id}/interactions/{interaction_id}/result",
                        "POST",
                    )
                    .route(web::post().to(interactions::result)),
                )
                .service(
                    resource_in(
                        INTERACTION,
                        "/v1/sessions/{session_id}/interactions/{interaction_id}/resolve",
                        "POST",
                    )
                    .route(web::post().to(interactions::resolve)),
                )
                .service(
                    resource_in(
                        INTERACTION,
                        "/v1/sessions/{session_id}/interactions/{interaction_id}/reject",
                        "POST",
                    )
                    .route(web::post().to(interactions::reject)),
                )
                .service(
                    resource_in(
                        INTERACTION,
                        "/v1/sessions/{session_id}/interactions/{interaction_id}/cancel",
                        "POST",
                    )
                    .route(web::post().to(interactions::cancel)),
                )
                .service(
                    resource_in(
                        INTERACTION,
                        "/v1/sessions/{session_id}/interactions/{interaction_id}/wait",
                        "GET, HEAD",
                    )
                    .route(web::get().to(interactions::wait)),
                ),
        )
}

/// The pattern of the route that matched a request, for metrics labels. Routing already
/// found it; `HttpRequest::match_pattern` would run every route's regex again per request.
#[derive(Clone, Copy, Debug)]
pub struct RoutePattern(pub &'static str);

/// A resource whose unmatched methods answer 405 as problem JSON, with the `Allow` header
/// listing `allow` (RFC 9110), and that tells the metrics middleware its [`RoutePattern`].
fn resource(path: &'static str, allow: &'static str) -> actix_web::Resource {
    resource_in("", path, allow)
}

/// [`resource`] inside the scope whose pattern is `scope`: registered by the rest of its
/// `pattern`, labelled with the whole of it.
fn resource_in(
    scope: &'static str,
    pattern: &'static str,
    allow: &'static str,
) -> actix_web::Resource {
    let inside = pattern
        .strip_prefix(scope)
        .unwrap_or_else(|| panic!("route {pattern} is outside its scope {scope}"));
    web::resource(inside)
        .app_data(RoutePattern(pattern))
        .default_service(web::to(move |req: HttpRequest| async move {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                method: req.method().to_string(),
                allow,
            })
        }))
}

/// Marks a request that arrived as `HEAD` and is being routed as `GET`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadRequest;

/// `HEAD` is answered on every `GET` route (RFC 9110 §9.3.2): the request is routed as a `GET`
/// and the connection's codec, which still knows the request was a `HEAD`, sends the headers
/// without the body.
pub async fn answer_head_like_get(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    if req.method() == actix_web::http::Method::HEAD {
        req.head_mut().method = actix_web::http::Method::GET;
        actix_web::HttpMessage::extensions_mut(&req).insert(HeadRequest);
    }
    next.call(req).await
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

/// The members of a JSON object body; an empty body has none.
pub(crate) fn object_fields(body: &[u8]) -> Result<Fields<'_>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Fields::none());
    }
    Fields::of(parse_json(body)?)
        .ok_or_else(|| ApiError::BadRequest("the body must be a JSON object".into()))
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
