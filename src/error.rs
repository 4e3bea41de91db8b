//! The HTTP edge's error type: every failure a request can meet, turned into RFC 9457 problem
//! JSON with a machine-readable `code` in exactly one place ([`ApiError::error_response`]).
//! Lower layers have their own error types; they are converted here, not earlier.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

use crate::actors::messages::SessionError;
use crate::domain::event::BodyError;
use crate::domain::ValidationError;
use crate::http::admission::Throttled;
use crate::http::cross_site::CrossSiteRefusal;
use crate::http::guard::Refusal;
use crate::store::StoreError;

/// Seconds a client is asked to wait before retrying a 503.
const RETRY_AFTER_SECS: u32 = 1;

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
    /// A request head the connection guard refused, answered in its stead.
    #[error(transparent)]
    RequestHead(#[from] Refusal),
    /// The caller's scope is over one of its limits (see [`crate::http::admission`]).
    #[error(transparent)]
    Throttled(#[from] Throttled),
    /// A request another site's page may not make (see [`crate::http::cross_site`]).
    #[error(transparent)]
    CrossSite(#[from] CrossSiteRefusal),
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("the write queue is full; retry shortly")]
    Overloaded,
    #[error("storage is unavailable; retry shortly")]
    StorageUnavailable,
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
            Self::RequestHead(refusal) => match refusal {
                Refusal::HeadTooLarge | Refusal::TooManyHeaders => "header_fields_too_large",
                Refusal::UriTooLong => "uri_too_long",
                Refusal::Malformed => "malformed_request",
                Refusal::BadContentLength => "bad_content_length",
                Refusal::BadTransferEncoding => "bad_transfer_encoding",
                Refusal::HeadTimeout => "request_timeout",
                Refusal::BadHost => "bad_host",
                Refusal::Tunnel => "method_not_allowed",
            },
            Self::CrossSite(refusal) => match refusal {
                CrossSiteRefusal::Host(_) => "host_not_allowed",
                CrossSiteRefusal::Origin(_) => "origin_not_allowed",
                CrossSiteRefusal::MediaType(_) => "unsupported_media_type",
            },
            Self::Throttled(_) => "too_many_requests",
            Self::Validation(_) => "validation_failed",
            Self::Overloaded => "overloaded",
            Self::StorageUnavailable => "storage_unavailable",
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
            Self::RequestHead(refusal) => match refusal {
                Refusal::HeadTooLarge | Refusal::TooManyHeaders => {
                    "Request header fields too large"
                }
                Refusal::UriTooLong => "URI too long",
                Refusal::HeadTimeout => "Request timeout",
                Refusal::Tunnel => "Method not allowed",
                _ => "Bad request",
            },
            Self::CrossSite(refusal) => match refusal {
                CrossSiteRefusal::Host(_) => "Misdirected request",
                CrossSiteRefusal::Origin(_) => "Forbidden",
                CrossSiteRefusal::MediaType(_) => "Unsupported media type",
            },
            Self::Throttled(_) => "Too many requests",
            Self::Validation(_) => "Validation failed",
            Self::Overloaded => "Overloaded",
            Self::StorageUnavailable => "Storage unavailable",
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
            Self::RequestHead(refusal) => match refusal {
                Refusal::HeadTooLarge | Refusal::TooManyHeaders => {
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
                }
                Refusal::UriTooLong => StatusCode::URI_TOO_LONG,
                Refusal::HeadTimeout => StatusCode::REQUEST_TIMEOUT,
                Refusal::Tunnel => StatusCode::METHOD_NOT_ALLOWED,
                _ => StatusCode::BAD_REQUEST,
            },
            Self::CrossSite(refusal) => match refusal {
                CrossSiteRefusal::Host(_) => StatusCode::MISDIRECTED_REQUEST,
                CrossSiteRefusal::Origin(_) => StatusCode::FORBIDDEN,
                CrossSiteRefusal::MediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            },
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Overloaded | Self::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        match self {
            Self::Overloaded | Self::StorageUnavailable => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
            }
            Self::Throttled(throttled) => {
                response.insert_header((header::RETRY_AFTER, throttled.retry_after().to_string()));
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
                interaction,
            } => Self::Conflict {
                code,
                detail,
                // Serializing the stored interaction into a tree parses its JSON texts; one
                // that cannot be parsed (stored before such texts were refused) leaves the
                // member out rather than failing the answer.
                interaction: serde_json::to_value(crate::http::interactions::InteractionDto::new(
                    "",
                    &interaction,
                ))
                .unwrap_or_else(|e| {
                    log::error!("interaction {} cannot be shown: {e}", interaction.id);
                    Value::Null
                }),
            },
            SessionError::Overloaded => Self::Overloaded,
            // The cause was logged where it happened; the client learns only that it may retry.
            SessionError::StorageUnavailable(_) => Self::StorageUnavailable,
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
