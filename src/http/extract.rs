//! What handlers take from a request besides its query: the session or interaction its path
//! names (in the caller's scope, ids checked) and its body (read within the body limits, as
//! bytes or as its type). Said
//! once here instead of at the top of every handler; a path's refusal (401, 422) comes before
//! the body is read, as the arguments' order says.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::Deserialize;

use super::auth::scope_of;
use super::bodies::RequestBody;
use super::error::ApiError;
use super::{parse_json, session_key, AppState};
use crate::actors::messages::SessionKey;
use crate::config::Limits;
use crate::domain::ids::InteractionId;

/// The ids of the matched path, percent-decoded as `web::Path` decodes them.
#[derive(Deserialize)]
struct PathIds {
    session_id: String,
    interaction_id: Option<String>,
}

fn path_ids(req: &HttpRequest) -> Result<PathIds, ApiError> {
    req.match_info()
        .load()
        .map_err(|e| ApiError::BadRequest(format!("bad path: {e}")))
}

/// The session `/v1/sessions/{session_id}/…` names, in the caller's scope.
pub struct SessionRef(pub SessionKey);

impl FromRequest for SessionRef {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(scope_of(req).and_then(|scope| {
            let ids = path_ids(req)?;
            session_key(&scope, &ids.session_id).map(SessionRef)
        }))
    }
}

/// The interaction `/v1/sessions/{session_id}/interactions/{interaction_id}/…` names.
pub struct InteractionRef(pub SessionKey, pub InteractionId);

impl FromRequest for InteractionRef {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(scope_of(req).and_then(|scope| {
            let ids = path_ids(req)?;
            let key = session_key(&scope, &ids.session_id)?;
            let raw = ids.interaction_id.unwrap_or_default();
            let id = InteractionId::parse(&raw)?;
            Ok(InteractionRef(key, id))
        }))
    }
}

/// The request's whole body, read within `ORCH_MAX_BODY_BYTES` and the body timeout
/// (see [`read_body`]).
pub struct Body(pub web::Bytes);

impl FromRequest for Body {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let Some(state) = req.app_data::<web::Data<AppState>>() else {
                log::error!("no application state for {}", req.path());
                return Err(ApiError::StorageUnavailable);
            };
            read_body(&req, payload, &state.limits).await.map(Body)
        })
    }
}

/// A request body of type `T`: read as [`Body`] is, checked as JSON by [`parse_json`]
/// (nesting, NUL, lone surrogates), then read as `T` (see [`RequestBody`]).
pub struct Json<T>(pub T);

impl<T: RequestBody + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = Body::from_request(req, payload);
        Box::pin(async move {
            let Body(bytes) = body.await?;
            let text: &[u8] = match T::WHEN_EMPTY {
                Some(empty) if bytes.iter().all(u8::is_ascii_whitespace) => empty.as_bytes(),
                _ => &bytes,
            };
            T::read(parse_json(text)?).map(Json)
        })
    }
}

/// Reads the whole body, refusing more than the body limit (413) before buffering it, and
/// giving up (408) when it has not all arrived within the body timeout: a client that
/// trickles its body must not hold a connection, and its memory, for ever.
pub(super) async fn read_body(
    req: &HttpRequest,
    mut payload: Payload,
    limits: &Limits,
) -> Result<web::Bytes, ApiError> {
    let limit = limits.max_body_bytes;
    let too_large = || ApiError::PayloadTooLarge(format!("the body is over {limit} bytes"));
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let deadline = tokio::time::Instant::now() + limits.body_timeout;
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0));
    loop {
        let chunk = match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => return Err(ApiError::RequestTimeout(limits.body_timeout)),
        };
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
