//! `orchestrator hook install` and `uninstall`: the `hooks` block of Claude Code's settings
//! that runs this command for every hook event, printed, merged into a `settings.json`, or
//! taken out of one. Our hooks are recognised by their command (`…/orchestrator hook …`),
//! whatever binary path installed them, and only they are touched: a user's hooks in the same
//! groups stay.

use serde_json::{json, Map, Value};

/// Every hook event Claude Code documents (31 in its current reference) but `WorktreeCreate`,
/// whose hook must print the path of the worktree it made: an observer cannot answer that.
/// Tool events take a matcher. Events Claude Code adds later are stored as they come once
/// they are registered here.
const EVENTS: &[(&str, bool)] = &[
    ("SessionStart", false),
    ("Setup", false),
    ("UserPromptSubmit", false),
    ("UserPromptExpansion", false),
    ("PreToolUse", true),
    ("PermissionRequest", true),
    ("PermissionDenied", true),
    ("PostToolUse", true),
    ("PostToolUseFailure", true),
    ("PostToolBatch", false),
    ("Notification", false),
    ("MessageDisplay", false),
    ("SubagentStart", false),
    ("SubagentStop", false),
    ("TaskCreated", false),
    ("TaskCompleted", false),
    ("Stop", false),
    ("StopFailure", false),
    ("TeammateIdle", false),
    ("InstructionsLoaded", false),
    ("ConfigChange", false),
    ("CwdChanged", false),
    ("DirectoryAdded", false),
    ("FileChanged", false),
    ("WorktreeRemove", false),
    ("PreCompact", false),
    ("PostCompact", false),
    ("Elicitation", false),
    ("ElicitationResult", false),
    ("SessionEnd", false),
];

/// Seconds Claude Code gives an observe-only hook; the hook itself stops well before.
const OBSERVE_TIMEOUT_SECS: u64 = 10;
/// An approval hook's timeout is the approval timeout plus this, so the hook always answers
/// before Claude Code would kill it.
const APPROVAL_MARGIN_SECS: u64 = 30;

/// What the installed hooks run: the binary, `hook`, and the options to pass on.
pub struct HookCommand {
    pub program: String,
    pub args: Vec<String>,
    /// Set when approvals are on: the events that wait for them get a longer timeout.
    pub approval_timeout_secs: Option<u64>,
    /// PreToolUse waits for approvals too (`--require-approval`), not only PermissionRequest.
    pub gates_pre_tool_use: bool,
    /// `--transport http`: Claude Code posts each hook's input to the server itself, and no
    /// command runs.
    pub http: Option<HttpTarget>,
}

/// Where Claude Code's HTTP hooks post, and whether they send the API key (read from
/// `ORCH_API_KEY` in Claude Code's environment, never written into the settings).
pub struct HttpTarget {
    pub url: String,
    pub with_key: bool,
}

impl HookCommand {
    /// The command line, each word quoted for the shell Claude Code runs it with.
    fn line(&self) -> String {
        std::iter::once(&self.program)
            .chain(std::iter::once(&"hook".to_owned()))
            .chain(self.args.iter())
            .map(|word| shell_quote(word))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The `hooks` object: every event runs this command.
    pub fn hooks_block(&self) -> Value {
        let mut hooks = Map::new();
        for &(event, tool_event) in EVENTS {
            let waits =
                event == "PermissionRequest" || (event == "PreToolUse" && self.gates_pre_tool_use);
            let timeout = match self.approval_timeout_secs {
                Some(secs) if waits => secs + APPROVAL_MARGIN_SECS,
                _ => OBSERVE_TIMEOUT_SECS,
            };
            let handler = match &self.http {
                None => json!({"type": "command", "command": self.line(), "timeout": timeout}),
                Some(target) => {
                    let mut handler =
                        json!({"type": "http", "url": target.url, "timeout": timeout});
                    if target.with_key {
                        handler["headers"] = json!({"Authorization": "Bearer $ORCH_API_KEY"});
                        handler["allowedEnvVars"] = json!(["ORCH_API_KEY"]);
                    }
                    handler
                }
            };
            let mut entry = json!({ "hooks": [handler] });
            if tool_event {
                entry["matcher"] = json!("*");
            }
            hooks.insert(event.to_owned(), json!([entry]));
        }
        Value::Object(hooks)
    }

    /// `settings` with this command's hooks merged in: other hooks are kept, an earlier
    /// install (from any binary path) is replaced.
    pub fn merge_into(&self, settings: Value) -> Result<Value, String> {
        let mut settings = remove_ours(settings)?;
        let hooks = settings
            .as_object_mut()
            .expect("checked by remove_ours")
            .entry("hooks")
            .or_insert_with(|| json!({}));
        let Some(hooks) = hooks.as_object_mut() else {
            return Err("\"hooks\" in the settings file is not an object".into());
        };
        let Value::Object(ours) = self.hooks_block() else {
            unreachable!("hooks_block builds an object")
        };
        for (event, mut entries) in ours {
            let list = hooks.entry(event.clone()).or_insert_with(|| json!([]));
            let Some(list) = list.as_array_mut() else {
                return Err(format!("hooks.{event} in the settings file is not a list"));
            };
            list.append(entries.as_array_mut().expect("built as a list"));
        }
        Ok(settings)
    }
}

/// Whether a hook handler is ours: a command that runs `orchestrator hook`, or an HTTP hook
/// that posts to an orchestrator's Claude Code route.
fn is_ours(handler: &Value) -> bool {
    match handler["type"].as_str() {
        Some("http") => handler["url"]
            .as_str()
            .is_some_and(|url| url.contains("/v1/hooks/claude-code")),
        _ => handler["command"]
            .as_str()
            .is_some_and(runs_orchestrator_hook),
    }
}

/// Whether a hook command runs `orchestrator hook`: its first word is a path to a program
/// named `orchestrator` (quoted or not) and its second is `hook`.
fn runs_orchestrator_hook(command: &str) -> bool {
    let command = command.trim_start();
    let (program, rest) = match command.strip_prefix('\'') {
        Some(quoted) => match quoted.split_once('\'') {
            Some((program, rest)) => (program, rest),
            None => return false,
        },
        None => command.split_once(' ').unwrap_or((command, "")),
    };
    let name = program.rsplit('/').next().unwrap_or(program);
    name == "orchestrator"
        && (rest.trim_start() == "hook" || rest.trim_start().starts_with("hook "))
}

/// `settings` without our hooks: each group loses only our hooks, and a group (or an event)
/// left with none is dropped; everything else stays as it was.
pub fn remove_ours(mut settings: Value) -> Result<Value, String> {
    let Some(object) = settings.as_object_mut() else {
        return Err("the settings file does not hold a JSON object".into());
    };
    let Some(hooks) = object.get_mut("hooks") else {
        return Ok(settings);
    };
    let Some(hooks) = hooks.as_object_mut() else {
        return Err("\"hooks\" in the settings file is not an object".into());
    };
    let mut emptied = Vec::new();
    for (event, groups) in hooks.iter_mut() {
        let Some(groups) = groups.as_array_mut() else {
            return Err(format!("hooks.{event} in the settings file is not a list"));
        };
        let before = groups.len();
        for group in groups.iter_mut() {
            if let Some(list) = group.get_mut("hooks").and_then(Value::as_array_mut) {
                list.retain(|h| !is_ours(h));
            }
        }
        groups.retain(|group| {
            group
                .get("hooks")
                .and_then(Value::as_array)
                .is_none_or(|list| !list.is_empty())
        });
        if groups.is_empty() && before > 0 {
            emptied.push(event.clone());
        }
    }
    for event in emptied {
        hooks.remove(&event);
    }
    if hooks.is_empty() {
        object.remove("hooks");
    }
    Ok(settings)
}

/// Quotes a word for `sh` when it needs it.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(approve: bool) -> HookCommand {
        HookCommand {
            program: "/opt/orch bin/orchestrator".into(),
            args: if approve {
                vec!["--approve".into(), "^(Bash|Write)$".into()]
            } else {
                vec![]
            },
            approval_timeout_secs: approve.then_some(300),
            gates_pre_tool_use: false,
            http: None,
        }
    }

    #[test]
    fn thirty_of_the_thirty_one_documented_events_are_registered() {
        let block = command(false).hooks_block();
        let names: Vec<&str> = block
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names.len(), 30, "{names:?}");
        assert!(!names.contains(&"WorktreeCreate"), "it must print a path");
    }

    #[test]
    fn every_event_runs_the_hook_with_timeouts_above_the_approval_timeout() {
        let block = command(true).hooks_block();
        for (event, tool) in EVENTS {
            let entry = &block[event][0];
            assert_eq!(entry["matcher"].is_string(), *tool, "{event}");
            let hook = &entry["hooks"][0];
            assert_eq!(hook["type"], "command");
            assert_eq!(
                hook["command"],
                "'/opt/orch bin/orchestrator' hook --approve '^(Bash|Write)$'"
            );
            let timeout = hook["timeout"].as_u64().unwrap();
            if *event == "PermissionRequest" {
                assert!(timeout > 300, "{event}: {timeout}");
            } else {
                assert_eq!(timeout, OBSERVE_TIMEOUT_SECS, "{event}");
            }
        }
        // The policy gate waits at PreToolUse as well.
        let block = HookCommand {
            gates_pre_tool_use: true,
            ..command(true)
        }
        .hooks_block();
        assert!(
            block["PreToolUse"][0]["hooks"][0]["timeout"]
                .as_u64()
                .unwrap()
                > 300
        );
        assert_eq!(
            command(false).hooks_block()["PreToolUse"][0]["hooks"][0]["timeout"],
            10
        );
    }

    #[test]
    fn merging_keeps_other_hooks_and_replaces_an_earlier_install() {
        let settings = json!({
            "model": "x",
            "hooks": {"PreToolUse": [
                {"matcher": "Bash", "hooks": [{"type": "command", "command": "audit.sh"}]},
                {"matcher": "*", "hooks": [{"type": "command",
                    "command": "'/opt/orch bin/orchestrator' hook --approve old"}]},
            ]},
        });
        let merged = command(true).merge_into(settings).unwrap();
        assert_eq!(merged["model"], "x");
        let pre = merged["hooks"]["PreToolUse"].as_array().unwrap();
        assert_eq!(pre.len(), 2, "{pre:?}");
        assert_eq!(pre[0]["hooks"][0]["command"], "audit.sh");
        assert!(pre[1]["hooks"][0]["command"]
            .as_str()
            .unwrap()
            .ends_with("'^(Bash|Write)$'"));
        let again = command(true).merge_into(merged.clone()).unwrap();
        assert_eq!(again, merged, "installing twice changes nothing");
        let moved = HookCommand {
            program: "/usr/local/bin/orchestrator".into(),
            ..command(true)
        };
        let reinstalled = moved.merge_into(merged.clone()).unwrap();
        assert_eq!(
            reinstalled["hooks"]["PreToolUse"].as_array().unwrap().len(),
            2,
            "another binary path replaces the earlier install: {reinstalled}"
        );
        assert!(command(true).merge_into(json!([1])).is_err());
        assert!(command(true).merge_into(json!({"hooks": []})).is_err());
    }

    #[test]
    fn a_users_hooks_in_our_groups_stay_and_uninstall_takes_only_ours() {
        let settings = json!({
            "hooks": {"Stop": [
                {"hooks": [
                    {"type": "command", "command": "notify.sh"},
                    {"type": "command", "command": "/old/path/orchestrator hook --url x"},
                ]},
            ]},
            "model": "x",
        });
        let merged = command(false).merge_into(settings).unwrap();
        let stop = merged["hooks"]["Stop"].as_array().unwrap();
        assert_eq!(stop[0]["hooks"].as_array().unwrap().len(), 1, "{stop:?}");
        assert_eq!(stop[0]["hooks"][0]["command"], "notify.sh");
        assert_eq!(stop.len(), 2, "ours added as a group of its own");
        let removed = remove_ours(merged).unwrap();
        assert_eq!(
            removed,
            json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify.sh"}]}]},
                   "model": "x"})
        );
        assert_eq!(
            remove_ours(command(false).merge_into(json!({})).unwrap()).unwrap(),
            json!({}),
            "install then uninstall leaves nothing"
        );
    }

    #[test]
    fn our_commands_are_recognised_by_their_shape() {
        for ours in [
            "/usr/bin/orchestrator hook",
            "'/opt/orch bin/orchestrator' hook --approve x",
            "orchestrator hook --url http://h:1",
        ] {
            assert!(runs_orchestrator_hook(ours), "{ours}");
        }
        for theirs in [
            "notify.sh",
            "/usr/bin/orchestrator serve",
            "/usr/bin/orchestrator-helper hook",
            "echo orchestrator hook",
            "'/x/orchestrator",
        ] {
            assert!(!runs_orchestrator_hook(theirs), "{theirs}");
        }
    }

    #[test]
    fn the_http_transport_writes_http_hooks_that_uninstall_recognises() {
        let http = HookCommand {
            http: Some(HttpTarget {
                url: "http://orch.internal:8080/v1/hooks/claude-code?approve=%5EBash%24".into(),
                with_key: true,
            }),
            ..command(true)
        };
        let block = http.hooks_block();
        let handler = &block["PermissionRequest"][0]["hooks"][0];
        assert_eq!(handler["type"], "http");
        assert_eq!(
            handler["url"],
            "http://orch.internal:8080/v1/hooks/claude-code?approve=%5EBash%24"
        );
        assert_eq!(handler["headers"]["Authorization"], "Bearer $ORCH_API_KEY");
        assert_eq!(handler["allowedEnvVars"], json!(["ORCH_API_KEY"]));
        assert!(handler["timeout"].as_u64().unwrap() > 300);
        assert!(handler.get("command").is_none());
        // A command install replaces an http one, and uninstall takes either out.
        let settings = http.merge_into(json!({"model": "opus"})).unwrap();
        let replaced = command(false).merge_into(settings.clone()).unwrap();
        assert_eq!(
            replaced,
            command(false).merge_into(json!({"model": "opus"})).unwrap()
        );
        assert_eq!(remove_ours(settings).unwrap(), json!({"model": "opus"}));
        let theirs = json!({"type": "http", "url": "https://example.com/hook"});
        assert!(!is_ours(&theirs));
    }
}
