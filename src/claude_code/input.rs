//! One hook input as Claude Code writes it on stdin, and what the orchestrator makes of it:
//! the session it belongs to, the event it becomes, its idempotency key, and (for tool
//! events) the approval interaction it may open.

use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::domain::ids::SessionId;

/// Why a hook input cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("the hook input is not a JSON object: {0}")]
    NotJson(String),
    #[error("the hook input has no string {0:?}")]
    Missing(&'static str),
    #[error("hook_event_name {0:?} is not an event type (1-64 chars of A-Z a-z 0-9 . _ : -)")]
    BadEventName(String),
}

/// A parsed hook input. The input is kept as the exact text Claude Code sent: it becomes the
/// event's `data` as received.
#[derive(Debug)]
pub struct HookInput {
    raw: Box<RawValue>,
    fields: serde_json::Map<String, Value>,
    pub session_id: SessionId,
    pub event_name: String,
}

impl HookInput {
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let raw: Box<RawValue> =
            serde_json::from_str(text).map_err(|e| InputError::NotJson(e.to_string()))?;
        let Value::Object(fields) =
            serde_json::from_str(raw.get()).map_err(|e| InputError::NotJson(e.to_string()))?
        else {
            return Err(InputError::NotJson("not an object".into()));
        };
        let text_field = |name: &'static str| {
            fields
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or(InputError::Missing(name))
        };
        let claude_session = text_field("session_id")?;
        let event_name = text_field("hook_event_name")?;
        if crate::domain::ids::EventType::parse(&event_name).is_err() {
            return Err(InputError::BadEventName(event_name));
        }
        Ok(Self {
            session_id: session_id_for(&claude_session),
            event_name,
            raw,
            fields,
        })
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// The tool-use id (tool events) or prompt id (newer versions), when the input has one.
    fn correlation_id(&self) -> Option<&str> {
        self.text("tool_use_id").or_else(|| self.text("prompt_id"))
    }

    /// A new event id for one run of the hook: the event name, the tool-use or prompt id
    /// where present, and a random part. Two runs on identical inputs (two `idle_prompt`
    /// notifications) are two events; the id is spooled with the event, so delivering it again
    /// after a failure stores it once.
    pub fn new_event_id(&self) -> String {
        let correlation: String = self
            .correlation_id()
            .unwrap_or("-")
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(48)
            .collect();
        format!(
            "cc:{}:{correlation}:{}",
            self.event_name,
            uuid::Uuid::new_v4().simple()
        )
    }

    /// What a PermissionRequest shares with the PreToolUse of the same tool use (it carries no
    /// `tool_use_id`): the tool and its input, as a digest of their canonical form (keys
    /// sorted), the same whatever the formatting.
    pub fn tool_use_key(&self) -> Option<String> {
        let tool = self.tool_name()?;
        let mut digest = Sha256::new();
        digest.update(tool.as_bytes());
        digest.update([0]);
        let input = self.fields.get("tool_input").unwrap_or(&Value::Null);
        digest.update(input.to_string().as_bytes());
        Some(hex32(&digest.finalize()))
    }

    /// The "always allow" options Claude Code's dialog would offer (PermissionRequest).
    pub fn permission_suggestions(&self) -> &[Value] {
        self.fields
            .get("permission_suggestions")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// The event this input becomes, under `event_id`, at `timestamp` (the caller's "now");
    /// without a `sequence` when it could not be numbered (no usable state directory).
    pub fn event(&self, event_id: &str, timestamp: &str, sequence: Option<u64>) -> Value {
        let mut event = json!({
            "event_type": self.event_name,
            "timestamp": timestamp,
            "event_id": event_id,
            "data": &self.raw,
        });
        if let Some(sequence) = sequence {
            event["sequence"] = json!(sequence);
        }
        event
    }

    /// The tool this event is about (PreToolUse, PermissionRequest, PostToolUse, …).
    pub fn tool_name(&self) -> Option<&str> {
        self.text("tool_name")
    }

    /// The interaction that asks a person to approve this tool use. Its id comes from the
    /// tool-use id where there is one (PreToolUse), so a retried hook joins the same approval;
    /// a PermissionRequest has none, and gets an id of its own run: two identical requests
    /// are two questions, never one decision replayed.
    pub fn approval(&self, timeout_ms: u64) -> Value {
        let id = match self.text("tool_use_id") {
            Some(tool_use) => format!("approval-{tool_use}"),
            None => format!("approval-{}", uuid::Uuid::new_v4().simple()),
        };
        let id = if crate::domain::ids::InteractionId::parse(&id).is_ok() {
            id
        } else {
            format!("approval-{}", hex32(&Sha256::digest(id.as_bytes())))
        };
        let mut payload = json!({
            "tool_name": self.fields.get("tool_name"),
            "tool_input": self.fields.get("tool_input"),
            "cwd": self.fields.get("cwd"),
            "hook_event_name": self.event_name,
        });
        for optional in ["tool_use_id", "permission_suggestions", "permission_mode"] {
            if let Some(value) = self.fields.get(optional) {
                payload[optional] = value.clone();
            }
        }
        json!({
            "interaction_id": id,
            "kind": "approval",
            "payload": payload,
            "timeout_ms": timeout_ms,
        })
    }
}

/// The orchestrator's session id for a Claude Code session id: the same when it is a valid
/// id (Claude Code's are UUIDs), else a digest of it.
fn session_id_for(claude_session: &str) -> SessionId {
    SessionId::parse(claude_session).unwrap_or_else(|_| {
        let digest = hex32(&Sha256::digest(claude_session.as_bytes()));
        SessionId::parse(&format!("claude-{digest}")).expect("hex is a valid id")
    })
}

/// The first 16 bytes of a digest as 32 hex digits.
fn hex32(bytes: &[u8]) -> String {
    bytes.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRE_TOOL_USE: &str = r#"{"session_id":"abc-123","transcript_path":"/t.jsonl","cwd":"/repo",
        "permission_mode":"default","hook_event_name":"PreToolUse","tool_name":"Bash",
        "tool_input":{"command":"rm -rf build","description":"clean"},"tool_use_id":"toolu_01A",
        "unknown_new_field":[1,2,18446744073709551616]}"#;

    #[test]
    fn the_event_carries_the_input_exactly() {
        let input = HookInput::parse(PRE_TOOL_USE).unwrap();
        assert_eq!(input.session_id.as_str(), "abc-123");
        let event = input.event("cc:x", "2026-11-30T10:00:00Z", Some(7));
        assert_eq!(event["event_type"], "PreToolUse");
        assert_eq!(event["sequence"], 7);
        let data = serde_json::to_string(&event["data"]).unwrap();
        assert!(data.contains("18446744073709551616"), "{data}");
        assert_eq!(event["data"]["unknown_new_field"][0], 1);
    }

    #[test]
    fn each_run_gets_its_own_event_id() {
        let input = HookInput::parse(PRE_TOOL_USE).unwrap();
        let (a, b) = (input.new_event_id(), input.new_event_id());
        assert_ne!(a, b, "identical inputs are two events");
        for id in [&a, &b] {
            assert!(id.starts_with("cc:PreToolUse:toolu_01A:"), "{id}");
            assert!(
                crate::domain::ids::EventId::parse(id).is_ok(),
                "a valid event id: {id}"
            );
        }
    }

    #[test]
    fn the_tool_use_key_ignores_formatting_and_tells_tool_uses_apart() {
        let a = HookInput::parse(PRE_TOOL_USE)
            .unwrap()
            .tool_use_key()
            .unwrap();
        // The same tool use, formatted differently, as a PermissionRequest (no tool_use_id).
        let mut request: Value = serde_json::from_str(PRE_TOOL_USE).unwrap();
        request["hook_event_name"] = json!("PermissionRequest");
        request.as_object_mut().unwrap().remove("tool_use_id");
        let b = HookInput::parse(&request.to_string())
            .unwrap()
            .tool_use_key()
            .unwrap();
        assert_eq!(a, b);
        let other = PRE_TOOL_USE.replace("rm -rf build", "ls");
        assert_ne!(Some(a), HookInput::parse(&other).unwrap().tool_use_key());
        let stop = r#"{"session_id":"s","hook_event_name":"Stop"}"#;
        assert_eq!(HookInput::parse(stop).unwrap().tool_use_key(), None);
    }

    #[test]
    fn a_permission_request_is_a_new_question_each_run() {
        let text = PRE_TOOL_USE
            .replace("PreToolUse", "PermissionRequest")
            .replace(
                r#""tool_use_id":"toolu_01A","#,
                r#""permission_suggestions":[{"type":"addRules"}],"#,
            );
        let input = HookInput::parse(&text).unwrap();
        let (a, b) = (input.approval(1), input.approval(1));
        assert_ne!(a["interaction_id"], b["interaction_id"]);
        assert_eq!(
            a["payload"]["permission_suggestions"][0]["type"],
            "addRules"
        );
        assert_eq!(input.permission_suggestions().len(), 1);
    }

    #[test]
    fn the_approval_joins_on_the_tool_use_id() {
        let input = HookInput::parse(PRE_TOOL_USE).unwrap();
        let approval = input.approval(300_000);
        assert_eq!(approval["interaction_id"], "approval-toolu_01A");
        assert_eq!(approval["kind"], "approval");
        assert_eq!(approval["payload"]["tool_name"], "Bash");
        assert_eq!(approval["payload"]["tool_input"]["command"], "rm -rf build");
        assert_eq!(approval["payload"]["cwd"], "/repo");
        assert_eq!(approval["timeout_ms"], 300_000);
        let odd = PRE_TOOL_USE.replace("toolu_01A", "tool use/with spaces");
        let id = HookInput::parse(&odd).unwrap().approval(1)["interaction_id"].clone();
        assert!(crate::domain::ids::InteractionId::parse(id.as_str().unwrap()).is_ok());
    }

    #[test]
    fn unusable_inputs_are_named() {
        assert!(matches!(
            HookInput::parse("nope"),
            Err(InputError::NotJson(_))
        ));
        assert!(matches!(
            HookInput::parse("[1]"),
            Err(InputError::NotJson(_))
        ));
        assert_eq!(
            HookInput::parse(r#"{"hook_event_name":"Stop"}"#).unwrap_err(),
            InputError::Missing("session_id")
        );
        assert_eq!(
            HookInput::parse(r#"{"session_id":"s"}"#).unwrap_err(),
            InputError::Missing("hook_event_name")
        );
        assert!(matches!(
            HookInput::parse(r#"{"session_id":"s","hook_event_name":"a b"}"#),
            Err(InputError::BadEventName(_))
        ));
    }

    #[test]
    fn an_unusual_session_id_maps_to_a_valid_one_stably() {
        let input = r#"{"session_id":"weird id/with spaces","hook_event_name":"Stop"}"#;
        let a = HookInput::parse(input).unwrap().session_id;
        let b = HookInput::parse(input).unwrap().session_id;
        assert_eq!(a, b);
        assert!(a.as_str().starts_with("claude-"));
    }
}
