//! `GET /openapi.json`: the OpenAPI 3 document, generated from the handlers' `#[utoipa::path]`
//! attributes and the DTOs' `ToSchema` derives. Request bodies are read as raw bytes (to give
//! size and shape errors as problem JSON), so their documented shapes live here; everything
//! the server writes is documented by the types that write it.

use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, OpenApi, ToSchema};

/// The path of every session resource.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionPath {
    /// Session id, unique per scope.
    #[param(
        pattern = r"^[A-Za-z0-9._:-]{1,128}$",
        max_length = 128,
        min_length = 1
    )]
    pub session_id: String,
}

/// The path of every interaction resource.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct InteractionPath {
    /// Session id, unique per scope.
    #[param(
        pattern = r"^[A-Za-z0-9._:-]{1,128}$",
        max_length = 128,
        min_length = 1
    )]
    pub session_id: String,
    /// Interaction id, unique per session.
    #[param(
        pattern = r"^[A-Za-z0-9._:-]{1,128}$",
        max_length = 128,
        min_length = 1
    )]
    pub interaction_id: String,
}

use super::{auth, events, health, interactions, notifications, search, sessions};

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
    /// validation_failed, overloaded, storage_unavailable.
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

/// One event as posted.
#[derive(Serialize, ToSchema)]
pub struct EventInput {
    /// 1–64 chars of `A-Z a-z 0-9 . _ : -`, case-sensitive.
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$", min_length = 1, max_length = 64)]
    pub event_type: String,
    /// RFC 3339 with offset.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// Stored as given.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    /// Idempotency key: 1–128 printable ASCII chars.
    #[schema(pattern = r"^[ -~]{1,128}$", min_length = 1, max_length = 128)]
    pub event_id: Option<String>,
    #[schema(
        pattern = r"^[A-Za-z0-9._:-]{1,128}$",
        min_length = 1,
        max_length = 128
    )]
    pub interaction_id: Option<String>,
    /// The client's own per-session counter from 0; events are applied in this order.
    #[schema(minimum = 0, maximum = 9223372036854775805_u64)]
    pub sequence: Option<u64>,
}

/// A batch: stored all or nothing.
#[derive(Serialize, ToSchema)]
pub struct EventBatch {
    pub events: Vec<EventInput>,
}

/// `POST …/events` takes one event or a batch.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum EventsBody {
    One(EventInput),
    Batch(EventBatch),
}

#[derive(Serialize, ToSchema)]
pub struct PutSessionBody {
    /// Used only when the session is created.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// A Claude Code hook input, as Claude Code sends it: every field it has is kept (stored as the
/// event's data); these two are required.
#[derive(Serialize, ToSchema)]
pub struct ClaudeCodeHookInput {
    /// Claude Code's session id (a UUID); another text maps to a stable valid id.
    #[schema(min_length = 1)]
    pub session_id: String,
    /// Becomes the event's type.
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$", min_length = 1, max_length = 64)]
    pub hook_event_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct NewInteractionBody {
    /// Server-made UUID when absent.
    #[schema(
        pattern = r"^[A-Za-z0-9._:-]{1,128}$",
        min_length = 1,
        max_length = 128
    )]
    pub interaction_id: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$", min_length = 1, max_length = 64)]
    pub kind: String,
    /// Any JSON.
    pub payload: Option<Value>,
    /// 1 to 86400000; default ORCH_INTERACTION_TIMEOUT_MS.
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub timeout_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct NewCommandBody {
    #[schema(
        pattern = r"^[A-Za-z0-9._:-]{1,128}$",
        min_length = 1,
        max_length = 128
    )]
    pub interaction_id: Option<String>,
    /// Any JSON: the command.
    pub payload: Value,
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub timeout_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ResultBody {
    /// `ok` or `error`.
    #[schema(pattern = "^(ok|error)$")]
    pub status: String,
    /// Any JSON.
    pub output: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct ResolveBody {
    /// Any JSON.
    pub response: Option<Value>,
    /// Who decides, as the client says (a person's name or handle), shown with the decision.
    #[schema(min_length = 1, max_length = 128)]
    pub decided_by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RejectBody {
    pub reason: Option<String>,
    /// Who decides, as the client says (a person's name or handle), shown with the decision.
    #[schema(min_length = 1, max_length = 128)]
    pub decided_by: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orchestrator",
        version = "1",
        description = "Coordinates the sessions of AI coding agents: ordered, deduplicated, durable events and exactly-once completions. Errors are application/problem+json (Problem)."
    ),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        openapi_json,
        sessions::put,
        sessions::get,
        sessions::list,
        events::post,
        events::list,
        search::events,
        search::activity,
        interactions::create,
        interactions::list,
        interactions::get,
        interactions::result,
        interactions::resolve,
        interactions::reject,
        interactions::cancel,
        interactions::wait,
        interactions::enqueue_command,
        interactions::next_command,
        notifications::list,
        notifications::latest,
        notifications::stream,
        auth::create_stream_token,
        super::claude_code::hook,
    ),
    components(schemas(Problem, EventsBody, EventInput, EventBatch)),
    modifiers(&BearerAuth, &InteractionLinks)
)]
pub struct ApiDoc;

/// OpenAPI links from the responses that create something to the operations on it: a session
/// (PUT) to what takes its `session_id`, an interaction or command to what takes its
/// `interaction_id`. Clients and stateful API testers (schemathesis) can then follow real ids
/// instead of guessing ones that do not exist.
struct InteractionLinks;

/// (path, creating operation, operations linked to, whether they also take the new interaction).
const LINKS: [(&str, &str, &[&str], bool); 3] = [
    (
        "/v1/sessions/{session_id}",
        "put_session",
        &[
            "get_session",
            "post_events",
            "create_interaction",
            "enqueue_command",
        ],
        false,
    ),
    (
        "/v1/sessions/{session_id}/interactions",
        "create_interaction",
        INTERACTION_OPERATIONS,
        true,
    ),
    (
        "/v1/sessions/{session_id}/commands",
        "enqueue_command",
        INTERACTION_OPERATIONS,
        true,
    ),
];

const INTERACTION_OPERATIONS: &[&str] = &[
    "get_interaction",
    "wait_for_interaction",
    "post_interaction_result",
    "resolve_interaction",
    "reject_interaction",
    "cancel_interaction",
];

impl utoipa::Modify for InteractionLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::link::LinkBuilder;
        use utoipa::openapi::RefOr;
        for (path, creator, targets, with_interaction) in LINKS {
            let item = openapi.paths.paths.get_mut(path);
            let operation = item.and_then(|item| item.put.as_mut().or(item.post.as_mut()));
            let Some(operation) = operation else {
                // The document test fails on a missing link; nothing to serve wrongly here.
                log::error!("OpenAPI links: no operation {creator} at {path}");
                continue;
            };
            // 201 created it; 200 is the same thing again (an idempotent repeat or update).
            for status in ["200", "201"] {
                let Some(RefOr::T(response)) = operation.responses.responses.get_mut(status) else {
                    continue;
                };
                for target in targets {
                    let mut link = LinkBuilder::new()
                        .operation_id(*target)
                        .parameter("session_id", "$request.path.session_id");
                    if with_interaction {
                        link = link.parameter("interaction_id", "$response.body#/interaction_id");
                    }
                    response
                        .links
                        .insert((*target).to_owned(), link.build().into());
                }
            }
        }
    }
}

/// Declares the bearer key scheme (used when ORCH_API_KEYS is set).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The document as served.
pub fn document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    camel_case_links(&mut document);
    document
}

/// utoipa 5.5 serializes a Link object's fields in snake case (`operation_id`), where OpenAPI
/// names them `operationId` and `requestBody`; tools then ignore the links. Renamed here, in the
/// only place links exist: the responses of each operation.
fn camel_case_links(document: &mut serde_json::Value) {
    let Some(paths) = document.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let operations = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut());
    for operation in operations {
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(|r| r.as_object_mut())
        else {
            continue;
        };
        let links = responses
            .values_mut()
            .filter_map(|r| r.get_mut("links").and_then(|l| l.as_object_mut()))
            .flat_map(|links| links.values_mut())
            .filter_map(|link| link.as_object_mut());
        for link in links {
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.to_owned(), value);
                }
            }
        }
    }
}

/// The OpenAPI 3 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
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
    Unavailable,
    "503",
    "Write queue full or storage unavailable; nothing stored, retry after Retry-After"
);
