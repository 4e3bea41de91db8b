//! What the hook tells Claude Code about an approval: the decided interaction, or the
//! fallback when there is none in time, turned into the JSON Claude Code reads on stdout.

use serde_json::{json, Value};

/// What to answer when no decision came in time or the server could not be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fallback {
    /// Decide nothing: Claude Code's own permission flow goes on (its prompt, or its
    /// auto-deny where it cannot prompt), as if the hook were not there.
    Ask,
    /// Refuse the tool use.
    Deny,
}

/// A decision about one tool use, with the reason shown to Claude or the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow(Allowed),
    Deny(String),
    /// No decision: Claude Code's own permission flow decides. The reason is shown to the
    /// user, so they know the orchestrator did not answer.
    Ask(String),
}

/// An approval, and what the person who gave it chose besides (the `response` of `resolve`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowed {
    pub reason: String,
    /// `updated_input`: replaces the tool's whole input (answers to AskUserQuestion, an edited
    /// plan for ExitPlanMode).
    pub updated_input: Option<Value>,
    /// `updated_permissions`: "always allow" options, each one of the request's
    /// `permission_suggestions`.
    pub updated_permissions: Vec<Value>,
}

#[cfg(test)]
impl Allowed {
    pub fn because(reason: &str) -> Self {
        Self {
            reason: reason.to_owned(),
            ..Self::default()
        }
    }
}

/// The verdict an interaction holds once it is no longer open; `None` while it is.
pub fn verdict_of(interaction: &Value, fallback: Fallback) -> Option<Verdict> {
    let status = interaction["status"].as_str().unwrap_or("");
    if status == "pending" || status == "queued" {
        return None;
    }
    let result = &interaction["result"];
    let said = |default: &str| match result {
        Value::String(text) if !text.is_empty() => text.clone(),
        Value::Object(fields) => fields
            .get("reason")
            .or_else(|| fields.get("message"))
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned(),
        _ => default.to_owned(),
    };
    Some(match interaction["outcome"].as_str() {
        Some("approved") => Verdict::Allow(Allowed {
            reason: said("approved in the orchestrator"),
            updated_input: result
                .get("updated_input")
                .filter(|input| input.is_object())
                .cloned(),
            updated_permissions: result
                .get("updated_permissions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        }),
        Some("rejected") => Verdict::Deny(said("rejected in the orchestrator")),
        _ => fall_back(
            fallback,
            &format!("the approval ended without a decision ({status})"),
        ),
    })
}

/// The verdict when there is no decision: why, and what `--on-timeout` says to do.
pub fn fall_back(fallback: Fallback, why: &str) -> Verdict {
    match fallback {
        Fallback::Ask => Verdict::Ask(format!("orchestrator: {why}")),
        Fallback::Deny => Verdict::Deny(format!("orchestrator: {why}")),
    }
}

/// The JSON for Claude Code's stdout. No decision is no permission decision at all, only a
/// `systemMessage` for the user: answering `ask` to a PreToolUse would force a prompt even for
/// a call the user's rules allow, which in a headless run is a denial. `suggestions` are the
/// request's `permission_suggestions`: only those can be chosen as "always allow" (echoing
/// one is what picking it in Claude Code's dialog does); anything else is left out.
pub fn hook_output(event_name: &str, verdict: &Verdict, suggestions: &[Value]) -> Option<Value> {
    let allowed = match verdict {
        Verdict::Ask(reason) => return Some(json!({ "systemMessage": reason })),
        Verdict::Deny(reason) if event_name == "PermissionRequest" => {
            return Some(json!({"hookSpecificOutput": {
                "hookEventName": "PermissionRequest",
                "decision": {"behavior": "deny", "message": reason},
            }}))
        }
        Verdict::Deny(reason) => {
            return Some(json!({"hookSpecificOutput": {
                "hookEventName": event_name,
                "permissionDecision": "deny",
                "permissionDecisionReason": reason,
            }}))
        }
        Verdict::Allow(allowed) => allowed,
    };
    if event_name == "PermissionRequest" {
        let mut decision = json!({"behavior": "allow"});
        if let Some(input) = &allowed.updated_input {
            decision["updatedInput"] = input.clone();
        }
        let chosen: Vec<&Value> = allowed
            .updated_permissions
            .iter()
            .filter(|p| suggestions.contains(p))
            .collect();
        if !chosen.is_empty() {
            decision["updatedPermissions"] = json!(chosen);
        }
        return Some(json!({"hookSpecificOutput": {
            "hookEventName": "PermissionRequest",
            "decision": decision,
        }}));
    }
    let mut output = json!({"hookSpecificOutput": {
        "hookEventName": event_name,
        "permissionDecision": "allow",
        "permissionDecisionReason": allowed.reason,
    }});
    if let Some(input) = &allowed.updated_input {
        output["hookSpecificOutput"]["updatedInput"] = input.clone();
    }
    Some(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decided_interactions_become_verdicts() {
        let approved =
            json!({"status": "completed", "outcome": "approved", "result": {"ok": true}});
        assert_eq!(
            verdict_of(&approved, Fallback::Ask),
            Some(Verdict::Allow(Allowed::because(
                "approved in the orchestrator"
            )))
        );
        let rejected =
            json!({"status": "completed", "outcome": "rejected", "result": "not on main"});
        assert_eq!(
            verdict_of(&rejected, Fallback::Ask),
            Some(Verdict::Deny("not on main".into()))
        );
        let open = json!({"status": "pending", "outcome": null});
        assert_eq!(verdict_of(&open, Fallback::Deny), None);
        let timed_out = json!({"status": "timed_out", "outcome": null});
        assert!(matches!(
            verdict_of(&timed_out, Fallback::Ask),
            Some(Verdict::Ask(_))
        ));
        assert!(matches!(
            verdict_of(&timed_out, Fallback::Deny),
            Some(Verdict::Deny(_))
        ));
    }

    #[test]
    fn outputs_follow_the_hook_contract() {
        let allow = hook_output("PreToolUse", &Verdict::Allow(Allowed::because("ok")), &[]);
        assert_eq!(
            allow.unwrap(),
            json!({"hookSpecificOutput": {"hookEventName": "PreToolUse",
                "permissionDecision": "allow", "permissionDecisionReason": "ok"}})
        );
        for event in ["PreToolUse", "PermissionRequest"] {
            let none = hook_output(event, &Verdict::Ask("no answer".into()), &[]).unwrap();
            assert_eq!(
                none,
                json!({"systemMessage": "no answer"}),
                "{event}: no decision, only a message"
            );
        }
        let deny = hook_output("PermissionRequest", &Verdict::Deny("no".into()), &[]).unwrap();
        assert_eq!(
            deny,
            json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest",
                "decision": {"behavior": "deny", "message": "no"}}})
        );
        // `message` goes with deny only.
        let allow = hook_output(
            "PermissionRequest",
            &Verdict::Allow(Allowed::because("ok")),
            &[],
        );
        assert_eq!(
            allow.unwrap(),
            json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest",
                "decision": {"behavior": "allow"}}})
        );
    }

    #[test]
    fn always_allow_echoes_only_an_offered_suggestion() {
        let offered = json!({"type": "addRules", "rules": [{"toolName": "Bash",
            "ruleContent": "npm test:*"}], "behavior": "allow", "destination": "localSettings"});
        let invented = json!({"type": "addRules", "rules": [{"toolName": "Bash"}],
            "behavior": "allow", "destination": "userSettings"});
        let interaction = json!({"status": "completed", "outcome": "approved", "result": {
            "updated_permissions": [offered, invented],
            "updated_input": {"answers": {"Which?": "A"}},
        }});
        let verdict = verdict_of(&interaction, Fallback::Ask).unwrap();
        let output = hook_output(
            "PermissionRequest",
            &verdict,
            std::slice::from_ref(&offered),
        )
        .unwrap();
        assert_eq!(
            output["hookSpecificOutput"]["decision"],
            json!({"behavior": "allow", "updatedPermissions": [offered],
                "updatedInput": {"answers": {"Which?": "A"}}})
        );
        let pre = hook_output("PreToolUse", &verdict, &[]).unwrap();
        assert_eq!(
            pre["hookSpecificOutput"]["updatedInput"],
            json!({"answers": {"Which?": "A"}})
        );
    }
}
