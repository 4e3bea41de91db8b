//! Any node answers any request (cluster mode): a request for a session whose partition another
//! node holds is sent on to that node over HTTP, and its answer is the answer. Every route
//! under `/v1/sessions/{session_id}` passes through [`to_owner`]; the Claude Code hook route,
//! whose session is in its body, calls [`elsewhere`] once it has read it. A forwarded request
//! carries [`FORWARDED`], and a node never forwards one again: if ownership moved meanwhile
//! it answers 503 `not_owner` and the client retries.

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;

use super::auth::scope_of;
use super::error::{ApiError, NOT_OWNER};
use super::AppState;
use crate::cluster::partition::partition_of;

/// Marks a request one node sent on to another; its value is the sending node's id.
pub const FORWARDED: HeaderName = HeaderName::from_static("x-orchestrator-forwarded");

/// The longest a forwarded request may take: a long-poll's longest wait and some.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(75);

/// Headers that describe one connection, not the request; the Host and Origin the first node
/// checked (the owner checks its own Host); and the body's length, which the client sets.
const NOT_FORWARDED: [HeaderName; 8] = [
    header::HOST,
    header::ORIGIN,
    header::CONNECTION,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::TE,
    header::UPGRADE,
    header::ACCEPT_ENCODING,
];

/// How long an idle connection to another node is kept for reuse: under the nodes' own
/// keep-alive (actix-http's 5 s), so that a request is not sent on a connection the other node
/// is closing just then (awc's default is 15 s).
const IDLE_CONNECTION_KEPT: Duration = Duration::from_secs(4);

thread_local! {
    /// One client per worker thread, so connections to the other nodes are kept and reused.
    static CLIENT: awc::Client = awc::Client::builder()
        .connector(awc::Connector::new().conn_keep_alive(IDLE_CONNECTION_KEPT))
        .disable_redirects()
        .timeout(FORWARD_TIMEOUT)
        .finish();
}

/// Where a request for session `session_id` of `scope` is served, when not here: the owner's
/// address (from the lease keeper's last round, else from the database), or
/// [`ApiError::NotOwner`] when nobody holds the partition (it is changing hands). `None`:
/// serve it here, also when the request was forwarded already.
async fn destination(
    state: &AppState,
    req: &HttpRequest,
    scope: &str,
    session_id: &str,
) -> Result<Option<(u32, Arc<str>)>, ApiError> {
    let Some(cluster) = &state.cluster else {
        return Ok(None);
    };
    let ownership = &cluster.ownership;
    let partitions = ownership.partitions();
    if partitions == 0 {
        return Err(ApiError::NotOwner);
    }
    let partition = partition_of(scope, session_id, partitions);
    if ownership.epoch_of(partition).is_some() || req.headers().contains_key(FORWARDED) {
        // Held here; or sent here by a node that thought so: the session actors answer, and
        // refuse with 503 `not_owner` when this node does not hold it after all.
        return Ok(None);
    }
    if let Some(url) = ownership.owner_url(partition) {
        return Ok(Some((partition, url)));
    }
    match current_owner(state, partition).await? {
        Some(url) => Ok(Some((partition, url))),
        None => Err(ApiError::NotOwner),
    }
}

/// The address of `partition`'s owner as the database has it now.
async fn current_owner(state: &AppState, partition: u32) -> Result<Option<Arc<str>>, ApiError> {
    let url = super::read(state, move |conn| match conn {
        crate::store::DbConnection::Pg(pg) => Ok(crate::store::leases::owner_url(pg, partition)?),
        crate::store::DbConnection::Sqlite(_) => Ok(None),
    })
    .await?;
    Ok(url.map(Arc::from))
}

/// The session a `/v1/sessions/{session_id}/…` path names, as the handlers' extractors read it.
#[derive(Deserialize)]
struct SessionPath {
    session_id: String,
}

/// Middleware of the per-session routes: serves the request here, or sends it to the node that
/// holds its session's partition.
pub async fn to_owner(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // A node that holds every partition (a cluster of one) serves everything itself.
    let holds_all = state
        .cluster
        .as_ref()
        .is_none_or(|c| c.ownership.holds_all());
    if holds_all && !req.headers().contains_key(FORWARDED) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    // A request the handlers will refuse (no key, a malformed id) is refused here, by them.
    let scope = scope_of(req.request()).ok();
    let path: Option<SessionPath> = req.match_info().load().ok();
    let (Some(scope), Some(path)) = (scope, path) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let owner = match destination(&state, req.request(), &scope.0, &path.session_id).await {
        Ok(None) => return Ok(next.call(req).await?.map_into_boxed_body()),
        Ok(Some(owner)) => owner,
        Err(refusal) => return Ok(req.into_response(refusal.error_response())),
    };
    let payload = req.take_payload();
    let body = match super::extract::read_body(req.request(), payload, &state.limits).await {
        Ok(body) => body,
        Err(refusal) => return Ok(req.into_response(refusal.error_response())),
    };
    let response = send(&state, req.request(), owner, body).await;
    Ok(req.into_response(response))
}

/// For a handler that finds its session in the body: the owner's answer when another node
/// holds the session's partition, `None` when it is served here.
pub async fn elsewhere(
    state: &AppState,
    req: &HttpRequest,
    scope: &str,
    session_id: &str,
    body: web::Bytes,
) -> Result<Option<HttpResponse>, ApiError> {
    match destination(state, req, scope, session_id).await? {
        None => Ok(None),
        Some(owner) => Ok(Some(send(state, req, owner, body).await)),
    }
}

/// Sends the request on to the partition's owner and gives back its answer. When that node
/// answers that it no longer holds the partition (the keeper's view was a round old), the
/// owner is looked up in the database and asked once more; 503 `not_owner` when the owner
/// cannot be reached (the client retries, and by then the partition may have moved).
async fn send(
    state: &AppState,
    req: &HttpRequest,
    (partition, owner): (u32, Arc<str>),
    body: web::Bytes,
) -> HttpResponse {
    let first = send_to(state, req, &owner, body.clone()).await;
    if !is_not_owner(&first) {
        return first;
    }
    match current_owner(state, partition).await {
        Ok(Some(current)) if current != owner => send_to(state, req, &current, body).await,
        _ => first,
    }
}

/// The node's answer says it does not hold the session's partition.
fn is_not_owner(answer: &HttpResponse) -> bool {
    answer.status() == actix_web::http::StatusCode::SERVICE_UNAVAILABLE
        && answer.headers().contains_key(NOT_OWNER)
}

/// Sends the request to `owner` once, marked as forwarded, and makes its answer this node's.
async fn send_to(
    state: &AppState,
    req: &HttpRequest,
    owner: &str,
    body: web::Bytes,
) -> HttpResponse {
    let target = match req.uri().path_and_query() {
        Some(path) => format!("{owner}{path}"),
        None => format!("{owner}{}", req.path()),
    };
    let node_id = state.cluster.as_ref().map_or("", |c| &*c.node_id);
    let mut request = CLIENT.with(|client| client.request(req.method().clone(), &target));
    for (name, value) in req.headers() {
        if !NOT_FORWARDED.contains(name) && *name != FORWARDED {
            request = request.append_header((name.clone(), value.clone()));
        }
    }
    request = request.insert_header((FORWARDED, node_id));
    let mut answer = match request.send_body(body).await {
        Ok(answer) => answer,
        Err(e) => return unreachable_owner(owner, &e.to_string()),
    };
    let limit = state.limits.max_page_bytes.saturating_mul(2) + 1024 * 1024;
    let bytes = match answer.body().limit(limit).await {
        Ok(bytes) => bytes,
        Err(e) => return unreachable_owner(owner, &e.to_string()),
    };
    crate::metrics::FORWARDED_REQUESTS.inc();
    let mut response = HttpResponse::build(answer.status());
    for (name, value) in answer.headers() {
        if !NOT_FORWARDED.contains(name) {
            response.append_header((name.clone(), value.clone()));
        }
    }
    response.body(bytes)
}

fn unreachable_owner(owner: &str, why: &str) -> HttpResponse {
    crate::metrics::FORWARDS_FAILED.inc();
    crate::log_limited!(
        log::Level::Warn,
        "forwarding to the session's owner at {owner} failed: {why}"
    );
    ApiError::NotOwner.error_response()
}
