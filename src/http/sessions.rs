//! `/v1/sessions`: create-or-get (PUT), read one, and list by newest activity with a cursor.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::bodies::PutSessionBody;
use super::extract::{Json, SessionRef};
use super::{page_limit, read, AppState, CallerScope};
use crate::actors::commands::EnsureSession;
use crate::domain::ids::SessionId;
use crate::domain::json::JsonText;
use crate::domain::session::{Session, SessionStatus};
use crate::domain::time::format_millis;
use crate::http::error::ApiError;
use crate::store::sessions::ActivityCursor;
use crate::store::{self, models::SessionRow};

/// A session as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDto {
    session_id: String,
    /// `active`, `idle` or `ended`.
    status: &'static str,
    external_conversation_id: Option<String>,
    #[schema(value_type = Object)]
    metadata: JsonText,
    created_at: String,
    /// Last activity.
    updated_at: String,
    event_count: i64,
    last_seq: i64,
    interactions: InteractionCountsDto,
    /// The working directory of its latest event that had one (Claude Code's `cwd`).
    project: Option<String>,
    /// The model its events named.
    model: Option<String>,
    /// Its first prompt, up to 200 characters.
    title: Option<String>,
    /// What it is doing by its latest event: `working`, `waiting` (for a person), `stopped`
    /// (its turn is over) or `ended`.
    #[schema(value_type = Option<String>, pattern = "^(working|waiting|stopped|ended)$")]
    activity: Option<crate::domain::activity::Activity>,
}

/// How many of the session's interactions are in each state (`pending` counts queued ones).
#[derive(Debug, Serialize, ToSchema)]
pub struct InteractionCountsDto {
    pending: i64,
    completed: i64,
    timed_out: i64,
    cancelled: i64,
}

/// A page of the session list.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionDto>,
    /// Pass as `after` for the next page; null on the last page.
    next_after: Option<String>,
}

impl From<&Session> for SessionDto {
    fn from(s: &Session) -> Self {
        Self {
            session_id: s.session_id.to_string(),
            status: s.status.as_str(),
            external_conversation_id: s.external_conversation_id.clone(),
            metadata: s.metadata.clone(),
            created_at: format_millis(s.created_at),
            updated_at: format_millis(s.updated_at),
            event_count: s.event_count,
            last_seq: s.last_seq,
            interactions: InteractionCountsDto {
                pending: s.interactions.pending,
                completed: s.interactions.completed,
                timed_out: s.interactions.timed_out,
                cancelled: s.interactions.cancelled,
            },
            project: s.facts.project.clone(),
            model: s.facts.model.clone(),
            title: s.facts.title.clone(),
            activity: s.facts.activity,
        }
    }
}

/// `PUT /v1/sessions/{id}` `{"metadata": {...}}`: 201 when created now, 200 when it existed.
#[utoipa::path(put, operation_id = "put_session", path = "/v1/sessions/{session_id}", tag = "sessions",
    params(crate::http::schemas::SessionPath),
    request_body(content = Option<super::bodies::PutSessionBody>, description = "Optional body"),
    responses(
        (status = 201, description = "Created by this call", body = SessionDto),
        (status = 200, description = "Existed already (metadata unchanged)", body = SessionDto),
        crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::TooLarge,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable
    ))]
pub async fn put(
    SessionRef(key): SessionRef,
    state: web::Data<AppState>,
    Json(body): Json<PutSessionBody>,
) -> Result<HttpResponse, ApiError> {
    let outcome = state
        .sessions
        .ask(key, EnsureSession::try_from(body)?)
        .await?;
    let dto = SessionDto::from(&outcome.session);
    Ok(if outcome.created {
        HttpResponse::Created().json(dto)
    } else {
        HttpResponse::Ok().json(dto)
    })
}

/// `GET /v1/sessions/{id}`.
#[utoipa::path(get, operation_id = "get_session", path = "/v1/sessions/{session_id}", tag = "sessions",
    params(crate::http::schemas::SessionPath),
    responses((status = 200, description = "The session", body = SessionDto), crate::http::schemas::Unauthorized,
        crate::http::schemas::NotFound,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable))]
pub async fn get(
    SessionRef(key): SessionRef,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let session = find_session(&state, &key.scope, &key.session_id).await?;
    Ok(HttpResponse::Ok().json(SessionDto::from(&session)))
}

/// Reads a session, or 404 in the caller's scope: from its live actor's committed state when
/// there is one (so a thousand pollers of a hot session cost no database reads), else from
/// the database.
pub(crate) async fn find_session(
    state: &AppState,
    scope: &str,
    session_id: &SessionId,
) -> Result<Session, ApiError> {
    let key = crate::actors::messages::SessionKey {
        scope: scope.to_owned(),
        session_id: session_id.clone(),
    };
    if let Some(snapshot) = state.sessions.peek(key).await {
        crate::metrics::SESSION_READS
            .with_label_values(&["memory"])
            .inc();
        return snapshot.ok_or_else(|| ApiError::SessionNotFound(session_id.to_string()));
    }
    crate::metrics::SESSION_READS
        .with_label_values(&["database"])
        .inc();
    let (scope_owned, id) = (scope.to_owned(), session_id.as_str().to_owned());
    let row = read(state, move |conn| {
        store::sessions::find(conn, &scope_owned, &id)?
            .map(SessionRow::into_session)
            .transpose()
    })
    .await?;
    row.ok_or_else(|| ApiError::SessionNotFound(session_id.to_string()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `active`, `idle` or `ended`.
    #[param(pattern = "^(active|idle|ended)$")]
    status: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The opaque cursor from the previous page's `next_after`.
    after: Option<String>,
}

/// `GET /v1/sessions?status=&limit=&after=`: newest activity first.
#[utoipa::path(get, operation_id = "list_sessions", path = "/v1/sessions", tag = "sessions", params(ListQuery),
    responses((status = 200, description = "Newest activity first", body = SessionList), crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::Unavailable))]
pub async fn list(
    scope: CallerScope,
    state: web::Data<AppState>,
    query: super::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(SessionStatus::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!("status must be active, idle or ended, not {s:?}"))
        })?),
    };
    // An empty `after` is no cursor: the first page.
    let after = query
        .after
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(decode_cursor)
        .transpose()?;
    let scope = scope.0;
    let max_bytes = state.limits.max_page_bytes;
    let (page, has_more) = read(&state, move |conn| {
        let status = status.map(SessionStatus::as_str);
        let (rows, more) =
            store::sessions::page(conn, &scope, status, after.as_ref(), limit, max_bytes)?;
        let sessions = rows
            .into_iter()
            .map(SessionRow::into_session)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((sessions, more))
    })
    .await?;
    let next_after = match (has_more, page.last()) {
        (true, Some(last)) => Some(encode_cursor(&ActivityCursor {
            updated_at: last.updated_at,
            session_id: last.session_id.to_string(),
        })),
        _ => None,
    };
    let sessions: Vec<SessionDto> = page.iter().map(SessionDto::from).collect();
    Ok(HttpResponse::Ok().json(SessionList {
        sessions,
        next_after,
    }))
}

/// The opaque cursor: hex of `updated_at:session_id`, so clients cannot lean on its shape.
fn encode_cursor(cursor: &ActivityCursor) -> String {
    format!("{}:{}", cursor.updated_at, cursor.session_id)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_cursor(raw: &str) -> Result<ActivityCursor, ApiError> {
    let bad = || ApiError::BadRequest("after: not a cursor this server gave out".into());
    if !raw.len().is_multiple_of(2) || raw.len() > 600 {
        return Err(bad());
    }
    let bytes = (0..raw.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(raw.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (updated_at, session_id) = text.split_once(':').ok_or_else(bad)?;
    Ok(ActivityCursor {
        updated_at: updated_at.parse().map_err(|_| bad())?,
        session_id: SessionId::parse(session_id)
            .map_err(|_| bad())?
            .into_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = ActivityCursor {
            updated_at: 1_700_000_000_123,
            session_id: "s:1".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&c)).unwrap(), c);
        for bad in ["", "zz", "abc", "3132", "313a", "3a3a"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
