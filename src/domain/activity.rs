//! What a session's events say about it, for people looking at a list of agents: its project
//! (the working directory), model, title (the first prompt) and what it is doing now. Kept by
//! the session as its events are applied, from Claude Code's hook events (and the same fields
//! from any client), so the session list can show it without reading events.

use serde::{Deserialize, Serialize};

use super::event::NewEvent;
use super::json::{self, JsonText};

/// The longest title kept (the first prompt's start), in characters.
const TITLE_CHARS: usize = 200;
/// The longest project path and model name kept, in bytes.
const FIELD_BYTES: usize = 512;

/// What the events say; every field is absent until an event says it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFacts {
    /// The working directory of the latest event that had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The first prompt, cut to its first 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<Activity>,
}

/// What the agent is doing, by its latest event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// A prompt or a tool use is under way.
    Working,
    /// It asked a person: a permission prompt, or it is idle waiting for input.
    Waiting,
    /// It finished its turn (Stop).
    Stopped,
    /// The session ended.
    Ended,
}

impl SessionFacts {
    /// Takes in what `event` says.
    pub fn observe(&mut self, event: &NewEvent) {
        // The data's members are read once (an event's data can be large).
        let mut data = event.data.as_ref().and_then(JsonText::fields);
        let mut text = |name: &str| {
            data.as_mut()
                .and_then(|d| d.take(name))
                .and_then(json::string)
                .filter(|t| !t.trim().is_empty())
        };
        if let Some(cwd) = text("cwd") {
            self.project = Some(cut_bytes(cwd, FIELD_BYTES));
        }
        if let Some(model) = text("model") {
            self.model = Some(cut_bytes(model, FIELD_BYTES));
        }
        let kind = event.event_type.as_str();
        if self.title.is_none() && kind == "UserPromptSubmit" {
            if let Some(prompt) = text("prompt") {
                self.title = Some(prompt.trim().chars().take(TITLE_CHARS).collect());
            }
        }
        let notification_type = if kind == "Notification" {
            text("notification_type")
        } else {
            None
        };
        let activity = match kind {
            "UserPromptSubmit" | "PreToolUse" | "PostToolUse" | "PostToolUseFailure"
            | "PostToolBatch" | "SubagentStart" | "SubagentStop" | "PreCompact" | "PostCompact" => {
                Some(Activity::Working)
            }
            "PermissionRequest" => Some(Activity::Waiting),
            "Notification" => match notification_type.as_deref() {
                Some("idle_prompt" | "permission_prompt" | "elicitation_dialog") => {
                    Some(Activity::Waiting)
                }
                _ => None,
            },
            "Stop" | "StopFailure" => Some(Activity::Stopped),
            "SessionStart" | "session_start" => Some(Activity::Working),
            "SessionEnd" | "session_end" if event.interaction_id.is_none() => Some(Activity::Ended),
            _ => None,
        };
        if activity.is_some() {
            self.activity = activity;
        }
    }

    /// As stored: a JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// From storage; what cannot be read is taken as nothing known yet.
    pub fn from_json(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }
}

fn cut_bytes(mut text: String, max: usize) -> String {
    if text.len() > max {
        text.truncate(text.floor_char_boundary(max));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(body: serde_json::Value) -> NewEvent {
        let mut body = body;
        body["timestamp"] = json!("2026-12-05T10:00:00Z");
        let text = body.to_string();
        let raw: &serde_json::value::RawValue = serde_json::from_str(&text).unwrap();
        crate::domain::event::parse_body(raw, 1).unwrap().remove(0)
    }

    fn hook(name: &str, data: serde_json::Value) -> NewEvent {
        event(json!({"event_type": name, "data": data}))
    }

    #[test]
    fn a_claude_code_session_reads_as_its_project_model_title_and_activity() {
        let mut facts = SessionFacts::default();
        let start = hook(
            "SessionStart",
            json!({"cwd": "/home/dev/acme", "model": "claude-opus-5-5", "source": "startup"}),
        );
        facts.observe(&start);
        assert_eq!(facts.project.as_deref(), Some("/home/dev/acme"));
        assert_eq!(facts.model.as_deref(), Some("claude-opus-5-5"));
        let prompt = hook(
            "UserPromptSubmit",
            json!({"cwd": "/home/dev/acme", "prompt": "  fix the flaky test\nplease "}),
        );
        facts.observe(&prompt);
        assert_eq!(facts.title.as_deref(), Some("fix the flaky test\nplease"));
        assert_eq!(facts.activity, Some(Activity::Working));
        facts.observe(&hook(
            "UserPromptSubmit",
            json!({"prompt": "a later prompt"}),
        ));
        assert_eq!(
            facts.title.as_deref(),
            Some("fix the flaky test\nplease"),
            "the first prompt names it"
        );
        facts.observe(&hook("PermissionRequest", json!({"tool_name": "Bash"})));
        assert_eq!(facts.activity, Some(Activity::Waiting));
        facts.observe(&hook("PostToolUse", json!({"tool_name": "Bash"})));
        assert_eq!(facts.activity, Some(Activity::Working));
        facts.observe(&hook(
            "Notification",
            json!({"notification_type": "idle_prompt", "message": "waiting"}),
        ));
        assert_eq!(facts.activity, Some(Activity::Waiting));
        facts.observe(&hook("Stop", json!({"last_assistant_message": "done"})));
        assert_eq!(facts.activity, Some(Activity::Stopped));
        let before = facts.clone();
        facts.observe(&hook("MessageDisplay", json!({})));
        assert_eq!(facts, before, "nothing new said");
        facts.observe(&hook("SessionEnd", json!({"reason": "exit"})));
        assert_eq!(facts.activity, Some(Activity::Ended));
        assert_eq!(SessionFacts::from_json(&facts.to_json()), facts);
    }

    #[test]
    fn long_fields_are_cut_and_unreadable_storage_is_nothing_known() {
        let mut facts = SessionFacts::default();
        let long = "é".repeat(2000);
        facts.observe(&hook(
            "UserPromptSubmit",
            json!({"cwd": long, "prompt": long}),
        ));
        assert!(facts.project.as_ref().unwrap().len() <= FIELD_BYTES);
        assert_eq!(facts.title.as_ref().unwrap().chars().count(), TITLE_CHARS);
        assert_eq!(SessionFacts::from_json("not json"), SessionFacts::default());
        assert_eq!(SessionFacts::from_json("{}"), SessionFacts::default());
    }
}
