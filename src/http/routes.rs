//! The route table: every operation of the API, listed once in [`operations`]. A handler's
//! `#[utoipa::path]` says its method and path beside the rest of its documentation; this
//! module reads them back from there, so the server's routes, the `Allow` header of its 405
//! answers, the metrics' route labels and the OpenAPI document's paths all come from that one
//! attribute.

use std::sync::OnceLock;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::openapi::path::{Operation as DocumentedOperation, PathItem};
use utoipa::openapi::OpenApi;

use super::error::ApiError;
use super::{auth, claude_code, docs, events, health, interactions, notifications};
use super::{search, sessions};

/// One operation: a handler and what its `#[utoipa::path]` says of it.
pub struct Operation {
    /// The path pattern, e.g. `/v1/sessions/{session_id}/events`.
    path: String,
    method: Method,
    /// The OpenAPI document of this operation alone: its path item and the schemas it uses.
    document: OpenApi,
    /// Points a route (already limited to the method) at the handler.
    route: fn(actix_web::Route) -> actix_web::Route,
}

/// An [`Operation`] of a handler, from the handler's name alone: a one-path OpenAPI document
/// is derived for it, which carries its method and path.
macro_rules! operation {
    ($($handler:ident)::+) => {{
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($handler)::+))]
        struct Documented;
        Operation::new(
            <Documented as utoipa::OpenApi>::openapi(),
            stringify!($($handler)::+),
            |route| route.to($($handler)::+),
        )
    }};
}

/// Every operation the API answers. Adding one here registers it and documents it.
fn operations() -> Vec<Operation> {
    vec![
        operation!(health::healthz),
        operation!(health::readyz),
        operation!(health::metrics),
        operation!(docs::openapi_json),
        operation!(docs::api_reference),
        operation!(sessions::list),
        operation!(sessions::put),
        operation!(sessions::get),
        operation!(events::post),
        operation!(events::list),
        operation!(interactions::create),
        operation!(interactions::list),
        operation!(interactions::enqueue_command),
        operation!(interactions::next_command),
        operation!(interactions::get),
        operation!(interactions::result),
        operation!(interactions::resolve),
        operation!(interactions::reject),
        operation!(interactions::cancel),
        operation!(interactions::wait),
        operation!(search::events),
        operation!(search::activity),
        operation!(notifications::list),
        operation!(notifications::latest),
        operation!(notifications::stream),
        operation!(auth::create_stream_token),
        operation!(claude_code::hook),
    ]
}

impl Operation {
    /// Takes the method and path out of the operation's own document. A handler whose
    /// attribute names no single operation is a mistake of this table; the table's unit test
    /// builds it, so the mistake fails the tests rather than a start.
    fn new(
        document: OpenApi,
        handler: &str,
        route: fn(actix_web::Route) -> actix_web::Route,
    ) -> Self {
        let (path, method) = {
            let mut paths = document.paths.paths.iter();
            let (path, item) = match (paths.next(), paths.next()) {
                (Some(only), None) => only,
                _ => panic!("{handler}: #[utoipa::path] must document exactly one path"),
            };
            let mut methods = methods_of(item);
            match (methods.next(), methods.next()) {
                (Some(only), None) => (path.clone(), only),
                _ => panic!("{handler}: #[utoipa::path] must document exactly one method"),
            }
        };
        Self {
            path,
            method,
            document,
            route,
        }
    }
}

/// The methods a path item documents.
fn methods_of(item: &PathItem) -> impl Iterator<Item = Method> + '_ {
    let operations: [(&Option<DocumentedOperation>, Method); 6] = [
        (&item.get, Method::GET),
        (&item.head, Method::HEAD),
        (&item.post, Method::POST),
        (&item.put, Method::PUT),
        (&item.patch, Method::PATCH),
        (&item.delete, Method::DELETE),
    ];
    operations
        .into_iter()
        .filter_map(|(operation, method)| operation.as_ref().map(|_| method))
}

/// The operations, built once for the process: routes borrow their patterns and `Allow`
/// values from here for as long as the server runs.
fn table() -> &'static [Operation] {
    static TABLE: OnceLock<Vec<Operation>> = OnceLock::new();
    TABLE.get_or_init(operations)
}

/// The OpenAPI document of each operation, for [`openapi::document`] to merge.
pub(super) fn documents() -> impl Iterator<Item = &'static OpenApi> {
    table().iter().map(|operation| &operation.document)
}

/// A path and the operations on it.
struct PathRoutes {
    path: &'static str,
    /// The value of `Allow` in a 405 from this path (RFC 9110): its methods, and `HEAD`
    /// wherever `GET` is (see [`answer_head_like_get`]).
    allow: String,
    operations: Vec<&'static Operation>,
}

/// The table's paths, each once and in the table's order.
fn paths() -> &'static [PathRoutes] {
    static PATHS: OnceLock<Vec<PathRoutes>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let mut paths: Vec<PathRoutes> = Vec::new();
        for operation in table() {
            match paths.iter_mut().find(|p| p.path == operation.path) {
                Some(routes) => routes.operations.push(operation),
                None => paths.push(PathRoutes {
                    path: &operation.path,
                    allow: String::new(),
                    operations: vec![operation],
                }),
            }
        }
        for routes in &mut paths {
            routes.allow = allow_header(routes.operations.iter().map(|o| &o.method));
        }
        paths
    })
}

/// `Allow`'s value for these methods: sorted, with `HEAD` where `GET` is.
fn allow_header<'m>(methods: impl Iterator<Item = &'m Method>) -> String {
    let mut names: Vec<&str> = methods.map(Method::as_str).collect();
    if names.contains(&"GET") {
        names.push("HEAD");
    }
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

/// Registers every path: its operations, a 405 problem with `Allow` for its other methods,
/// and its [`RoutePattern`].
pub(super) fn register(cfg: &mut web::ServiceConfig) {
    for entry in entries("", paths().iter().collect()) {
        let per_session = matches!(entry, Entry::Scope(pattern, _) if pattern == SESSION_SCOPE);
        match entry.service("") {
            Service::Resource(resource) => cfg.service(resource),
            // In cluster mode a session's requests are served by the node that holds it.
            Service::Scope(scope) if per_session => {
                cfg.service(scope.wrap(from_fn(super::forward::to_owner)))
            }
            Service::Scope(scope) => cfg.service(scope),
        };
    }
}

/// The scope of every per-session route.
const SESSION_SCOPE: &str = "/v1/sessions/{session_id}";

/// What is registered at one level of the routing tree.
enum Entry {
    Path(&'static PathRoutes),
    /// A scope whose pattern ends with a path parameter, and the paths under it.
    Scope(&'static str, Vec<Entry>),
}

enum Service {
    Resource(actix_web::Resource),
    Scope(actix_web::Scope),
}

/// The paths under `prefix`, with every path that has a parameter beyond the prefix put in
/// the scope that ends with that parameter. Routing then matches a session id (and an
/// interaction id) once per request: actix tries a scope's pattern, then only the routes inside
/// it, where a flat list ran the regex of every earlier route in turn (five of them before an
/// interaction's `/result`; `regex_lite` was 3.5 % of the server's CPU samples at 1,000
/// completions/s).
fn entries(prefix: &'static str, paths: Vec<&'static PathRoutes>) -> Vec<Entry> {
    let mut level: Vec<Entry> = Vec::new();
    let mut scoped: Vec<(&'static str, Vec<&'static PathRoutes>)> = Vec::new();
    for routes in paths {
        match scope_of(prefix, routes.path) {
            None => level.push(Entry::Path(routes)),
            Some(scope) => match scoped.iter_mut().find(|(s, _)| *s == scope) {
                Some((_, members)) => members.push(routes),
                None => {
                    // The scope takes the place of its first path.
                    level.push(Entry::Scope(scope, Vec::new()));
                    scoped.push((scope, vec![routes]));
                }
            },
        }
    }
    for (scope, members) in scoped {
        let place = level
            .iter_mut()
            .find(|entry| matches!(entry, Entry::Scope(s, _) if *s == scope));
        if let Some(Entry::Scope(_, inside)) = place {
            *inside = entries(scope, members);
        }
    }
    level
}

/// The scope of `path` under `prefix`: `path` up to the end of its first parameter beyond
/// `prefix`, when there is one.
fn scope_of(prefix: &str, path: &'static str) -> Option<&'static str> {
    let rest = &path[prefix.len()..];
    let open = rest.find('{')?;
    let close = open + rest[open..].find('}')?;
    Some(&path[..prefix.len() + close + 1])
}

impl Entry {
    fn service(&self, prefix: &'static str) -> Service {
        match self {
            Entry::Path(routes) => Service::Resource(resource(prefix, routes)),
            Entry::Scope(scope, inside) => {
                let mut service = web::scope(&scope[prefix.len()..]);
                for entry in inside {
                    service = match entry.service(scope) {
                        Service::Resource(resource) => service.service(resource),
                        Service::Scope(nested) => service.service(nested),
                    };
                }
                Service::Scope(service)
            }
        }
    }
}

/// One path's resource inside the scope `prefix`: registered by the rest of its pattern,
/// labelled with the whole of it.
fn resource(prefix: &str, routes: &'static PathRoutes) -> actix_web::Resource {
    let allow: &'static str = &routes.allow;
    let mut resource = web::resource(&routes.path[prefix.len()..])
        .app_data(RoutePattern(routes.path))
        .default_service(web::to(move |req: HttpRequest| async move {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                method: req.method().to_string(),
                allow,
            })
        }));
    for operation in &routes.operations {
        resource = resource.route((operation.route)(web::method(operation.method.clone())));
    }
    resource
}

/// The pattern of the route that matched a request, for metrics labels. Routing already
/// found it; `HttpRequest::match_pattern` would run every route's regex again per request.
#[derive(Clone, Copy, Debug)]
pub struct RoutePattern(pub &'static str);

/// Marks a request that arrived as `HEAD` and is being routed as `GET`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadRequest;

/// `HEAD` is answered on every `GET` route (RFC 9110 §9.3.2): the request is routed as a `GET`
/// and the connection's codec, which still knows the request was a `HEAD`, sends the headers
/// without the body.
pub async fn answer_head_like_get(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
        actix_web::HttpMessage::extensions_mut(&req).insert(HeadRequest);
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_documents_one_method_on_one_path() {
        // Building the table is the check: `Operation::new` refuses anything else.
        assert!(table().len() > 20);
        let mut seen = std::collections::HashSet::new();
        for operation in table() {
            assert!(operation.path.starts_with('/'), "{}", operation.path);
            assert!(
                seen.insert((operation.path.as_str(), operation.method.clone())),
                "{} {} twice",
                operation.method,
                operation.path
            );
        }
    }

    #[test]
    fn allow_lists_the_methods_sorted_with_head_beside_get() {
        assert_eq!(
            allow_header([Method::PUT, Method::GET].iter()),
            "GET, HEAD, PUT"
        );
        assert_eq!(allow_header([Method::POST].iter()), "POST");
    }

    #[test]
    fn a_path_is_scoped_up_to_its_first_parameter_beyond_the_prefix() {
        let interaction = "/v1/sessions/{session_id}/interactions/{interaction_id}/wait";
        assert_eq!(scope_of("", interaction), Some("/v1/sessions/{session_id}"));
        assert_eq!(
            scope_of("/v1/sessions/{session_id}", interaction),
            Some("/v1/sessions/{session_id}/interactions/{interaction_id}")
        );
        assert_eq!(
            scope_of(
                "/v1/sessions/{session_id}/interactions/{interaction_id}",
                interaction
            ),
            None
        );
        assert_eq!(scope_of("", "/v1/sessions"), None);
        assert_eq!(
            scope_of("", "/v1/sessions/{session_id}"),
            Some("/v1/sessions/{session_id}")
        );
        assert_eq!(
            scope_of("/v1/sessions/{session_id}", "/v1/sessions/{session_id}"),
            None
        );
    }

    #[test]
    fn the_session_routes_share_one_scope_and_interactions_one_inside_it() {
        let top = entries("", paths().iter().collect());
        let scopes: Vec<&str> = top
            .iter()
            .filter_map(|e| match e {
                Entry::Scope(scope, _) => Some(*scope),
                Entry::Path(_) => None,
            })
            .collect();
        assert_eq!(scopes, ["/v1/sessions/{session_id}"]);
    }
}
