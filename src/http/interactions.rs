//! `/v1/sessions/{id}/interactions` and `/v1/sessions/{id}/commands`: create, decide, cancel,
//! wait, and the command queue. Every change goes through the session actor; reads of a single
//! interaction or a listing come from the database.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::bodies::{NewCommandBody, NewInteractionBody, RejectBody, ResolveBody, ResultBody};
use super::dto::InteractionDto;
use super::extract::{InteractionRef, Json, SessionRef};
use super::sessions::find_session;
use super::{page_limit, read, AppState};
use crate::actors::commands::{
    ActOnInteraction, Action, CreateInteraction, NextCommand, WaitForInteraction,
};
use crate::actors::messages::SessionKey;
use crate::domain::ids::InteractionId;
use crate::domain::interaction::{CommandFilter, Decision, Interaction, InteractionStatus};
use crate::http::error::ApiError;
use crate::store::{self, models::InteractionRow};

/// The longest `wait` and `commands/next` long-poll.
const MAX_WAIT_MS: u64 = 60_000;

/// The answer to result, resolve, reject and cancel.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResponse {
    /// This call completed the interaction.
    completed_now: bool,
    interaction: InteractionDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InteractionList {
    interactions: Vec<InteractionDto>,
    /// Pass as `after` for the next page; null on the last page. A page ends early when more
    /// would pass the page size limit (`ORCH_MAX_PAGE_BYTES`).
    next_after: Option<String>,
}

fn created(session_id: &str, (interaction, created): (Interaction, bool)) -> HttpResponse {
    let dto = InteractionDto::new(session_id, &interaction);
    if created {
        HttpResponse::Created().json(dto)
    } else {
        HttpResponse::Ok().json(dto)
    }
}

/// `POST /v1/sessions/{id}/interactions {"interaction_id"?, "kind", "payload"?, "timeout_ms"?}`
#[utoipa::path(post, operation_id = "create_interaction", path = "/v1/sessions/{session_id}/interactions", tag = "interactions",
    params(crate::http::schemas::SessionPath),
    request_body(content = super::bodies::NewInteractionBody),
    responses(
        (status = 201, description = "Created, pending", body = InteractionDto),
        (status = 200, description = "Existed already", body = InteractionDto),
        crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::NotFound,
        crate::http::schemas::TooLarge,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable
    ))]
pub async fn create(
    SessionRef(key): SessionRef,
    state: web::Data<AppState>,
    Json(body): Json<NewInteractionBody>,
) -> Result<HttpResponse, ApiError> {
    let command = body.into_command(state.default_interaction_timeout_ms)?;
    create_interaction(&state, key, command).await
}

/// Creates an interaction (or finds the existing one): 201 or 200 with it.
async fn create_interaction(
    state: &AppState,
    key: SessionKey,
    command: CreateInteraction,
) -> Result<HttpResponse, ApiError> {
    let sid = key.session_id.to_string();
    Ok(created(&sid, state.sessions.ask(key, command).await?))
}

/// `POST /v1/sessions/{id}/commands {"interaction_id"?, "payload", "timeout_ms"?}`: queued.
#[utoipa::path(post, path = "/v1/sessions/{session_id}/commands", tag = "commands",
    params(crate::http::schemas::SessionPath),
    request_body(content = super::bodies::NewCommandBody),
    responses(
        (status = 201, description = "Queued", body = InteractionDto),
        (status = 200, description = "Existed already", body = InteractionDto),
        crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::NotFound,
        crate::http::schemas::TooLarge,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable
    ))]
pub async fn enqueue_command(
    SessionRef(key): SessionRef,
    state: web::Data<AppState>,
    Json(body): Json<NewCommandBody>,
) -> Result<HttpResponse, ApiError> {
    let command = body.into_command(state.default_interaction_timeout_ms)?;
    create_interaction(&state, key, command).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Max 60000, default 30000.
    #[param(maximum = 60000)]
    timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NextQuery {
    /// Wait up to this long for a command (max 60000, default 0).
    #[param(maximum = 60000)]
    wait_ms: Option<u64>,
    /// Take only commands whose payload has a non-empty string `prompt` (the next instruction
    /// for an agent), leaving the others to executors.
    with_prompt: Option<bool>,
}

fn wait_duration(value: Option<u64>, default_ms: u64, name: &str) -> Result<Duration, ApiError> {
    match value {
        None => Ok(Duration::from_millis(default_ms)),
        Some(ms) if ms <= MAX_WAIT_MS => Ok(Duration::from_millis(ms)),
        Some(ms) => Err(ApiError::BadRequest(format!(
            "{name} must be at most {MAX_WAIT_MS}, not {ms}"
        ))),
    }
}

/// `POST /v1/sessions/{id}/commands/next?wait_ms=`: 200 with the command now pending, or 204.
#[utoipa::path(post, path = "/v1/sessions/{session_id}/commands/next", tag = "commands",
    params(crate::http::schemas::SessionPath, NextQuery),
    responses(
        (status = 200, description = "The oldest queued command, now pending", body = InteractionDto),
        (status = 204, description = "None available within wait_ms"),
        crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::NotFound,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable
    ))]
pub async fn next_command(
    SessionRef(key): SessionRef,
    state: web::Data<AppState>,
    query: super::Query<NextQuery>,
) -> Result<HttpResponse, ApiError> {
    let wait = wait_duration(query.wait_ms, 0, "wait_ms")?;
    let takes = match query.with_prompt {
        Some(true) => CommandFilter::Prompts,
        Some(false) | None => CommandFilter::Any,
    };
    let sid = key.session_id.to_string();
    let mut stopping = state.shutdown.clone();
    let handed_out = tokio::select! {
        handed_out = state.sessions.ask(key, NextCommand { wait, takes }) => handed_out?,
        // The server is stopping: nothing is handed out (dropping the wait releases it).
        () = stopping.stopping() => None,
    };
    Ok(match handed_out {
        Some(command) => HttpResponse::Ok().json(InteractionDto::new(&sid, &command)),
        None => HttpResponse::NoContent().finish(),
    })
}

async fn act(
    state: &AppState,
    key: SessionKey,
    id: InteractionId,
    action: Action,
) -> Result<HttpResponse, ApiError> {
    let sid = key.session_id.to_string();
    let answer = state
        .sessions
        .ask(key, ActOnInteraction { id, action })
        .await;
    let outcome = answer?;
    Ok(HttpResponse::Ok().json(ActionResponse {
        completed_now: outcome.completed_now,
        interaction: InteractionDto::new(&sid, &outcome.interaction),
    }))
}

/// `POST …/interactions/{iid}/result {"status": "ok"|"error", "output": any}`
#[utoipa::path(post, operation_id = "post_interaction_result", path = "/v1/sessions/{session_id}/interactions/{interaction_id}/result", tag = "interactions",
    params(crate::http::schemas::InteractionPath),
    request_body(content = super::bodies::ResultBody, description = "Result of a command: status ok or error"),
    responses((status = 200, description = "Accepted", body = ActionResponse), crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::NotFound,
        crate::http::schemas::Conflict,
        crate::http::schemas::TooLarge,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable))]
pub async fn result(
    InteractionRef(key, id): InteractionRef,
    state: web::Data<AppState>,
    Json(body): Json<ResultBody>,
) -> Result<HttpResponse, ApiError> {
    act(&state, key, id, Action::Decide(Decision::try_from(body)?)).await
}

/// `POST …/interactions/{iid}/resolve {"response": any}`: approved.
#[utoipa::path(post, operation_id = "resolve_interaction", path = "/v1/sessions/{session_id}/interactions/{interaction_id}/resolve", tag = "interactions",
    params(crate::http::schemas::InteractionPath),
    request_body(content = super::bodies::ResolveBody, description = "Approve"),
    responses((status = 200, description = "Accepted", body = ActionResponse), crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::NotFound,
        crate::http::schemas::Conflict,
        crate::http::schemas::TooLarge,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable))]
pub async fn resolve(
    InteractionRef(key, id): InteractionRef,
    state: web::Data<AppState>,
    Json(body): Json<ResolveBody>,
) -> Result<HttpResponse, ApiError> {
    act(&state, key, id, Action::Decide(Decision::try_from(body)?)).await
}

/// `POST …/interactions/{iid}/reject {"reason": string}`: rejected.
#[utoipa::path(post, operation_id = "reject_interaction", path = "/v1/sessions/{session_id}/interactions/{interaction_id}/reject", tag = "interactions",
    params(crate::http::schemas::InteractionPath),
    request_body(content = super::bodies::RejectBody, description = "Reject"),
    responses((status = 200, description = "Accepted", body = ActionResponse), crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::NotFound,
        crate::http::schemas::Conflict,
        crate::http::schemas::TooLarge,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable))]
pub async fn reject(
    InteractionRef(key, id): InteractionRef,
    state: web::Data<AppState>,
    Json(body): Json<RejectBody>,
) -> Result<HttpResponse, ApiError> {
    act(&state, key, id, Action::Decide(Decision::try_from(body)?)).await
}

/// `POST …/interactions/{iid}/cancel`
#[utoipa::path(post, operation_id = "cancel_interaction", path = "/v1/sessions/{session_id}/interactions/{interaction_id}/cancel", tag = "interactions",
    params(crate::http::schemas::InteractionPath),
    responses((status = 200, description = "Cancelled (or already cancelled)", body = ActionResponse), crate::http::schemas::Unauthorized,
        crate::http::schemas::NotFound,
        crate::http::schemas::Conflict,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable))]
pub async fn cancel(
    InteractionRef(key, id): InteractionRef,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    act(&state, key, id, Action::Cancel).await
}

/// Reads one interaction, or the right 404.
pub(crate) async fn find_interaction(
    state: &AppState,
    key: &SessionKey,
    id: &InteractionId,
) -> Result<Interaction, ApiError> {
    find_session(state, &key.scope, &key.session_id).await?;
    let (scope, sid, iid) = (
        key.scope.clone(),
        key.session_id.to_string(),
        id.to_string(),
    );
    let row = read(state, move |conn| {
        store::interactions::find(conn, &scope, &sid, &iid)?
            .map(InteractionRow::into_interaction)
            .transpose()
    })
    .await?;
    row.ok_or_else(|| ApiError::InteractionNotFound(id.to_string()))
}

/// `GET …/interactions/{iid}`
#[utoipa::path(get, operation_id = "get_interaction", path = "/v1/sessions/{session_id}/interactions/{interaction_id}", tag = "interactions",
    params(crate::http::schemas::InteractionPath),
    responses((status = 200, description = "The interaction", body = InteractionDto), crate::http::schemas::Unauthorized,
        crate::http::schemas::NotFound,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable))]
pub async fn get(
    InteractionRef(key, id): InteractionRef,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let interaction = find_interaction(&state, &key, &id).await?;
    Ok(HttpResponse::Ok().json(InteractionDto::new(key.session_id.as_str(), &interaction)))
}

/// `GET …/interactions/{iid}/wait?timeout_ms=`: as soon as it is no longer queued/pending, or
/// at the timeout with its current state. The session actor wakes the waiter; nothing polls.
#[utoipa::path(get, operation_id = "wait_for_interaction", path = "/v1/sessions/{session_id}/interactions/{interaction_id}/wait", tag = "interactions",
    params(crate::http::schemas::InteractionPath, WaitQuery),
    responses((status = 200, description = "No longer queued/pending, or its state at the timeout", body = InteractionDto), crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::NotFound,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable))]
pub async fn wait(
    InteractionRef(key, id): InteractionRef,
    state: web::Data<AppState>,
    query: super::Query<WaitQuery>,
) -> Result<HttpResponse, ApiError> {
    let timeout = wait_duration(query.timeout_ms, 30_000, "timeout_ms")?;
    let sid = key.session_id.to_string();
    let interaction = wait_for_interaction(&state, key, id, timeout).await?;
    Ok(HttpResponse::Ok().json(InteractionDto::new(&sid, &interaction)))
}

/// The interaction once it is no longer queued or pending, or as it is at `timeout` (or when
/// the server stops).
pub(crate) async fn wait_for_interaction(
    state: &AppState,
    key: SessionKey,
    id: InteractionId,
    timeout: Duration,
) -> Result<Interaction, ApiError> {
    let waiting = state
        .sessions
        .ask(key.clone(), WaitForInteraction { id: id.clone() });
    let mut stopping = state.shutdown.clone();
    let finished = tokio::select! {
        finished = actix_rt::time::timeout(timeout, waiting) => finished.ok(),
        () = stopping.stopping() => None,
    };
    match finished {
        Some(done) => Ok(done?),
        // Still open at the timeout or the server's stop: its current state (dropping the
        // wait releases the waiter).
        None => find_interaction(state, &key, &id).await,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `queued`, `pending`, `completed`, `timed_out` or `cancelled`.
    #[param(pattern = "^(queued|pending|completed|timed_out|cancelled)$")]
    status: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// An interaction id: the page starts after it (`next_after` of the previous page).
    #[param(value_type = Option<InteractionId>, inline)]
    after: Option<String>,
}

/// `GET /v1/sessions/{id}/interactions?status=&limit=&after=`, in creation order.
#[utoipa::path(get, operation_id = "list_interactions", path = "/v1/sessions/{session_id}/interactions", tag = "interactions",
    params(crate::http::schemas::SessionPath, ListQuery),
    responses((status = 200, description = "In creation order", body = InteractionList), crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::NotFound,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable))]
pub async fn list(
    SessionRef(key): SessionRef,
    state: web::Data<AppState>,
    query: super::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(InteractionStatus::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "status must be queued, pending, completed, timed_out or cancelled, not {s:?}"
            ))
        })?),
    };
    let after = query
        .after
        .filter(|a| !a.is_empty())
        .map(|a| InteractionId::parse(&a).map_err(|e| ApiError::BadRequest(e.detail)))
        .transpose()?;
    find_session(&state, &key.scope, &key.session_id).await?;
    let sid = key.session_id.to_string();
    let (scope, sid_owned) = (key.scope.clone(), sid.clone());
    let max_bytes = state.limits.max_page_bytes;
    let page = read(&state, move |conn| {
        let after_position = match &after {
            None => None,
            Some(id) => {
                match store::interactions::position_of(conn, &scope, &sid_owned, id.as_str())? {
                    Some(position) => Some(position),
                    None => return Ok(None),
                }
            }
        };
        let status = status.map(|s| s.as_str());
        let (rows, more) = store::interactions::page(
            conn,
            &scope,
            &sid_owned,
            status,
            after_position,
            limit,
            max_bytes,
        )?;
        let rows = rows
            .into_iter()
            .map(InteractionRow::into_interaction)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((rows, more)))
    })
    .await?;
    let Some((rows, more)) = page else {
        return Err(ApiError::BadRequest(
            "after: no such interaction in this session".into(),
        ));
    };
    let next_after = rows.last().filter(|_| more).map(|last| last.id.to_string());
    let interactions: Vec<InteractionDto> =
        rows.iter().map(|i| InteractionDto::new(&sid, i)).collect();
    Ok(HttpResponse::Ok().json(InteractionList {
        interactions,
        next_after,
    }))
}
