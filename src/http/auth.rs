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
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|key| state.api_keys.scope_of(key.trim()))
        .map(|scope| CallerScope(scope.to_owned()))
        .ok_or(ApiError::Unauthorized)
}
