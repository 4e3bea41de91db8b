//! The shapes the OpenAPI document shows that no handler type writes: the path parameters,
//! the problem document, Claude Code's hook input and the error responses handlers list.
//! (Request bodies are their own types, in `bodies`.) The document itself is assembled in
//! `openapi`.

use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::domain::ids::{EventType, InteractionId, SessionId};
use crate::domain::interaction::DecidedBy;

/// The id types document themselves: their rule's pattern and length, from `domain::ids`.
/// (Request bodies still state them as literals: `#[schema(pattern = ...)]` takes only a
/// string literal, and inlining a type there wraps it in a one-element `oneOf`.)
macro_rules! id_schema {
    ($($id:ty),*) => {
        $(
            impl utoipa::PartialSchema for $id {
                fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::String)
                        .pattern(Some(<$id>::PATTERN))
                        .min_length(Some(1))
                        .max_length(Some(<$id>::MAX_LEN))
                        .into()
                }
            }

            impl utoipa::ToSchema for $id {}
        )*
    };
}

id_schema!(SessionId, InteractionId, EventType);

impl utoipa::PartialSchema for DecidedBy {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "1 to 128 characters, not all white space, no control characters",
            ))
            .pattern(Some(DecidedBy::PATTERN))
            .min_length(Some(1))
            .max_length(Some(DecidedBy::MAX_CHARS))
            .into()
    }
}

impl utoipa::ToSchema for DecidedBy {}

/// The path of every session resource.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionPath {
    /// Session id, unique per scope.
    #[param(value_type = SessionId, inline)]
    pub session_id: String,
}

/// The path of every interaction resource.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct InteractionPath {
    /// Session id, unique per scope.
    #[param(value_type = SessionId, inline)]
    pub session_id: String,
    /// Interaction id, unique per session.
    #[param(value_type = InteractionId, inline)]
    pub interaction_id: String,
}

/// An RFC 9457 problem document; every error has this shape.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    /// Machine-readable: bad_request, unauthorized, session_not_found, interaction_not_found,
    /// not_found, method_not_allowed, already_completed, not_started, payload_too_large,
    /// validation_failed, overloaded, storage_unavailable, not_owner.
    pub code: String,
    pub detail: String,
    /// validation_failed: the event's position in the batch.
    pub index: Option<usize>,
    /// validation_failed: the offending field.
    pub field: Option<String>,
    /// 409: the interaction as it stands.
    #[schema(value_type = Option<Object>)]
    pub interaction: Option<Value>,
}

/// A Claude Code hook input, as Claude Code sends it: every field it has is kept (stored as the
/// event's data); these two are required.
// Read by `claude_code::input`, which the `hook` client shares, as Claude Code's protocol
// rather than as a body of this API; this type only documents it.
#[derive(Serialize, ToSchema)]
pub struct ClaudeCodeHookInput {
    /// Claude Code's session id (a UUID); another text maps to a stable valid id.
    #[schema(min_length = 1)]
    pub session_id: String,
    /// Becomes the event's type.
    #[schema(value_type = EventType)]
    pub hook_event_name: String,
}

/// Declares a documented error response: `status`, its description, and the Problem body as
/// `application/problem+json`. Handlers list the ones they can answer in `responses(...)`.
macro_rules! problem_response {
    ($name:ident, $status:literal, $description:literal) => {
        #[doc = $description]
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
                let content = ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build();
                let response = ResponseBuilder::new()
                    .description($description)
                    .content("application/problem+json", content)
                    .build();
                [($status.to_string(), response.into())]
                    .into_iter()
                    .collect()
            }
        }
    };
}

problem_response!(
    BadRequest,
    "400",
    "Malformed JSON, wrong shape or bad query parameter"
);
problem_response!(Unauthorized, "401", "Missing or unknown bearer key");
problem_response!(NotFound, "404", "Not found in the caller's scope");
problem_response!(
    Conflict,
    "409",
    "Refused by the interaction's state; the body carries it"
);
problem_response!(TooLarge, "413", "Body or batch over the limits");
problem_response!(
    Invalid,
    "422",
    "A field breaks a rule (index and field say where)"
);
problem_response!(
    Forbidden,
    "403",
    "A page of another origin may not change anything here (ORCH_ALLOWED_ORIGINS)"
);
problem_response!(
    UnsupportedMediaType,
    "415",
    "The body is not sent as Content-Type: application/json"
);
problem_response!(
    Misdirected,
    "421",
    "The Host is not one this service answers to (ORCH_ALLOWED_HOSTS)"
);
problem_response!(
    TooManyRequests,
    "429",
    "The caller's scope is over one of its limits; retry after Retry-After"
);
problem_response!(
    Unavailable,
    "503",
    "Write queue full or storage unavailable; nothing stored, retry after Retry-After"
);
