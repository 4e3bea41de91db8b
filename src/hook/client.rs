//! The hook's view of the server: a few JSON requests, each bounded by the run's deadline.
//! Anything but an answer (refused connection, timeout, a 503) is "unavailable": the caller
//! spools or falls back, it never waits longer.

use std::time::{Duration, Instant};

use actix_web::http::Method;
use serde_json::Value;

pub struct Server {
    client: awc::Client,
    base: String,
    key: Option<String>,
}

/// What a request came to.
#[derive(Debug)]
pub enum Reply {
    /// The server answered (not 503): status and body (Null when empty or not JSON).
    Answered(u16, Value),
    /// No usable answer in time; why, for the log.
    Unavailable(String),
}

impl Server {
    pub fn new(base: &str, key: Option<String>) -> Self {
        Self {
            client: awc::Client::builder()
                .disable_timeout()
                .disable_redirects()
                .finish(),
            base: base.trim_end_matches('/').to_owned(),
            key,
        }
    }

    /// Sends one request, giving up at `deadline`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        deadline: Instant,
    ) -> Reply {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(5) {
            return Reply::Unavailable("out of time".into());
        }
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .timeout(left);
        if let Some(key) = &self.key {
            request = request.insert_header(("Authorization", format!("Bearer {key}")));
        }
        let sent = match body {
            Some(body) => request.send_json(body).await,
            None => request.send().await,
        };
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => return Reply::Unavailable(e.to_string()),
        };
        let status = response.status().as_u16();
        let body = match actix_rt::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            response.body().limit(16 << 20),
        )
        .await
        {
            Ok(Ok(bytes)) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            Ok(Err(e)) => return Reply::Unavailable(format!("reading the answer: {e}")),
            Err(_) => return Reply::Unavailable("out of time reading the answer".into()),
        };
        if status == 503 {
            return Reply::Unavailable(format!("503 {}", body["code"].as_str().unwrap_or("")));
        }
        Reply::Answered(status, body)
    }
}
