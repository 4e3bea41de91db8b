//! `GET /v1/notifications` (listing and long-poll) and `GET /v1/stream` (Server-Sent Events):
//! the outbox of the caller's scope, oldest first after a cursor. Both read committed rows by
//! id, and ids increase in commit order, so a reader resuming from any id sees exactly the tail,
//! with no gap and no repeat. Near the head the rows come from the committer's in-memory
//! [`NotificationFeed`](crate::store::NotificationFeed), further back from the database.
//! Waiting is on the feed's "newest committed id" watch channel, never a polling loop on the
//! database.

use std::collections::VecDeque;
use std::time::Duration;

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{page_limit, read, AppState, CallerScope};
use crate::domain::ids::SessionId;
use crate::domain::time::format_millis;
use crate::http::error::ApiError;
use crate::store::{self, models::NotificationRow};

/// The longest long-poll.
const MAX_WAIT_MS: u64 = 60_000;
/// A comment line this often keeps idle streams (and proxies) alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Rows a stream reads at a time: its whole memory per consumer.
const STREAM_PAGE: i64 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only notifications with a greater id (default 0).
    #[param(minimum = 0)]
    after: Option<i64>,
    #[param(value_type = Option<SessionId>, inline)]
    session_id: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Wait up to this long for something newer (max 60000).
    #[param(maximum = 60000)]
    wait_ms: Option<u64>,
}

/// A notification: common fields plus those of its type (the documentation of what
/// [`to_json`] writes).
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDoc {
    /// Strictly increasing per scope, in commit order.
    id: i64,
    /// session.created, session.updated, events.appended, interaction.created,
    /// interaction.completed.
    #[serde(rename = "type")]
    kind: String,
    session_id: String,
    at: String,
    /// session.created, session.updated, interaction.*.
    status: Option<String>,
    /// session.updated.
    external_conversation_id: Option<String>,
    /// events.appended.
    event_count: Option<i64>,
    /// events.appended.
    last_seq: Option<i64>,
    /// interaction.*.
    interaction_id: Option<String>,
    /// interaction.created: the interaction's kind.
    #[serde(rename = "kind")]
    interaction_kind: Option<String>,
    /// interaction.completed.
    outcome: Option<String>,
    /// interaction.completed.
    completed_by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    #[schema(value_type = Vec<NotificationDoc>)]
    notifications: Vec<Value>,
    /// Pass as `after` next time.
    next_after: i64,
}

/// A notification: `{id, type, session_id, at, ...type-specific fields}`.
fn to_json(row: NotificationRow) -> Value {
    let mut fields: Map<String, Value> = serde_json::from_str(&row.body).unwrap_or_default();
    fields.insert("id".into(), json!(row.id));
    fields.insert("type".into(), json!(row.kind));
    fields.insert("session_id".into(), json!(row.session_id));
    fields.insert("at".into(), json!(format_millis(row.at)));
    Value::Object(fields)
}

fn cursor(after: Option<i64>) -> Result<i64, ApiError> {
    match after {
        Some(n) if n < 0 => Err(ApiError::BadRequest("after must not be negative".into())),
        other => Ok(other.unwrap_or(0)),
    }
}

fn session_filter(session_id: Option<String>) -> Result<Option<String>, ApiError> {
    session_id
        .map(|s| SessionId::parse(&s).map(SessionId::into_string))
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.detail))
}

/// One page of the scope's notifications after `after`: at most `limit`, and only the leading
/// ones whose bodies fit in `ORCH_MAX_PAGE_BYTES`, as listings.
async fn page(
    state: &AppState,
    scope: &str,
    after: i64,
    session_id: Option<&str>,
    limit: i64,
) -> Result<Vec<NotificationRow>, ApiError> {
    let max_bytes = state.limits.max_page_bytes;
    let recent = usize::try_from(limit).ok().and_then(|limit| {
        state
            .notification_feed
            .read(scope, after, session_id, limit, max_bytes)
    });
    if let Some(rows) = recent {
        crate::metrics::NOTIFICATION_READS
            .with_label_values(&["memory"])
            .inc();
        return Ok(rows);
    }
    crate::metrics::NOTIFICATION_READS
        .with_label_values(&["database"])
        .inc();
    let (scope, session_id) = (scope.to_owned(), session_id.map(str::to_owned));
    read(state, move |conn| {
        Ok(store::notifications::list(
            conn,
            &scope,
            after,
            session_id.as_deref(),
            limit,
            max_bytes,
        )?)
    })
    .await
}

/// `GET /v1/notifications?after=&session_id=&limit=&wait_ms=`. With `wait_ms`, waits until
/// something newer exists (or the time is up). `next_after` is the id to pass as `after` next
/// time: the last one returned, or the given `after` when nothing is newer.
#[utoipa::path(get, operation_id = "list_notifications", path = "/v1/notifications", tag = "notifications", params(ListQuery),
    responses((status = 200, description = "Oldest first after the cursor", body = NotificationList), crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::Unavailable))]
pub async fn list(
    scope: CallerScope,
    state: web::Data<AppState>,
    query: super::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let after = cursor(query.after)?;
    let session_id = session_filter(query.session_id)?;
    let wait = match query.wait_ms {
        Some(ms) if ms > MAX_WAIT_MS => {
            return Err(ApiError::BadRequest(format!(
                "wait_ms must be at most {MAX_WAIT_MS}, not {ms}"
            )))
        }
        other => Duration::from_millis(other.unwrap_or(0)),
    };
    let deadline = actix_rt::time::Instant::now() + wait;
    let mut committed = state.notification_feed.subscribe();
    let rows = loop {
        // Marked seen before the query: a commit that lands after it still wakes us.
        committed.borrow_and_update();
        let rows = page(&state, &scope.0, after, session_id.as_deref(), limit).await?;
        let remaining = deadline.saturating_duration_since(actix_rt::time::Instant::now());
        if !rows.is_empty() || remaining.is_zero() {
            break rows;
        }
        let mut stopping = state.shutdown.clone();
        tokio::select! {
            changed = actix_rt::time::timeout(remaining, committed.changed()) => match changed {
                Ok(Ok(())) => continue,
                // Time is up, or the writer is gone: answer with nothing new.
                Ok(Err(_)) | Err(_) => break rows,
            },
            // The server is stopping: answer now rather than hold its stop.
            () = stopping.stopping() => break rows,
        }
    };
    let next_after = rows.last().map_or(after, |r| r.id);
    let notifications: Vec<Value> = rows.into_iter().map(to_json).collect();
    Ok(HttpResponse::Ok().json(NotificationList {
        notifications,
        next_after,
    }))
}

/// The newest notification id of the caller's scope.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestNotification {
    /// 0 when the scope has none yet.
    id: i64,
}

/// `GET /v1/notifications/latest`: where "from now on" starts. A client that loads its view
/// and then follows `/v1/stream?after=<this id>` (or long-polls from it) misses nothing that
/// changed after it asked.
#[utoipa::path(get, operation_id = "latest_notification", path = "/v1/notifications/latest", tag = "notifications",
    responses((status = 200, description = "The newest notification id of the scope", body = LatestNotification),
        crate::http::schemas::Unauthorized, crate::http::schemas::Unavailable))]
pub async fn latest(
    scope: CallerScope,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let scope = scope.0;
    let id = read(&state, move |conn| {
        Ok(store::notifications::latest_id(conn, &scope)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(LatestNotification { id }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Resume after this id (Last-Event-ID takes precedence).
    #[param(minimum = 0)]
    after: Option<i64>,
    #[param(value_type = Option<SessionId>, inline)]
    session_id: Option<String>,
    /// A token from `POST /v1/stream-tokens`, instead of an `Authorization` header.
    #[allow(dead_code)]
    token: Option<String>,
}

/// One SSE message.
fn sse_message(row: NotificationRow) -> web::Bytes {
    let (id, kind) = (row.id, row.kind.clone());
    let data = to_json(row);
    web::Bytes::from(format!("id: {id}\nevent: {kind}\ndata: {data}\n\n"))
}

struct StreamState {
    state: web::Data<AppState>,
    scope: String,
    session_id: Option<String>,
    cursor: i64,
    pending: VecDeque<NotificationRow>,
    committed: tokio::sync::watch::Receiver<i64>,
    /// The stream ends when the server stops; the client resumes elsewhere or later.
    stopping: crate::shutdown::Shutdown,
    /// When the last full page was read: the consumer is behind and this is how long it has
    /// been taking to accept that page.
    full_page_since: Option<std::time::Instant>,
}

impl StreamState {
    /// The next chunk of the stream; `None` ends it (the client reconnects and resumes).
    async fn next_chunk(&mut self) -> Option<web::Bytes> {
        loop {
            if self.stopping.is_stopping() {
                return None;
            }
            if let Some(row) = self.pending.pop_front() {
                return Some(sse_message(row));
            }
            if let Some(since) = self.full_page_since.take() {
                if since.elapsed() > self.state.stream_slow_consumer {
                    // Behind and slow: end the stream rather than let it lag without bound;
                    // the client resumes from its last id.
                    crate::metrics::SLOW_STREAMS_DISCONNECTED.inc();
                    log::info!(
                        "stream of scope {} disconnected: {:?} to accept {STREAM_PAGE} notifications",
                        self.scope,
                        since.elapsed()
                    );
                    return None;
                }
            }
            self.committed.borrow_and_update();
            let rows = page(
                &self.state,
                &self.scope,
                self.cursor,
                self.session_id.as_deref(),
                STREAM_PAGE,
            )
            .await
            .ok()?;
            if let Some(last) = rows.last() {
                self.cursor = last.id;
                if rows.len() as i64 == STREAM_PAGE {
                    self.full_page_since = Some(std::time::Instant::now());
                }
                self.pending.extend(rows);
                continue;
            }
            tokio::select! {
                changed = actix_rt::time::timeout(KEEP_ALIVE, self.committed.changed()) => {
                    match changed {
                        Ok(Ok(())) => continue,
                        Ok(Err(_)) => return None,
                        Err(_) => return Some(web::Bytes::from_static(b": keep-alive\n\n")),
                    }
                }
                () = self.stopping.stopping() => return None,
            }
        }
    }
}

/// `GET /v1/stream?session_id=&after=`: `text/event-stream` with `id:` = notification id and
/// `event:` = type. Resumes after `Last-Event-ID` (or `after`): replay, then live, with no gap
/// and no repeat. The stream is pulled by the connection, one page at a time, so a consumer
/// costs at most one page of memory; one that is behind and takes longer than
/// ORCH_STREAM_SLOW_MS to accept a page is disconnected and resumes from its last id.
#[utoipa::path(get, operation_id = "stream_notifications", path = "/v1/stream", tag = "notifications",
    params(StreamQuery, ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this notification id")),
    responses((status = 200, description = "Server-Sent Events: id = notification id, event = type, data = the notification JSON", content_type = "text/event-stream"), crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized))]
pub async fn stream(
    super::auth::StreamCaller(scope): super::auth::StreamCaller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: super::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let last_event_id = match req.headers().get("Last-Event-ID") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .ok_or_else(|| ApiError::BadRequest("Last-Event-ID must be an id".into()))?,
        ),
    };
    let cursor = cursor(last_event_id.or(query.after))?;
    let session_id = session_filter(query.session_id)?;
    let committed = state.notification_feed.subscribe();
    let stopping = state.shutdown.clone();
    let initial = StreamState {
        stopping,
        state,
        scope: scope.0,
        session_id,
        cursor,
        pending: VecDeque::new(),
        committed,
        full_page_since: None,
    };
    let body = futures_util::stream::unfold(initial, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<_, actix_web::Error>(chunk), s))
    });
    if actix_web::HttpMessage::extensions(&req).contains::<super::HeadRequest>() {
        // The headers a stream would start with; no stream to keep open for nobody.
        return Ok(HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .finish());
    }
    // A stream's connection is not reused: when the stream ends (the server stopping, a slow
    // consumer) the connection closes with it instead of idling until its keep-alive ends.
    Ok(HttpResponse::Ok()
        .force_close()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
