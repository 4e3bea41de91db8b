//! The query-string extractor of every handler. actix-web's own names no parameter when a
//! value is malformed ("invalid digit found in string"); this one says which.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;

/// The query string deserialized into `T`; a bad value is a 400 naming its parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> std::ops::Deref for Query<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Deserializes a query string, naming the parameter a failure is about.
pub(crate) fn parse_query<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(pairs).map_err(|e| {
        let path = e.path().to_string();
        let why = e.inner().to_string();
        ApiError::BadRequest(if path == "." {
            format!("bad query string: {why}")
        } else {
            format!("bad query parameter {path}: {why}")
        })
    })
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_query(req.query_string()).map(Query))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_query;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Page {
        limit: Option<i64>,
        after: Option<i64>,
    }

    #[test]
    fn a_bad_value_names_its_parameter() {
        let page: Page = parse_query("limit=5&after=7").unwrap();
        assert_eq!((page.limit, page.after), (Some(5), Some(7)));
        let err = parse_query::<Page>("limit=5&after=x7")
            .unwrap_err()
            .to_string();
        assert!(err.contains("after"), "{err}");
        assert!(!err.contains("limit"), "{err}");
        let err = parse_query::<Page>("limit=99999999999999999999").unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
    }
}
