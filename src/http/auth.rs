//! Scopes and bearer keys (contract §3): the extractor every `/v1` handler takes first. With
//! no keys configured everything is in scope `default`.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage, HttpRequest};

use super::AppState;
use crate::config::DEFAULT_SCOPE;
use crate::http::error::ApiError;

/// The scope of the caller, from its bearer key.
#[derive(Clone, Debug)]
pub struct CallerScope(pub String);

impl FromRequest for CallerScope {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(scope_of(req))
    }
}

pub(crate) fn scope_of(req: &HttpRequest) -> Result<CallerScope, ApiError> {
    if let Some(scope) = req.extensions().get::<CallerScope>() {
        // Admission found it already (see `super::admission`).
        return Ok(scope.clone());
    }
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        log::error!("application state is missing");
        return Err(ApiError::StorageUnavailable);
    };
    bearer_scope(req, state).ok_or(ApiError::Unauthorized)
}

/// The scope the request's bearer key opens (`default` when auth is off).
fn bearer_scope(req: &HttpRequest, state: &AppState) -> Option<CallerScope> {
    if !state.api_keys.is_enabled() {
        return Some(CallerScope(DEFAULT_SCOPE.to_owned()));
    }
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials)
        .and_then(|key| state.api_keys.scope_of(key))
        .map(|scope| CallerScope(scope.to_owned()))
}

/// The scope a request's credentials open, if any: its bearer key, or on `/v1/stream` a
/// stream token. Admission asks before the handler runs; the extractors then reuse it.
pub(super) fn scope_of_request(req: &HttpRequest, state: &AppState) -> Option<CallerScope> {
    if req.path() == "/v1/stream" && !req.headers().contains_key(header::AUTHORIZATION) {
        if let Some(token) = stream_token(req) {
            return state
                .stream_tokens
                .verify(&token, unix_now())
                .map(CallerScope);
        }
    }
    bearer_scope(req, state)
}

/// The `token` query parameter.
fn stream_token(req: &HttpRequest) -> Option<String> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
}

/// The credentials of an `Authorization: Bearer KEY` header. The scheme is matched without
/// regard to case (RFC 9110 §11.1), and the space after it may be repeated.
fn bearer_credentials(header: &str) -> Option<&str> {
    let (scheme, credentials) = header.trim().split_once(' ')?;
    let credentials = credentials.trim_start();
    (scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty()).then_some(credentials)
}

#[cfg(test)]
mod tests {
    use super::bearer_credentials;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer k1", "bearer k1", "BEARER  k1", " Bearer k1 "] {
            assert_eq!(bearer_credentials(header), Some("k1"), "{header:?}");
        }
        for header in ["Basic k1", "Bearer", "Bearer ", "Bearerk1", "k1"] {
            assert_eq!(bearer_credentials(header), None, "{header:?}");
        }
    }
}

/// How long a stream token may be used to open a stream.
pub const STREAM_TOKEN_SECS: u64 = 300;

/// Short-lived credentials for `GET /v1/stream`, whose browser client (`EventSource`) cannot
/// send an `Authorization` header. A token names its scope and its expiry and carries an
/// HMAC-SHA256 of both under a key made at start-up, so nothing is stored per token and a
/// restart invalidates them all (a page then asks for a new one with its bearer key).
pub struct StreamTokens {
    key: [u8; 32],
}

impl Default for StreamTokens {
    fn default() -> Self {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self { key }
    }
}

impl StreamTokens {
    fn mac(&self, expires: u64, scope: &str) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(format!("{expires}.{scope}").as_bytes());
        mac
    }

    /// A token for `scope`, valid until `now + STREAM_TOKEN_SECS` (Unix seconds).
    pub fn mint(&self, scope: &str, now: u64) -> String {
        use hmac::Mac;
        let expires = now + STREAM_TOKEN_SECS;
        let tag: String = self
            .mac(expires, scope)
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{expires}.{tag}.{scope}")
    }

    /// The scope a token opens, if it is genuine and not expired at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Option<String> {
        use hmac::Mac;
        let mut parts = token.splitn(3, '.');
        let expires: u64 = parts.next()?.parse().ok()?;
        let tag = parts.next()?;
        let scope = parts.next()?;
        if expires < now || tag.len() != 64 {
            return None;
        }
        let tag: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(tag.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<_>>()?;
        // verify_slice compares in constant time.
        self.mac(expires, scope).verify_slice(&tag).ok()?;
        Some(scope.to_owned())
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A stream token for the caller's scope.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct StreamToken {
    /// Pass as `?token=` to `GET /v1/stream`.
    token: String,
    /// Seconds the token can be used to open a stream (an open stream is not cut then).
    expires_in: u64,
}

/// `POST /v1/stream-tokens`: a short-lived credential that opens `GET /v1/stream` of the
/// caller's scope, for clients (browsers' EventSource) that cannot send `Authorization`.
#[utoipa::path(post, operation_id = "create_stream_token", path = "/v1/stream-tokens", tag = "notifications",
    responses((status = 201, description = "A token for ?token= on /v1/stream", body = StreamToken),
        crate::http::schemas::Unauthorized))]
pub async fn create_stream_token(
    scope: CallerScope,
    state: web::Data<AppState>,
) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Created().json(StreamToken {
        token: state.stream_tokens.mint(&scope.0, unix_now()),
        expires_in: STREAM_TOKEN_SECS,
    })
}

/// The caller's scope on `GET /v1/stream`: its bearer key, or else a stream token in the
/// query string (`?token=`).
pub struct StreamCaller(pub CallerScope);

impl FromRequest for StreamCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(scope) = req.extensions().get::<CallerScope>() {
            return ready(Ok(StreamCaller(scope.clone())));
        }
        let has_header = req.headers().contains_key(header::AUTHORIZATION);
        let token = (!has_header).then(|| stream_token(req)).flatten();
        let (Some(token), Some(state)) = (token, req.app_data::<web::Data<AppState>>()) else {
            return ready(scope_of(req).map(StreamCaller));
        };
        ready(
            state
                .stream_tokens
                .verify(&token, unix_now())
                .map(|scope| StreamCaller(CallerScope(scope)))
                .ok_or(ApiError::Unauthorized),
        )
    }
}

#[cfg(test)]
mod token_tests {
    use super::*;

    #[test]
    fn tokens_open_their_scope_until_they_expire() {
        let tokens = StreamTokens::default();
        let token = tokens.mint("team.a", 1000);
        assert_eq!(tokens.verify(&token, 1000).as_deref(), Some("team.a"));
        assert_eq!(
            tokens.verify(&token, 1000 + STREAM_TOKEN_SECS).as_deref(),
            Some("team.a")
        );
        assert_eq!(
            tokens.verify(&token, 1001 + STREAM_TOKEN_SECS),
            None,
            "expired"
        );
        let forged = token.replace("team.a", "team.b");
        assert_eq!(tokens.verify(&forged, 1000), None, "another scope");
        let later = token.replacen("1300", "9999", 1);
        assert_eq!(tokens.verify(&later, 1000), None, "a later expiry");
        assert_eq!(
            StreamTokens::default().verify(&token, 1000),
            None,
            "another server"
        );
        for junk in ["", "x", "1.2.3", "99999999999.zz.s"] {
            assert_eq!(tokens.verify(junk, 0), None, "{junk}");
        }
    }
}
