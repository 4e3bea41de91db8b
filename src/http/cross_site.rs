//! What a web page of another site may do here: nothing. The service usually runs on loopback
//! with auth off, beside the agent it coordinates, and any page the user opens can send
//! requests there. Every request passes [`enforce`] before it is routed:
//! - its `Host` must be one the service answers to (loopback names and addresses, the listen
//!   address, `ORCH_ALLOWED_HOSTS`), else 421: a DNS-rebinding page reaches the service under
//!   its own name, and is refused;
//! - a request that may change something (any method but GET, HEAD, OPTIONS) and carries an
//!   `Origin` must come from the service's own origin or one of `ORCH_ALLOWED_ORIGINS`, else
//!   403, auth on or off;
//! - a request with a body must say `Content-Type: application/json`, else 415. A browser sends
//!   that type across sites only after a CORS preflight, which the service never grants.
//!
//! Every answer also carries headers that keep the dashboard out of other sites' frames and
//! browsers from guessing content types ([`SECURITY_HEADERS`]).

use std::net::{IpAddr, SocketAddr};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use super::AppState;
use crate::http::error::{ApiError, EdgeRefusal};
use actix_web::http::StatusCode;

/// Why a request was refused before it was routed. Answered as problem JSON ([`EdgeRefusal`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CrossSiteRefusal {
    /// 421.
    #[error("this service does not answer to host {0:?}; add it to ORCH_ALLOWED_HOSTS")]
    Host(String),
    /// 403.
    #[error(
        "requests from origin {0:?} may not change anything here; add it to ORCH_ALLOWED_ORIGINS"
    )]
    Origin(String),
    /// 415.
    #[error("a request body must be sent as Content-Type: application/json, not {0:?}")]
    MediaType(String),
}

impl EdgeRefusal for CrossSiteRefusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::Host(_) => StatusCode::MISDIRECTED_REQUEST,
            Self::Origin(_) => StatusCode::FORBIDDEN,
            Self::MediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Host(_) => "host_not_allowed",
            Self::Origin(_) => "origin_not_allowed",
            Self::MediaType(_) => "unsupported_media_type",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Host(_) => "Misdirected request",
            Self::Origin(_) => "Forbidden",
            Self::MediaType(_) => "Unsupported media type",
        }
    }
}

impl From<CrossSiteRefusal> for ApiError {
    fn from(refusal: CrossSiteRefusal) -> Self {
        Self::Refused(Box::new(refusal))
    }
}

/// Answer headers that apply to every response: the dashboard loads nothing from elsewhere,
/// runs no inline script, and cannot be framed (clickjacking its Approve button).
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
];

/// The hosts and origins the service answers to.
#[derive(Clone, Debug)]
pub struct SitePolicy {
    /// The address the server listens on: its IP is a host it answers to, and when it is
    /// unspecified (0.0.0.0, ::) every IP literal is (the machine's addresses are not known).
    listen: SocketAddr,
    /// `ORCH_ALLOWED_HOSTS`, lower case: `name` (any port) or `name:port`.
    hosts: Vec<String>,
    /// `ORCH_ALLOWED_HOSTS=*`: any host (a proxy in front checks it).
    any_host: bool,
    /// `ORCH_ALLOWED_ORIGINS`, lower case, without a default port.
    origins: Vec<String>,
}

impl SitePolicy {
    pub fn new(listen: SocketAddr, hosts: &[String], origins: &[String]) -> Self {
        Self {
            listen,
            any_host: hosts.iter().any(|h| h.trim() == "*"),
            hosts: hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty() && h != "*")
                .collect(),
            origins: origins
                .iter()
                .filter_map(|o| normalize_origin(o.trim()))
                .collect(),
        }
    }

    /// Whether a request addressed to `host` (its `Host` header) is answered.
    pub fn host_allowed(&self, host: &str) -> bool {
        if self.any_host {
            return true;
        }
        let host = host.trim().to_ascii_lowercase();
        let Some((name, _port)) = split_authority(&host) else {
            return false;
        };
        if self.hosts.iter().any(|h| *h == host || h == name) {
            return true;
        }
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        let ip = name.trim_start_matches('[').trim_end_matches(']');
        match ip.parse::<IpAddr>() {
            Ok(ip) => {
                ip.is_loopback() || self.listen.ip().is_unspecified() || ip == self.listen.ip()
            }
            Err(_) => false,
        }
    }

    /// Whether a page of `origin` may send a request that changes something to `host`: the
    /// page was served by this service under that host, or its origin is allowed.
    pub fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let Some(origin) = normalize_origin(origin.trim()) else {
            return false;
        };
        if self.origins.contains(&origin) {
            return true;
        }
        let authority = origin.split_once("://").map_or("", |(_, a)| a);
        authority == without_default_port(&host.trim().to_ascii_lowercase())
    }
}

/// `host` and `port` of an authority (`name`, `name:port`, `[v6]`, `[v6]:port`); `None` when
/// it is not one.
fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    let (name, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (name, rest) = authority.split_at(end + 1);
        match rest {
            "" => (name, None),
            _ => (name, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (!name.is_empty() && port_ok).then_some((name, port))
}

/// An authority without `:80` or `:443`, which a browser leaves out of an origin.
fn without_default_port(authority: &str) -> &str {
    authority
        .strip_suffix(":80")
        .or_else(|| authority.strip_suffix(":443"))
        .unwrap_or(authority)
}

/// `scheme://authority` in lower case without its default port; `None` for `null` and
/// anything that is not an http(s) origin.
fn normalize_origin(origin: &str) -> Option<String> {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://")?;
    let default = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    split_authority(authority)?;
    let authority = authority.strip_suffix(default).unwrap_or(authority);
    Some(format!("{scheme}://{authority}"))
}

/// Whether a `Content-Type` value names JSON (parameters such as `charset` aside).
fn is_json(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    media_type.eq_ignore_ascii_case("application/json")
}

/// Methods that only read.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The checks of this module, on a request's method and headers.
fn check(
    policy: &SitePolicy,
    method: &Method,
    headers: &header::HeaderMap,
) -> Result<(), CrossSiteRefusal> {
    // Borrowed from the header (it runs on every request); copied only into a refusal.
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .unwrap_or_default()
    };
    // The connection guard makes sure there is exactly one Host header.
    let host = text(header::HOST);
    if !policy.host_allowed(&host) {
        return Err(CrossSiteRefusal::Host(host.into_owned()));
    }
    if is_safe(method) {
        return Ok(());
    }
    if headers.contains_key(header::ORIGIN) {
        let origin = text(header::ORIGIN);
        if !policy.origin_allowed(&origin, &host) {
            return Err(CrossSiteRefusal::Origin(origin.into_owned()));
        }
    }
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|n| n.as_bytes().trim_ascii() != b"0");
    if has_body {
        let content_type = text(header::CONTENT_TYPE);
        if !is_json(&content_type) {
            return Err(CrossSiteRefusal::MediaType(content_type.into_owned()));
        }
    }
    Ok(())
}

/// The middleware: refuses what [`check`] refuses, before routing and before any body is
/// read, and adds [`SECURITY_HEADERS`] to every answer.
pub async fn enforce(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let refused = match req.app_data::<web::Data<AppState>>() {
        Some(state) => check(&state.site_policy, req.method(), req.headers()).err(),
        None => None,
    };
    let mut response = match refused {
        Some(refusal) => {
            let answer = ApiError::from(refusal).error_response();
            req.into_response(answer).map_into_right_body()
        }
        None => next.call(req).await?.map_into_left_body(),
    };
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            header::HeaderName::from_static(name),
            header::HeaderValue::from_static(value),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(listen: &str, hosts: &[&str], origins: &[&str]) -> SitePolicy {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        SitePolicy::new(listen.parse().unwrap(), &own(hosts), &own(origins))
    }

    #[test]
    fn loopback_names_and_the_listen_address_are_answered_by_default() {
        let p = policy("127.0.0.1:8080", &[], &[]);
        for host in [
            "localhost:8080",
            "LOCALHOST",
            "app.localhost:8080",
            "127.0.0.1:8080",
            "127.0.0.2",
            "[::1]:8080",
        ] {
            assert!(p.host_allowed(host), "{host}");
        }
        for host in [
            "attacker.example",
            "attacker.example:8080",
            "localhost.attacker.example",
            "10.0.0.5:8080",
            "",
            "[::1",
            "localhost:80x",
        ] {
            assert!(!p.host_allowed(host), "{host}");
        }
        let open = policy("0.0.0.0:8080", &[], &[]);
        assert!(
            open.host_allowed("10.0.0.5:8080"),
            "any of the machine's addresses"
        );
        assert!(!open.host_allowed("attacker.example"), "but no other name");
        let one = policy("10.0.0.5:8080", &[], &[]);
        assert!(one.host_allowed("10.0.0.5:8080"));
        assert!(!one.host_allowed("10.0.0.6:8080"));
    }

    #[test]
    fn allowed_hosts_match_by_name_or_by_name_and_port() {
        let p = policy(
            "127.0.0.1:8080",
            &["orch.example.com", "Proxy.Internal:9000"],
            &[],
        );
        assert!(p.host_allowed("orch.example.com"));
        assert!(p.host_allowed("ORCH.example.com:443"));
        assert!(p.host_allowed("proxy.internal:9000"));
        assert!(!p.host_allowed("proxy.internal:9001"));
        assert!(policy("127.0.0.1:1", &["*"], &[]).host_allowed("anything.example"));
    }

    #[test]
    fn only_the_own_origin_and_allowed_ones_may_change_things() {
        let p = policy("127.0.0.1:8080", &[], &["https://Dash.Example.com:443"]);
        assert!(p.origin_allowed("http://localhost:8080", "localhost:8080"));
        assert!(p.origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(p.origin_allowed("https://orch.example.com", "orch.example.com"));
        assert!(p.origin_allowed("https://dash.example.com", "127.0.0.1:8080"));
        assert!(!p.origin_allowed("http://localhost:8081", "localhost:8080"));
        assert!(!p.origin_allowed("http://127.0.0.1:8080", "localhost:8080"));
        assert!(!p.origin_allowed("null", "localhost:8080"));
        assert!(!p.origin_allowed("file://", "localhost:8080"));
        assert!(!p.origin_allowed("https://attacker.example", "localhost:8080"));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> header::HeaderMap {
        let mut map = header::HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                header::HeaderName::from_static(name),
                header::HeaderValue::from_static(value),
            );
        }
        map
    }

    #[test]
    fn a_body_must_be_json_and_a_foreign_origin_may_only_read() {
        let p = policy("127.0.0.1:8080", &[], &[]);
        let host = ("host", "localhost:8080");
        let post = Method::POST;
        let json = headers(&[
            host,
            ("content-length", "2"),
            ("content-type", "application/json; charset=utf-8"),
        ]);
        assert_eq!(check(&p, &post, &json), Ok(()));
        let plain = headers(&[
            host,
            ("content-length", "2"),
            ("content-type", "text/plain"),
        ]);
        assert!(matches!(
            check(&p, &post, &plain),
            Err(CrossSiteRefusal::MediaType(_))
        ));
        let untyped = headers(&[host, ("transfer-encoding", "chunked")]);
        assert!(matches!(
            check(&p, &post, &untyped),
            Err(CrossSiteRefusal::MediaType(_))
        ));
        let empty = headers(&[host, ("content-length", "0")]);
        assert_eq!(check(&p, &post, &empty), Ok(()), "no body, no type needed");
        let foreign = headers(&[host, ("origin", "http://evil.localhost:9999")]);
        assert!(matches!(
            check(&p, &post, &foreign),
            Err(CrossSiteRefusal::Origin(_))
        ));
        assert_eq!(
            check(&p, &Method::GET, &foreign),
            Ok(()),
            "reads stay same-origin-policy's"
        );
        let rebound = headers(&[("host", "attacker.example:8080")]);
        assert!(matches!(
            check(&p, &Method::GET, &rebound),
            Err(CrossSiteRefusal::Host(_))
        ));
    }
}
