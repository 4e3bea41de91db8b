//! Which tool uses a person is asked about, and at which hook: `--approve` where Claude Code
//! would ask the user (PermissionRequest), `--require-approval` before every use
//! (PreToolUse, and the PermissionRequest that may follow it, which joins the same approval).

use regex_lite::Regex;

#[derive(Debug, Default)]
pub struct Gates {
    /// At PermissionRequest, when Claude Code would ask the user.
    pub on_prompt: Option<Regex>,
    /// At PreToolUse, before every use.
    pub always: Option<Regex>,
}

impl Gates {
    /// The gates given as regexes; the error names the setting that is not one.
    pub fn parse(on_prompt: Option<&str>, always: Option<&str>) -> Result<Self, String> {
        let regex = |name: &str, pattern: Option<&str>| {
            pattern
                .map(Regex::new)
                .transpose()
                .map_err(|e| format!("{name} is not a valid regex: {e}"))
        };
        Ok(Self {
            on_prompt: regex("--approve", on_prompt)?,
            always: regex("--require-approval", always)?,
        })
    }

    /// Whether this event of this tool waits for a person's decision.
    pub fn gate(&self, event: &str, tool: Option<&str>) -> bool {
        let matches =
            |regex: &Option<Regex>| regex.as_ref().zip(tool).is_some_and(|(r, t)| r.is_match(t));
        match event {
            "PreToolUse" => matches(&self.always),
            "PermissionRequest" => matches(&self.on_prompt) || matches(&self.always),
            _ => false,
        }
    }

    /// Whether this event waits for a decision for some tool (when the tool is unknown).
    pub fn may_gate(&self, event: &str) -> bool {
        match event {
            "PreToolUse" => self.always.is_some(),
            "PermissionRequest" => self.on_prompt.is_some() || self.always.is_some(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_gate_waits_at_its_own_hook() {
        let gates = Gates::parse(Some("^Bash$"), Some("^Write$")).unwrap();
        assert!(gates.gate("PermissionRequest", Some("Bash")));
        assert!(
            !gates.gate("PreToolUse", Some("Bash")),
            "allowed calls are not asked about"
        );
        assert!(gates.gate("PreToolUse", Some("Write")));
        assert!(
            gates.gate("PermissionRequest", Some("Write")),
            "joins its PreToolUse"
        );
        assert!(!gates.gate("PermissionRequest", Some("Read")));
        assert!(!gates.gate("PostToolUse", Some("Bash")));
        assert!(!gates.gate("PermissionRequest", None));
        let err = Gates::parse(Some("(Bash"), None).unwrap_err();
        assert!(err.starts_with("--approve is not a valid regex"), "{err}");
    }
}
