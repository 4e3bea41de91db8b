//! The hook's view of the server: a few JSON requests, each bounded by the run's deadline.
//! Anything but an answer (refused connection, timeout, a 503) is "unavailable": the caller
//! spools or falls back, it never waits longer.

use std::time::{Duration, Instant};

use actix_web::http::Method;
use serde_json::Value;

use crate::claude_code::flow::{Orchestrator, Unanswered, JOIN_WINDOW};

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

/// The approval and steering flow's view of the orchestrator, for the command transport: the
/// server over HTTP, and the state directory for the record a PermissionRequest joins.
pub struct HookOrchestrator<'a> {
    pub server: &'a Server,
    pub state: Option<&'a super::state::StateDir>,
}

/// How long one request of the flow may take (waits add their own time).
const REQUEST_TIME: Duration = Duration::from_secs(5);

fn soon() -> Instant {
    Instant::now() + REQUEST_TIME
}

fn unanswered(reply: Reply) -> Unanswered {
    match reply {
        Reply::Answered(status, body) => Unanswered::Refused {
            status,
            detail: body["detail"].as_str().unwrap_or("").to_owned(),
        },
        Reply::Unavailable(why) => Unanswered::Unreachable(why),
    }
}

impl Orchestrator for HookOrchestrator<'_> {
    async fn open(&self, session: &str, approval: &Value) -> Result<Value, Unanswered> {
        let base = format!("/v1/sessions/{session}");
        let interactions = format!("{base}/interactions");
        let create = || {
            self.server
                .request(Method::POST, &interactions, Some(approval), soon())
        };
        // The session exists once the event is delivered; if it was spooled instead, create it.
        let created = match create().await {
            Reply::Answered(404, _) => {
                let _ = self
                    .server
                    .request(Method::PUT, &base, Some(&serde_json::json!({})), soon())
                    .await;
                create().await
            }
            other => other,
        };
        match created {
            Reply::Answered(200 | 201, body) => Ok(body),
            other => Err(unanswered(other)),
        }
    }

    async fn get(&self, session: &str, id: &str) -> Result<Value, Unanswered> {
        let path = format!("/v1/sessions/{session}/interactions/{id}");
        match self.server.request(Method::GET, &path, None, soon()).await {
            Reply::Answered(200, body) => Ok(body),
            other => Err(unanswered(other)),
        }
    }

    async fn wait(&self, session: &str, id: &str, wait: Duration) -> Option<Value> {
        let ms = wait.as_millis().max(1);
        let path = format!("/v1/sessions/{session}/interactions/{id}/wait?timeout_ms={ms}");
        match self
            .server
            .request(
                Method::GET,
                &path,
                None,
                Instant::now() + wait + REQUEST_TIME,
            )
            .await
        {
            Reply::Answered(200, body) => Some(body),
            _ => None,
        }
    }

    async fn cancel(&self, session: &str, id: &str) -> Option<Value> {
        let path = format!("/v1/sessions/{session}/interactions/{id}/cancel");
        let deadline = Instant::now() + Duration::from_secs(3);
        match self
            .server
            .request(Method::POST, &path, None, deadline)
            .await
        {
            Reply::Answered(200 | 409, body) => Some(body["interaction"].clone()),
            _ => None,
        }
    }

    async fn next_prompt(&self, session: &str) -> Result<Option<Value>, Unanswered> {
        let path = format!("/v1/sessions/{session}/commands/next?with_prompt=true");
        match self.server.request(Method::POST, &path, None, soon()).await {
            Reply::Answered(200, command) => Ok(Some(command)),
            Reply::Answered(204, _) => Ok(None),
            other => Err(unanswered(other)),
        }
    }

    async fn complete(&self, session: &str, id: &str, result: &Value) -> Result<(), Unanswered> {
        let path = format!("/v1/sessions/{session}/interactions/{id}/result");
        let deadline = Instant::now() + Duration::from_secs(3);
        match self
            .server
            .request(Method::POST, &path, Some(result), deadline)
            .await
        {
            Reply::Answered(200, _) => Ok(()),
            other => Err(unanswered(other)),
        }
    }

    fn remember_approval(&self, session: &str, key: &str, id: &str) -> Result<(), String> {
        match self.state {
            Some(state) => state
                .remember_approval(session, key, id)
                .map_err(|e| e.to_string()),
            None => Err("there is no state directory".into()),
        }
    }

    fn take_approval(&self, session: &str, key: &str) -> Option<String> {
        self.state?.take_approval(session, key, JOIN_WINDOW)
    }

    fn note(&self, what: &str) {
        eprintln!("orchestrator hook: {what}");
    }
}
