//! `POST /v1/hooks/claude-code`: Claude Code's HTTP hooks (`"type": "http"`) post their input
//! here, so a team can point every developer's Claude Code at one server with no binary to
//! install. The input is stored as an event of its session, exactly as the command hook stores
//! it (without the spool's `sequence`: arrival order); a gated tool use waits here for its
//! decision and Stop takes the next instruction, through the same flow as `orchestrator hook`
//! ([`crate::claude_code::flow`]), with the session actors as its orchestrator. The answer is
//! what Claude Code reads from an HTTP hook: 200 with the hook's JSON, or an empty 200.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse, ResponseError};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;

use super::dto::InteractionDto;
use super::extract::Body;
use super::interactions::{find_interaction, wait_for_interaction};
use super::{parse_json, AppState, CallerScope};
use crate::actors::commands::{
    ActOnInteraction, Action, AppendEvents, CreateInteraction, EnsureSession, NextCommand,
};
use crate::actors::messages::SessionKey;
use crate::claude_code::decision::{hook_output, Fallback};
use crate::claude_code::flow::{self, Orchestrator, Unanswered, Waiting, JOIN_WINDOW};
use crate::claude_code::gates::Gates;
use crate::claude_code::input::HookInput;
use crate::domain::event::parse_body;
use crate::domain::ids::InteractionId;
use crate::domain::interaction::{CommandFilter, Decision, Interaction};
use crate::domain::json::JsonText;
use crate::http::error::ApiError;

/// The hook's settings, in the URL `hook install --transport http` writes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HookQuery {
    /// Ask a person where Claude Code would ask the user, for tools whose name matches.
    approve: Option<String>,
    /// Ask a person before every use of tools whose name matches (PreToolUse).
    require_approval: Option<String>,
    /// Seconds to wait for a decision (1-86400, default 300).
    #[param(minimum = 1, maximum = 86400)]
    approval_timeout: Option<u64>,
    /// `ask` (decide nothing) or `deny`, when no decision comes in time.
    #[param(pattern = "^(ask|deny)$")]
    on_timeout: Option<String>,
}

impl HookQuery {
    fn settings(&self) -> Result<(Gates, Waiting), ApiError> {
        let gates = Gates::parse(self.approve.as_deref(), self.require_approval.as_deref())
            .map_err(ApiError::BadRequest)?;
        let timeout = match self.approval_timeout {
            None => 300,
            Some(secs @ 1..=86_400) => secs,
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "approval_timeout must be from 1 to 86400 seconds".into(),
                ))
            }
        };
        let fallback = match self.on_timeout.as_deref() {
            None | Some("ask") => Fallback::Ask,
            Some("deny") => Fallback::Deny,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "on_timeout must be ask or deny, not {other:?}"
                )))
            }
        };
        Ok((
            gates,
            Waiting {
                timeout: Duration::from_secs(timeout),
                fallback,
            },
        ))
    }
}

/// `POST /v1/hooks/claude-code?approve=&require_approval=&approval_timeout=&on_timeout=`
#[utoipa::path(post, operation_id = "claude_code_hook", path = "/v1/hooks/claude-code", tag = "claude-code",
    params(HookQuery),
    request_body(content = crate::http::schemas::ClaudeCodeHookInput, description = "A Claude Code hook input, as Claude Code sends it (other fields are kept)"),
    responses(
        (status = 200, description = "Stored; the body is the hook's answer for Claude Code (JSON), or empty"),
        crate::http::schemas::BadRequest,
        crate::http::schemas::Unauthorized,
        crate::http::schemas::TooLarge,
        crate::http::schemas::Invalid,
        crate::http::schemas::Unavailable
    ))]
pub async fn hook(
    req: actix_web::HttpRequest,
    scope: CallerScope,
    state: web::Data<AppState>,
    query: super::Query<HookQuery>,
    Body(body): Body,
) -> Result<HttpResponse, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the body is not UTF-8".into()))?;
    let input = HookInput::parse(text)?;
    // In cluster mode the node holding the session answers (the whole hook: its approval
    // waits on that node's session actor).
    let session_id = input.session_id.as_str();
    if let Some(answer) =
        super::forward::elsewhere(&state, &req, &scope.0, session_id, body.clone()).await?
    {
        return Ok(answer);
    }
    let key = SessionKey {
        scope: scope.0.clone(),
        session_id: input.session_id.clone(),
    };
    // Stored first, so that settings this route cannot use still lose no event.
    let now = crate::domain::time::format_millis(crate::domain::time::now_millis());
    let event = input.event(&input.new_event_id(), &now, None).to_string();
    let events = parse_body(parse_json(event.as_bytes())?, 1)?;
    state
        .sessions
        .ask(key.clone(), AppendEvents { events })
        .await?;
    let (gates, waiting) = query.settings()?;
    let orchestrator = ActorOrchestrator {
        state: &state,
        scope: &scope.0,
    };
    let mut answer = None;
    if gates.gate(&input.event_name, input.tool_name()) {
        let verdict = flow::decide(&orchestrator, waiting, &input).await;
        answer = hook_output(&input.event_name, &verdict, input.permission_suggestions());
    }
    if input.event_name == "Stop" {
        let via = "http hook";
        if let Some(prompt) = flow::next_instruction(&orchestrator, &input, via).await {
            answer = Some(json!({"decision": "block", "reason": prompt}));
        }
    }
    Ok(match answer {
        Some(answer) => HttpResponse::Ok().json(answer),
        None => HttpResponse::Ok().finish(),
    })
}

/// Approvals opened by a PreToolUse through this route, for the PermissionRequest of the same
/// tool use to join (the command hook keeps these in its state directory).
#[derive(Default)]
pub struct JoinRecords(Mutex<HashMap<JoinKey, (String, Instant)>>);

/// (scope, session, tool use key).
type JoinKey = (String, String, String);

/// More records than this and the stale ones are dropped first.
const MAX_JOIN_RECORDS: usize = 10_000;

impl JoinRecords {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JoinKey, (String, Instant)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn remember(&self, at: JoinKey, id: &str) {
        let mut records = self.lock();
        if records.len() >= MAX_JOIN_RECORDS {
            records.retain(|_, (_, when)| when.elapsed() <= JOIN_WINDOW);
            if records.len() >= MAX_JOIN_RECORDS {
                records.clear();
            }
        }
        records.insert(at, (id.to_owned(), Instant::now()));
    }

    fn take(&self, at: &JoinKey) -> Option<String> {
        let (id, when) = self.lock().remove(at)?;
        (when.elapsed() <= JOIN_WINDOW).then_some(id)
    }
}

/// The flow's orchestrator inside the server: the caller's scope, through the session actors.
struct ActorOrchestrator<'a> {
    state: &'a AppState,
    scope: &'a str,
}

impl ActorOrchestrator<'_> {
    fn key(&self, session: &str) -> Result<SessionKey, Unanswered> {
        Ok(SessionKey {
            scope: self.scope.to_owned(),
            session_id: crate::domain::ids::SessionId::parse(session).map_err(refusal)?,
        })
    }

    fn dto(session: &str, interaction: &Interaction) -> Value {
        serde_json::to_value(InteractionDto::new(session, interaction)).unwrap_or(Value::Null)
    }
}

/// An error of the layers below as the flow sees it: what the API would have answered.
fn refusal(error: impl Into<ApiError>) -> Unanswered {
    let error = error.into();
    let status = error.status_code().as_u16();
    if status == 503 {
        return Unanswered::Unreachable(error.to_string());
    }
    Unanswered::Refused {
        status,
        detail: error.to_string(),
    }
}

fn interaction_id(id: &str) -> Result<InteractionId, Unanswered> {
    InteractionId::parse(id).map_err(refusal)
}

impl Orchestrator for ActorOrchestrator<'_> {
    async fn open(&self, session: &str, approval: &Value) -> Result<Value, Unanswered> {
        let key = self.key(session)?;
        let id = interaction_id(approval["interaction_id"].as_str().unwrap_or_default())?;
        let payload = JsonText::from_value(&approval["payload"]);
        let create = || CreateInteraction {
            id: id.clone(),
            kind: "approval".into(),
            payload: payload.clone(),
            timeout_ms: approval["timeout_ms"].as_i64().unwrap_or(300_000),
            queued: false,
        };
        let sessions = &self.state.sessions;
        let created = match sessions.ask(key.clone(), create()).await {
            Err(crate::actors::error::SessionError::SessionNotFound(_)) => {
                sessions
                    .ask(key.clone(), EnsureSession { metadata: None })
                    .await
                    .map_err(refusal)?;
                sessions.ask(key, create()).await
            }
            other => other,
        };
        let (interaction, _) = created.map_err(refusal)?;
        Ok(Self::dto(session, &interaction))
    }

    async fn get(&self, session: &str, id: &str) -> Result<Value, Unanswered> {
        let key = self.key(session)?;
        let interaction = find_interaction(self.state, &key, &interaction_id(id)?)
            .await
            .map_err(refusal)?;
        Ok(Self::dto(session, &interaction))
    }

    async fn wait(&self, session: &str, id: &str, wait: Duration) -> Option<Value> {
        let key = self.key(session).ok()?;
        let id = interaction_id(id).ok()?;
        let interaction = wait_for_interaction(self.state, key, id, wait).await.ok()?;
        Some(Self::dto(session, &interaction))
    }

    async fn cancel(&self, session: &str, id: &str) -> Option<Value> {
        let key = self.key(session).ok()?;
        let id = interaction_id(id).ok()?;
        let action = ActOnInteraction {
            id,
            action: Action::Cancel,
        };
        match self.state.sessions.ask(key, action).await {
            Ok(outcome) => Some(Self::dto(session, &outcome.interaction)),
            Err(crate::actors::error::SessionError::Conflict { interaction, .. }) => {
                Some(Self::dto(session, &interaction))
            }
            Err(_) => None,
        }
    }

    async fn next_prompt(&self, session: &str) -> Result<Option<Value>, Unanswered> {
        let key = self.key(session)?;
        let next = NextCommand {
            wait: Duration::ZERO,
            takes: CommandFilter::Prompts,
        };
        let handed_out = self.state.sessions.ask(key, next).await.map_err(refusal)?;
        Ok(handed_out.map(|command| Self::dto(session, &command)))
    }

    async fn complete(&self, session: &str, id: &str, result: &Value) -> Result<(), Unanswered> {
        let key = self.key(session)?;
        let output = JsonText::from_value(&result["output"]);
        let action = ActOnInteraction {
            id: interaction_id(id)?,
            action: Action::Decide(Decision::Result {
                ok: result["status"] == "ok",
                output,
            }),
        };
        self.state
            .sessions
            .ask(key, action)
            .await
            .map(|_| ())
            .map_err(refusal)
    }

    fn remember_approval(&self, session: &str, key: &str, id: &str) -> Result<(), String> {
        let at = (self.scope.to_owned(), session.to_owned(), key.to_owned());
        self.state.claude_code_joins.remember(at, id);
        Ok(())
    }

    fn take_approval(&self, session: &str, key: &str) -> Option<String> {
        let at = (self.scope.to_owned(), session.to_owned(), key.to_owned());
        self.state.claude_code_joins.take(&at)
    }

    fn note(&self, what: &str) {
        log::info!("claude-code hook in scope {}: {what}", self.scope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(session: &str) -> JoinKey {
        ("default".into(), session.into(), "key".into())
    }

    #[test]
    fn a_join_record_is_taken_once_and_the_records_stay_bounded() {
        let records = JoinRecords::default();
        records.remember(at("s1"), "approval-1");
        records.remember(at("s1"), "approval-2");
        assert_eq!(records.take(&at("s2")), None, "per session");
        assert_eq!(records.take(&at("s1")).as_deref(), Some("approval-2"));
        assert_eq!(records.take(&at("s1")), None, "used once");
        for n in 0..MAX_JOIN_RECORDS + 10 {
            records.remember(at(&format!("s{n}")), "approval");
        }
        assert!(records.lock().len() <= MAX_JOIN_RECORDS);
    }
}
