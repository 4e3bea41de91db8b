//! Scopes and bearer keys (contract §3): the extractor every `/v1` handler takes first. With
//! no keys configured everything is in scope `default`.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};

use super::AppState;
use crate::error::ApiError;

pub const DEFAULT_SCOPE: &str = "default";

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

fn scope_of(req: &HttpRequest) -> Result<CallerScope, ApiError> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        log::error!("application state is missing");
        return Err(ApiError::StorageUnavailable);
    };
    if !state.api_keys.is_enabled() {
        return Ok(CallerScope(DEFAULT_SCOPE.to_owned()));
    }
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials)
        .and_then(|key| state.api_keys.scope_of(key))
        .map(|scope| CallerScope(scope.to_owned()))
        .ok_or(ApiError::Unauthorized)
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
