//! `GET /v1/notifications`: the outbox of the caller's scope, oldest first after a cursor.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{page_limit, read, AppState, CallerScope};
use crate::domain::ids::SessionId;
use crate::domain::time::format_millis;
use crate::error::ApiError;
use crate::store::{self, models::NotificationRow};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    after: Option<i64>,
    session_id: Option<String>,
    limit: Option<i64>,
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

/// `GET /v1/notifications?after=&session_id=&limit=`. `next_after` is the id to pass as
/// `after` next time: the last one returned, or the given `after` when nothing is newer.
pub async fn list(
    scope: CallerScope,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let after = match query.after {
        Some(n) if n < 0 => {
            return Err(ApiError::BadRequest("after must not be negative".into()));
        }
        other => other.unwrap_or(0),
    };
    let session_id = query
        .session_id
        .map(|s| SessionId::parse(&s).map(SessionId::into_string))
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.detail))?;
    let scope = scope.0;
    let rows = read(&state, move |conn| {
        Ok(store::notifications::list(
            conn,
            &scope,
            after,
            session_id.as_deref(),
            limit,
        )?)
    })
    .await?;
    let next_after = rows.last().map_or(after, |r| r.id);
    let notifications: Vec<Value> = rows.into_iter().map(to_json).collect();
    Ok(HttpResponse::Ok().json(json!({
        "notifications": notifications,
        "next_after": next_after,
    })))
}
