//! The HTTP edge's error type: every failure a request can meet, turned into RFC 9457 problem
//! JSON with a machine-readable `code` in exactly one place ([`ApiError::error_response`]).
//! Lower layers have their own error types; they are converted here, not earlier. The edge's
//! own gates (the connection guard, the cross-site checks, admission) each say how their
//! refusal reads ([`EdgeRefusal`]) beside the rule that refuses.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

use super::dto::InteractionDto;
use crate::actors::messages::SessionError;
use crate::domain::event::BodyError;
use crate::domain::ValidationError;
use crate::store::StoreError;

/// Marks a 503 that means "another node holds the session", so a node that forwarded the
/// request can tell it from a busy owner (see `super::forward`).
pub const NOT_OWNER: header::HeaderName =
    header::HeaderName::from_static("x-orchestrator-not-owner");

/// Seconds a client is asked to wait before retrying a 503.
const RETRY_AFTER_SECS: u32 = 1;

/// A refusal by one of the edge's gates, as the problem JSON says it: its status, `code` and
/// title (its message is the detail), and how long to wait before retrying, if at all.
pub trait EdgeRefusal: std::error::Error + Send + Sync + 'static {
    fn status(&self) -> StatusCode;
    fn code(&self) -> &'static str;
    fn title(&self) -> &'static str;
    /// Seconds for a `Retry-After` header.
    fn retry_after(&self) -> Option<u64> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid bearer key is required")]
    Unauthorized,
    #[error("no session {0} in this scope")]
    SessionNotFound(String),
    #[error("no interaction {0} in this session")]
    InteractionNotFound(String),
    /// The interaction's state refuses the request; the body carries it as it stands.
    #[error("{detail}")]
    Conflict {
        code: &'static str,
        detail: String,
        interaction: Value,
    },
    #[error("no route {0}")]
    RouteNotFound(String),
    #[error("method {method} is not allowed here (allowed: {allow})")]
    MethodNotAllowed { method: String, allow: &'static str },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("the request body did not arrive within {} ms", .0.as_millis())]
    RequestTimeout(std::time::Duration),
    /// A gate of the edge refused the request: a request head the connection guard refused,
    /// a request another site's page may not make, a scope over its limits.
    #[error("{0}")]
    Refused(Box<dyn EdgeRefusal>),
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("the write queue is full; retry shortly")]
    Overloaded,
    #[error("storage is unavailable; retry shortly")]
    StorageUnavailable,
    /// Another node serves the session (or it is changing hands); nothing was stored.
    #[error("the session's partition is changing hands; retry shortly")]
    NotOwner,
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::SessionNotFound(_) => "session_not_found",
            Self::InteractionNotFound(_) => "interaction_not_found",
            Self::Conflict { code, .. } => code,
            Self::RouteNotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::RequestTimeout(_) => "request_timeout",
            Self::Refused(refusal) => refusal.code(),
            Self::Validation(_) => "validation_failed",
            Self::Overloaded => "overloaded",
            Self::StorageUnavailable => "storage_unavailable",
            Self::NotOwner => "not_owner",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "Bad request",
            Self::Unauthorized => "Unauthorized",
            Self::SessionNotFound(_) => "Session not found",
            Self::InteractionNotFound(_) => "Interaction not found",
            Self::Conflict { .. } => "Conflict",
            Self::RouteNotFound(_) => "Not found",
            Self::MethodNotAllowed { .. } => "Method not allowed",
            Self::PayloadTooLarge(_) => "Payload too large",
            Self::RequestTimeout(_) => "Request timeout",
            Self::Refused(refusal) => refusal.title(),
            Self::Validation(_) => "Validation failed",
            Self::Overloaded => "Overloaded",
            Self::StorageUnavailable => "Storage unavailable",
            Self::NotOwner => "Not owner",
        }
    }

    /// The problem document's body.
    pub fn problem(&self) -> Value {
        let mut body = json!({
            "type": "about:blank",
            "title": self.title(),
            "status": self.status_code().as_u16(),
            "code": self.code(),
            "detail": self.to_string(),
        });
        match self {
            Self::Validation(v) => {
                body["index"] = json!(v.index);
                body["field"] = json!(v.field);
            }
            Self::Conflict { interaction, .. } => body["interaction"] = interaction.clone(),
            _ => {}
        }
        body
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::SessionNotFound(_) | Self::InteractionNotFound(_) | Self::RouteNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Refused(refusal) => refusal.status(),
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Overloaded | Self::StorageUnavailable | Self::NotOwner => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        match self {
            Self::NotOwner => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
                response.insert_header((NOT_OWNER, "1"));
            }
            Self::Overloaded | Self::StorageUnavailable => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
            }
            Self::Refused(refusal) => {
                if let Some(seconds) = refusal.retry_after() {
                    response.insert_header((header::RETRY_AFTER, seconds.to_string()));
                }
            }
            Self::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, *allow));
            }
            _ => {}
        }
        response.body(self.problem().to_string())
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Shape(why) => Self::BadRequest(why),
            BodyError::TooMany { .. } => Self::PayloadTooLarge(e.to_string()),
            BodyError::Invalid(v) => Self::Validation(v),
        }
    }
}

/// A body that is not a Claude Code hook input: 400 when it is not a JSON object, 422 when a
/// field it needs is missing or unusable.
impl From<crate::claude_code::input::InputError> for ApiError {
    fn from(e: crate::claude_code::input::InputError) -> Self {
        use crate::claude_code::input::InputError;
        match e {
            InputError::NotJson(_) => Self::BadRequest(e.to_string()),
            InputError::Missing(field) => Self::Validation(ValidationError::field(
                field,
                "is required (a non-empty string)",
            )),
            InputError::BadEventName(_) => Self::Validation(ValidationError::field(
                "hook_event_name",
                "must be 1-64 chars of A-Z a-z 0-9 . _ : -",
            )),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::SessionNotFound(id) => Self::SessionNotFound(id),
            SessionError::InteractionNotFound(id) => Self::InteractionNotFound(id),
            SessionError::Conflict {
                code,
                detail,
                session_id,
                interaction,
            } => Self::Conflict {
                code,
                detail,
                // Serializing the stored interaction into a tree parses its JSON texts; one
                // that cannot be parsed (stored before such texts were refused) leaves the
                // member out rather than failing the answer.
                interaction: serde_json::to_value(InteractionDto::new(&session_id, &interaction))
                    .unwrap_or_else(|e| {
                        log::error!("interaction {} cannot be shown: {e}", interaction.id);
                        Value::Null
                    }),
            },
            SessionError::Overloaded => Self::Overloaded,
            // The cause was logged where it happened; the client learns only that it may retry.
            SessionError::StorageUnavailable(_) => Self::StorageUnavailable,
            SessionError::NotOwner => Self::NotOwner,
            SessionError::Invalid(v) => Self::Validation(v),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        crate::log_limited!(log::Level::Error, "query failed: {e}");
        Self::StorageUnavailable
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        crate::log_limited!(log::Level::Warn, "actor unavailable: {e}");
        Self::StorageUnavailable
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        crate::log_limited!(log::Level::Error, "blocking pool failed: {e}");
        Self::StorageUnavailable
    }
}
