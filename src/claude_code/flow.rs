//! The decisions a hook waits for, written once for both transports: the approval of a tool
//! use (opened, joined or waited for, then closed at its timeout) and the next instruction
//! taken at Stop. Each transport reaches the orchestrator its own way through
//! [`Orchestrator`]: `orchestrator hook` over HTTP, the server's Claude Code route through the
//! session actors.

use std::time::Duration;

use serde_json::{json, Value};

use super::decision::{fall_back, verdict_of, Fallback, Verdict};
use super::input::HookInput;

/// How much later than the hook's own wait the approval's deadline on the server is.
pub const APPROVAL_GRACE_MS: u64 = 5000;
/// The server's longest interaction wait.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How long after its PreToolUse a PermissionRequest joins that hook's approval: Claude Code
/// checks permissions right after PreToolUse answers.
pub const JOIN_WINDOW: Duration = Duration::from_secs(30);

/// Why the orchestrator gave no usable answer.
#[derive(Debug)]
pub enum Unanswered {
    /// It answered, but not with what was asked for (a 4xx).
    Refused { status: u16, detail: String },
    /// It could not be reached, or was unavailable.
    Unreachable(String),
}

/// What the flow needs of the orchestrator. Interactions are passed as their API JSON.
#[allow(async_fn_in_trait)]
pub trait Orchestrator {
    /// Opens `approval` (a `POST …/interactions` body) in `session`, creating the session if
    /// needed; the interaction, or the one with its id that existed already.
    async fn open(&self, session: &str, approval: &Value) -> Result<Value, Unanswered>;
    async fn get(&self, session: &str, id: &str) -> Result<Value, Unanswered>;
    /// The interaction once it is no longer open, or as it is after `wait`; `None` when it
    /// could not be asked this time (the caller tries again shortly).
    async fn wait(&self, session: &str, id: &str, wait: Duration) -> Option<Value>;
    /// Cancels the interaction; it as it ended up (a decision that came first stands), or
    /// `None` when that is unknown.
    async fn cancel(&self, session: &str, id: &str) -> Option<Value>;
    /// Hands out the session's next queued command that has a `prompt`, if any.
    async fn next_prompt(&self, session: &str) -> Result<Option<Value>, Unanswered>;
    /// Completes a command with `result` (a `POST …/result` body).
    async fn complete(&self, session: &str, id: &str, result: &Value) -> Result<(), Unanswered>;
    /// Records that a PreToolUse of the tool use `key` opened approval `id`.
    fn remember_approval(&self, session: &str, key: &str, id: &str) -> Result<(), String>;
    /// Takes (once) the approval a PreToolUse of `key` recorded within [`JOIN_WINDOW`].
    fn take_approval(&self, session: &str, key: &str) -> Option<String>;
    /// Something the person running the agent should know (the hook's stderr, the log).
    fn note(&self, what: &str);
}

/// How an approval is waited for.
#[derive(Clone, Copy, Debug)]
pub struct Waiting {
    pub timeout: Duration,
    pub fallback: Fallback,
}

/// The decision about this tool use: a PermissionRequest that follows a gated PreToolUse of
/// the same tool use gets that approval's decision (or its lack of one); otherwise an approval
/// is opened and waited for. A PreToolUse records its approval for the PermissionRequest.
pub async fn decide(o: &impl Orchestrator, waiting: Waiting, input: &HookInput) -> Verdict {
    let session = input.session_id.as_str();
    let key = input.tool_use_key().unwrap_or_default();
    if input.event_name == "PermissionRequest" {
        if let Some(id) = o.take_approval(session, &key) {
            return match o.get(session, &id).await {
                Ok(interaction) => await_decision(o, waiting, session, &id, interaction).await,
                Err(why) => unanswered(o, waiting.fallback, &why),
            };
        }
    }
    let timeout_ms = u64::try_from(waiting.timeout.as_millis()).unwrap_or(u64::MAX);
    let approval = input.approval(timeout_ms.saturating_add(APPROVAL_GRACE_MS));
    let id = approval["interaction_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let interaction = match o.open(session, &approval).await {
        Ok(interaction) => interaction,
        Err(why) => return unanswered(o, waiting.fallback, &why),
    };
    let verdict = await_decision(o, waiting, session, &id, interaction).await;
    if input.event_name == "PreToolUse" && !matches!(verdict, Verdict::Deny(_)) {
        if let Err(e) = o.remember_approval(session, &key, &id) {
            o.note(&format!(
                "cannot record the approval for its PermissionRequest: {e}"
            ));
        }
    }
    verdict
}

/// Waits for approval `id` (`interaction`: its state now) to be decided, at most the
/// approval timeout. Without a decision in time the approval is cancelled, which settles a
/// decision racing the timeout: whatever the server completed first is the answer.
async fn await_decision(
    o: &impl Orchestrator,
    waiting: Waiting,
    session: &str,
    id: &str,
    mut interaction: Value,
) -> Verdict {
    let deadline = std::time::Instant::now() + waiting.timeout;
    loop {
        if let Some(verdict) = verdict_of(&interaction, waiting.fallback) {
            return verdict;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match o.wait(session, id, left.min(MAX_WAIT)).await {
            Some(now) => interaction = now,
            // The server restarted or is briefly unavailable: keep waiting for the decision.
            None => actix_rt::time::sleep(Duration::from_millis(500).min(left)).await,
        }
    }
    let no_decision = || {
        fall_back(
            waiting.fallback,
            &format!("no decision within {} s", waiting.timeout.as_secs()),
        )
    };
    match o.cancel(session, id).await {
        Some(ended) if ended["status"] != "cancelled" => {
            verdict_of(&ended, waiting.fallback).unwrap_or_else(no_decision)
        }
        _ => no_decision(),
    }
}

fn unanswered(o: &impl Orchestrator, fallback: Fallback, why: &Unanswered) -> Verdict {
    match why {
        Unanswered::Refused { status, detail } => {
            o.note(&format!(
                "the approval could not be opened: {status} {detail}"
            ));
            fall_back(fallback, "the approval could not be opened")
        }
        Unanswered::Unreachable(why) => {
            o.note(&format!("the orchestrator is unreachable: {why}"));
            fall_back(fallback, "the orchestrator is unreachable")
        }
    }
}

/// Steering: the next instruction a person queued for this session (a command whose payload
/// has a `prompt`), taken at Stop so that the agent carries on with it instead of stopping.
/// The server hands each command out once, so of parallel hooks one delivers it; the command
/// is completed at once with where it went. A hand-out whose answer is lost on the way is not
/// delivered: the command stays pending until its deadline (at most once, never twice).
pub async fn next_instruction(
    o: &impl Orchestrator,
    input: &HookInput,
    via: &str,
) -> Option<String> {
    let session = input.session_id.as_str();
    let command = match o.next_prompt(session).await {
        Ok(command) => command?,
        Err(Unanswered::Refused { status: 404, .. }) => return None,
        Err(Unanswered::Refused { status, detail }) => {
            o.note(&format!(
                "the next instruction could not be taken: {status} {detail}"
            ));
            return None;
        }
        Err(Unanswered::Unreachable(why)) => {
            o.note(&format!("the next instruction could not be taken: {why}"));
            return None;
        }
    };
    let prompt = command["payload"]["prompt"].as_str()?.to_owned();
    let id = command["interaction_id"].as_str().unwrap_or_default();
    let delivered = json!({"status": "ok", "output": {
        "delivered_at": crate::domain::time::format_millis(crate::domain::time::now_millis()),
        "delivered_by": "Stop hook",
        "via": via,
        "agent": "claude-code",
    }});
    if let Err(why) = o.complete(session, id, &delivered).await {
        o.note(&format!(
            "instruction {id} delivered; recording that failed: {why:?}"
        ));
    }
    Some(prompt)
}
