//! Reads across all of a caller's sessions: `GET /v1/events` (the newest events, filtered and
//! searched, a page at a time) and `GET /v1/activity` (events per minute per session). Both
//! read `event_search`, written with the events themselves, so what they show is committed.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::events::EventDto;
use super::{read, AppState, CallerScope};
use crate::domain::ids::{EventType, SessionId};
use crate::domain::search::SearchQuery;
use crate::domain::time::{format_millis, now_millis, parse_rfc3339_micros};
use crate::http::error::ApiError;
use crate::store::search::{self, Cursor, SearchFilter};

/// The most results a page of `GET /v1/events` holds.
const MAX_RESULTS: i64 = 200;
/// The longest window `GET /v1/activity` counts, in minutes.
const MAX_ACTIVITY_MINUTES: usize = 60;
/// The most sessions `GET /v1/activity` lists by name; the rest are summed in `others`.
const MAX_ACTIVITY_SESSIONS: usize = 50;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Search text: every word must appear in the event's tool, command, path, pattern,
    /// prompt, message or reply (`src/main.rs` as a phrase; the last word as a prefix).
    #[param(max_length = 256)]
    q: Option<String>,
    #[param(value_type = Option<EventType>, inline)]
    event_type: Option<String>,
    /// The tool an event is about (`data.tool_name`), e.g. `Bash`.
    #[param(max_length = 64)]
    tool: Option<String>,
    session_id: Option<String>,
    /// The session's project: its working directory, exactly as the session's `project`.
    #[param(max_length = 512)]
    project: Option<String>,
    /// Received at or after this time (RFC 3339).
    since: Option<String>,
    /// Received before this time (RFC 3339).
    until: Option<String>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FoundEvent {
    session_id: String,
    #[serde(flatten)]
    event: EventDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// Newest first (by when the service received them).
    events: Vec<FoundEvent>,
    /// Pass as `after` for the next page; absent on the last one.
    next: Option<String>,
    /// The page ended early to stay within `ORCH_MAX_PAGE_BYTES`.
    truncated: bool,
}

fn bad(what: impl Into<String>) -> ApiError {
    ApiError::BadRequest(what.into())
}

fn time_param(name: &str, value: Option<String>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            parse_rfc3339_micros(&v)
                .map(|micros| micros.div_euclid(1000))
                .ok_or_else(|| bad(format!("{name} must be an RFC 3339 time")))
        })
        .transpose()
}

impl SearchParams {
    fn filter(self) -> Result<SearchFilter, ApiError> {
        let text = match self.q.as_deref() {
            Some(q) => SearchQuery::parse(q).map_err(|e| bad(e.detail))?,
            None => None,
        };
        let tool = match self.tool {
            Some(t) if t.is_empty() || t.len() > 64 => {
                return Err(bad("tool must be 1 to 64 bytes"));
            }
            other => other,
        };
        let project = match self.project {
            Some(p) if p.is_empty() || p.len() > 512 => {
                return Err(bad("project must be 1 to 512 bytes"));
            }
            other => other,
        };
        Ok(SearchFilter {
            text,
            project,
            event_type: self
                .event_type
                .map(|t| EventType::parse(&t).map(EventType::into_string))
                .transpose()
                .map_err(|e| bad(e.detail))?,
            tool,
            session_id: self
                .session_id
                .map(|s| SessionId::parse(&s).map(|id| id.to_string()))
                .transpose()
                .map_err(|e| bad(e.detail))?,
            since: time_param("since", self.since)?,
            until: time_param("until", self.until)?,
            after: self
                .after
                .map(|a| Cursor::decode(&a).ok_or_else(|| bad("after must be a page's next")))
                .transpose()?,
            limit: match self.limit {
                None => 50,
                Some(n) if (1..=MAX_RESULTS).contains(&n) => n,
                Some(n) => {
                    return Err(bad(format!(
                        "limit must be between 1 and {MAX_RESULTS}, not {n}"
                    )))
                }
            },
        })
    }
}

/// `GET /v1/events?q=&event_type=&tool=&session_id=&project=&since=&until=&after=&limit=`.
#[utoipa::path(get, operation_id = "search_events", path = "/v1/events", tag = "events",
    params(SearchParams),
    responses((status = 200, description = "Newest first", body = SearchResults),
        crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::Unavailable))]
pub async fn events(
    scope: CallerScope,
    state: web::Data<AppState>,
    params: super::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let filter = params.into_inner().filter()?;
    let max_bytes = state.limits.max_page_bytes;
    let page = read(&state, move |conn| {
        Ok(search::find(conn, &scope.0, &filter, max_bytes)?)
    })
    .await?;
    let events = page
        .found
        .into_iter()
        .map(|f| {
            Ok(FoundEvent {
                session_id: f.session_id,
                event: EventDto::try_from(f.event)?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(HttpResponse::Ok().json(SearchResults {
        events,
        next: page.next.map(|c| c.encode()),
        truncated: page.truncated,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// The window in minutes, 1 to 60, default 15.
    #[param(minimum = 1, maximum = 60)]
    minutes: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Activity {
    /// The start of the first minute counted.
    from: String,
    /// Minutes counted; every series has this many counts, oldest first. The last minute is
    /// the current one, still under way.
    minutes: usize,
    /// All events per minute.
    total: Vec<i64>,
    /// The busiest sessions, busiest first (at most 50).
    sessions: Vec<SessionActivity>,
    /// The events of the sessions not listed, per minute.
    others: Vec<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionActivity {
    session_id: String,
    per_minute: Vec<i64>,
}

/// `GET /v1/activity?minutes=`: events received per minute, per session.
#[utoipa::path(get, operation_id = "activity", path = "/v1/activity", tag = "events",
    params(ActivityParams),
    responses((status = 200, description = "Events per minute", body = Activity),
        crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::Unavailable))]
pub async fn activity(
    scope: CallerScope,
    state: web::Data<AppState>,
    params: super::Query<ActivityParams>,
) -> Result<HttpResponse, ApiError> {
    let minutes = match params.minutes {
        None => 15,
        Some(n) if (1..=MAX_ACTIVITY_MINUTES).contains(&n) => n,
        Some(n) => {
            return Err(bad(format!(
                "minutes must be between 1 and {MAX_ACTIVITY_MINUTES}, not {n}"
            )))
        }
    };
    // Whole minutes, the current one last.
    let from = (now_millis().div_euclid(60_000) - (minutes as i64 - 1)) * 60_000;
    let mut sessions = read(&state, move |conn| {
        Ok(search::per_minute(conn, &scope.0, from, minutes)?)
    })
    .await?;
    let mut total = vec![0; minutes];
    for s in &sessions {
        for (t, n) in total.iter_mut().zip(&s.per_minute) {
            *t += n;
        }
    }
    let mut others = vec![0; minutes];
    for s in sessions.iter().skip(MAX_ACTIVITY_SESSIONS) {
        for (o, n) in others.iter_mut().zip(&s.per_minute) {
            *o += n;
        }
    }
    sessions.truncate(MAX_ACTIVITY_SESSIONS);
    Ok(HttpResponse::Ok().json(Activity {
        from: format_millis(from),
        minutes,
        total,
        sessions: sessions
            .into_iter()
            .map(|s| SessionActivity {
                session_id: s.session_id,
                per_minute: s.per_minute,
            })
            .collect(),
        others,
    }))
}
