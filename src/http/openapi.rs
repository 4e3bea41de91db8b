//! The OpenAPI 3 document (served at `/openapi.json` by `docs`), built from the route table's
//! operations (each handler's `#[utoipa::path]`, see [`super::routes`]), the DTOs' and request
//! bodies' `ToSchema` derives and the shapes in `schemas` (problems, path parameters);
//! everything the server reads or writes is documented by the types that do it.

use utoipa::OpenApi;

use super::schemas::{Forbidden, Misdirected, Problem, TooManyRequests, UnsupportedMediaType};
use crate::domain::event::{EventBatch, EventInput, EventsBody};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orchestrator",
        version = "1",
        description = "Coordinates the sessions of AI coding agents: ordered, deduplicated, durable events and exactly-once completions. Errors are application/problem+json (Problem)."
    ),
    components(schemas(Problem, EventsBody, EventInput, EventBatch)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The answers of the edge's gates, which come before any handler and so are said here once
/// for every operation they apply to: 421 for every request (the Host check), 429 for every
/// `/v1` request (admission), 403 for every request that may change something (a foreign
/// Origin) and 415 for every one that takes a body (it must be JSON).
struct EdgeResponses;

impl utoipa::Modify for EdgeResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::IntoResponses;
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.head, false),
                (&mut item.put, true),
                (&mut item.post, true),
                (&mut item.delete, true),
                (&mut item.patch, true),
            ];
            for (operation, changes) in operations {
                let Some(operation) = operation.as_mut() else {
                    continue;
                };
                let responses = &mut operation.responses.responses;
                responses.extend(Misdirected::responses());
                if path.starts_with("/v1/") {
                    responses.extend(TooManyRequests::responses());
                }
                if changes {
                    responses.extend(Forbidden::responses());
                }
                if operation.request_body.is_some() {
                    responses.extend(UnsupportedMediaType::responses());
                }
            }
        }
    }
}

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

/// The document as served: the API's description, every operation of the route table, and
/// what the modifiers add to the operations.
pub fn document() -> serde_json::Value {
    use utoipa::Modify;
    let mut api = ApiDoc::openapi();
    for operation in super::routes::documents() {
        api.merge(operation.clone());
    }
    EdgeResponses.modify(&mut api);
    InteractionLinks.modify(&mut api);
    let mut document = serde_json::to_value(api).unwrap_or_default();
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
