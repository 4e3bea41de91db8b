//! `/v1/sessions/{id}/events`: append (single or batch) through the session actor, and the
//! filtered listing read from the database.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::extract::{Json, SessionRef};
use super::sessions::find_session;
use super::{page_limit, read, AppState};
use crate::actors::commands::AppendEvents;
use crate::domain::event::EventsBody;
use crate::domain::ids::{EventType, InteractionId};
use crate::domain::time::{format_micros, format_millis};
use crate::http::error::ApiError;
use crate::store::{self, events::EventFilter, models::EventRow};

/// `POST /v1/sessions/{id}/events`: 201 when something new was stored, 200 when all were
/// duplicates.
#[utoipa::path(post, operation_id = "post_events", path = "/v1/sessions/{session_id}/events", tag = "events",
    params(crate::http::schemas::SessionPath),
    request_body(content = crate::domain::event::EventsBody, description = "One event, or {\"events\": [...]}"),
    responses(
        (status = 201, description = "Stored (committed)", body = AppendResponse),
        (status = 200, description = "Every event was a duplicate", body = AppendResponse),
        crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::TooLarge,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable
    ))]
pub async fn post(
    SessionRef(key): SessionRef,
    state: web::Data<AppState>,
    Json(body): Json<EventsBody>,
) -> Result<HttpResponse, ApiError> {
    let events = body.into_events(state.limits.max_batch_events)?;
    let session_id = key.session_id.to_string();
    let outcome = state.sessions.ask(key, AppendEvents { events }).await?;
    let body = AppendResponse {
        session_id,
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
        event_count: outcome.event_count,
        last_seq: outcome.last_seq,
        events: outcome
            .events
            .iter()
            .map(|a| EventAckDto {
                seq: a.seq,
                duplicate: a.duplicate,
            })
            .collect(),
    };
    Ok(if outcome.accepted > 0 {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// What a POST of events stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppendResponse {
    session_id: String,
    /// Events stored by this request.
    accepted: usize,
    duplicates: usize,
    event_count: i64,
    last_seq: i64,
    /// One per request event, in request order.
    events: Vec<EventAckDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventAckDto {
    /// The stored seq; for a duplicate, the stored original's.
    seq: i64,
    duplicate: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    events: Vec<EventDto>,
    /// The page ended early because more would have passed the page size limit
    /// (`ORCH_MAX_PAGE_BYTES`); more events match. Go on after the last `seq` (ascending) or
    /// at `offset` plus this page's length (descending).
    truncated: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(value_type = Option<EventType>, inline)]
    event_type: Option<String>,
    #[param(value_type = Option<InteractionId>, inline)]
    interaction_id: Option<String>,
    /// Only events with a greater seq: how a poller asks "what is new".
    #[param(minimum = 0)]
    after_seq: Option<i64>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    #[param(minimum = 0)]
    offset: Option<i64>,
    /// `asc` (default) or `desc`.
    #[param(pattern = "^(asc|desc)$")]
    order: Option<String>,
}

/// A stored event as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDto {
    seq: i64,
    event_id: Option<String>,
    event_type: String,
    timestamp: String,
    received_at: String,
    interaction_id: Option<String>,
    sequence: Option<i64>,
    out_of_order: bool,
    /// Stored JSON text, sent as it is rather than parsed and re-serialized.
    #[schema(value_type = Option<Object>)]
    data: Box<RawValue>,
}

impl TryFrom<EventRow> for EventDto {
    type Error = ApiError;

    fn try_from(row: EventRow) -> Result<Self, ApiError> {
        let data = RawValue::from_string(row.data).map_err(|e| {
            crate::log_limited!(
                log::Level::Error,
                "event seq {} of session key {}: stored data is not JSON: {e}",
                row.seq,
                row.session_key
            );
            ApiError::StorageUnavailable
        })?;
        Ok(Self {
            seq: row.seq,
            event_id: row.event_id,
            event_type: row.event_type,
            timestamp: format_micros(row.occurred_at_us),
            received_at: format_millis(row.received_at),
            interaction_id: row.interaction_id,
            sequence: row.sequence,
            out_of_order: row.out_of_order,
            data,
        })
    }
}

/// `GET /v1/sessions/{id}/events?event_type=&interaction_id=&after_seq=&limit=&offset=&order=`.
#[utoipa::path(get, operation_id = "list_events", path = "/v1/sessions/{session_id}/events", tag = "events",
    params(crate::http::schemas::SessionPath, ListQuery),
    responses((status = 200, description = "Ordered by seq", body = EventList), crate::http::schemas::BadRequest,
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
    let bad = |what: &str| ApiError::BadRequest(what.to_owned());
    let filter = EventFilter {
        event_type: query
            .event_type
            .map(|t| EventType::parse(&t).map(EventType::into_string))
            .transpose()
            .map_err(|e| bad(&e.detail))?,
        interaction_id: query
            .interaction_id
            .map(|i| InteractionId::parse(&i).map(InteractionId::into_string))
            .transpose()
            .map_err(|e| bad(&e.detail))?,
        after_seq: match query.after_seq {
            Some(n) if n < 0 => return Err(bad("after_seq must not be negative")),
            other => other,
        },
        limit: page_limit(query.limit)?,
        offset: match query.offset {
            Some(n) if n < 0 => return Err(bad("offset must not be negative")),
            other => other.unwrap_or(0),
        },
        descending: match query.order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(bad("order must be asc or desc")),
        },
    };
    let session = find_session(&state, &key.scope, &key.session_id).await?;
    // "Anything after N?" when N is the newest: answered from the session's state alone.
    if filter
        .after_seq
        .is_some_and(|after| after >= session.last_seq)
        && !filter.descending
    {
        return Ok(HttpResponse::Ok().json(EventList {
            events: Vec::new(),
            truncated: false,
        }));
    }
    let max_bytes = state.limits.max_page_bytes;
    let (rows, truncated) = read(&state, move |conn| {
        Ok(store::events::list(
            conn,
            &key.scope,
            key.session_id.as_str(),
            &filter,
            max_bytes,
        )?)
    })
    .await?;
    let events = rows
        .into_iter()
        .map(EventDto::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(EventList { events, truncated }))
}
