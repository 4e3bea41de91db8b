//! `orchestrator hook` as Claude Code runs it: the real binary, a hook input on stdin, against
//! the real server on each backend. Hook events become events (parallel hooks numbered in
//! start order), a retried hook is stored once, a server that is down costs nothing but a
//! spool that is delivered later, in order and once, and approvals print the decision Claude
//! Code reads.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::common::{both_backends, Backend, TestApp};

const BIN: &str = env!("CARGO_BIN_EXE_orchestrator");
const EVENTS: [&str; 12] = [
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "Stop",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "SessionEnd",
];

both_backends!(
    every_hook_event_is_stored_as_sent,
    parallel_hooks_of_a_new_session_are_numbered_in_order,
    identical_inputs_are_two_events,
    session_start_and_end_open_and_close_the_session,
    a_server_that_is_down_gets_the_spool_later_in_order_once,
    approvals_print_the_decision,
    approvals_fall_back_without_a_decision,
    racing_deciders_make_one_decision_printed_once,
    a_queued_prompt_is_delivered_at_stop_once,
    the_http_hook_route_stores_decides_and_refuses_clearly,
);

/// A hook input from tests/fixtures/hooks, for session `session`.
fn fixture(event: &str, session: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/hooks/{event}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path)
        .expect("fixture")
        .replace("SESSION", session)
}

/// A fresh, empty state directory, removed when dropped (also when the test fails).
struct TempState(PathBuf);

impl std::ops::Deref for TempState {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn state_dir(name: &str) -> TempState {
    let dir = std::env::temp_dir().join(format!("orch-hook-test-{}-{name}", std::process::id()));
    TempState(dir)
}

/// An address nothing listens on.
fn closed_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

#[derive(Debug)]
struct HookRun {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `orchestrator hook ARGS` with `input` on stdin, as Claude Code does.
async fn run_hook(url: &str, state: &Path, args: &[&str], input: &str) -> HookRun {
    let mut child = Command::new(BIN)
        .arg("hook")
        .args(["--url", url, "--state-dir"])
        .arg(state)
        .args(args)
        .env_remove("ORCH_API_KEY")
        .env_remove("ORCH_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the hook");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).unwrap();
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    };
    HookRun {
        code: status.code(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

async fn every_hook_event_is_stored_as_sent(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let state = state_dir(&format!("fixtures-{backend:?}"));
    for event in EVENTS {
        let run = run_hook(&app.base_url, &state, &[], &fixture(event, "cc-1")).await;
        assert_eq!(run.code, Some(0), "{event}: {run:?}");
        assert_eq!(run.stdout, "", "{event}: observe-only hooks print nothing");
    }
    let events = app.all_events("cc-1").await;
    assert_eq!(events.len(), EVENTS.len());
    for (i, (stored, event)) in events.iter().zip(EVENTS).enumerate() {
        assert_eq!(stored["event_type"], event);
        assert_eq!(stored["sequence"], i as u64);
        let sent: Value = serde_json::from_str(&fixture(event, "cc-1")).unwrap();
        assert_eq!(
            stored["data"], sent,
            "{event}: data is the input as received"
        );
        let event_id = stored["event_id"].as_str().unwrap();
        assert!(event_id.starts_with(&format!("cc:{event}:")), "{event_id}");
    }
}

async fn parallel_hooks_of_a_new_session_are_numbered_in_order(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let state = state_dir(&format!("parallel-{backend:?}"));
    let inputs: Vec<String> = (0..20)
        .map(|i| fixture("PostToolUse", "cc-par").replace("toolu_01POST", &format!("toolu_{i}")))
        .collect();
    let runs = join_all(
        inputs
            .iter()
            .map(|input| run_hook(&app.base_url, &state, &[], input)),
    )
    .await;
    for run in &runs {
        assert_eq!(run.code, Some(0), "{run:?}");
    }
    // On a loaded machine some of the twenty run out of their budget and leave their event in
    // the spool, by design (a hook never holds the agent up); `hook flush` sends what is left.
    let flush = run_hook(&app.base_url, &state, &["flush"], "").await;
    assert_eq!(flush.code, Some(0), "{flush:?}");
    let events = app.all_events("cc-par").await;
    assert_eq!(events.len(), 20, "one event per hook");
    let sequences: Vec<u64> = events
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(
        sequences,
        (0..20).collect::<Vec<_>>(),
        "stored in sequence order, 0-19, no gap, no repeat"
    );
    assert!(events.iter().all(|e| e["out_of_order"] == false));
    let created: Vec<Value> = app
        .all_notifications(Some("cc-par"))
        .await
        .into_iter()
        .filter(|n| n["type"] == "session.created")
        .collect();
    assert_eq!(created.len(), 1, "one session");
}

/// Two runs on identical inputs are two things that happened (two `idle_prompt`
/// notifications, the same command run twice): two events, numbered in order, with ids of
/// their own.
async fn identical_inputs_are_two_events(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let state = state_dir(&format!("twice-{backend:?}"));
    let input = fixture("Notification", "cc-twice");
    for _ in 0..2 {
        let run = run_hook(&app.base_url, &state, &[], &input).await;
        assert_eq!(run.code, Some(0), "{run:?}");
    }
    let events = app.all_events("cc-twice").await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["data"], events[1]["data"]);
    assert_eq!(
        (
            events[0]["sequence"].as_u64(),
            events[1]["sequence"].as_u64()
        ),
        (Some(0), Some(1))
    );
    assert_ne!(events[0]["event_id"], events[1]["event_id"]);
}

async fn a_server_that_is_down_gets_the_spool_later_in_order_once(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let state = state_dir(&format!("spool-{backend:?}"));
    let down = closed_url();
    for event in ["SessionStart", "UserPromptSubmit", "PreToolUse"] {
        let run = run_hook(&down, &state, &[], &fixture(event, "cc-down")).await;
        assert_eq!(run.code, Some(0), "never blocks the agent: {run:?}");
        assert_eq!(run.stdout, "");
        assert!(run.stderr.contains("kept in the spool"), "{}", run.stderr);
    }
    let run = run_hook(&down, &state, &[], &fixture("Stop", "cc-down-2")).await;
    assert_eq!(run.code, Some(0));
    assert_eq!(app.get("/v1/sessions/cc-down").await.status, 404);

    // The next hook run, with the server up, delivers this session's spool first, in order.
    let run = run_hook(
        &app.base_url,
        &state,
        &[],
        &fixture("PostToolUse", "cc-down"),
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let types: Vec<String> = app
        .all_events("cc-down")
        .await
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "SessionStart",
            "UserPromptSubmit",
            "PreToolUse",
            "PostToolUse"
        ]
    );
    // ... and then what other sessions left behind.
    assert_eq!(app.all_events("cc-down-2").await.len(), 1);

    // `hook flush` delivers too; delivering again stores nothing twice.
    let run = run_hook(&down, &state, &[], &fixture("SessionEnd", "cc-down")).await;
    assert_eq!(run.code, Some(0));
    let flush = run_hook(&app.base_url, &state, &["flush"], "").await;
    assert_eq!(flush.code, Some(0), "{flush:?}");
    let again = run_hook(&app.base_url, &state, &["flush"], "").await;
    assert_eq!(again.code, Some(0), "{again:?}");
    let events = app.all_events("cc-down").await;
    assert_eq!(events.len(), 5);
    let sequences: Vec<u64> = events
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, [0, 1, 2, 3, 4]);
    // Nothing is left to deliver; with the server down, flush says so.
    let run = run_hook(&down, &state, &[], &fixture("Stop", "cc-down-3")).await;
    assert_eq!(run.code, Some(0));
    let flush = run_hook(&down, &state, &["flush"], "").await;
    assert_eq!(flush.code, Some(1), "{flush:?}");
    assert!(
        flush.stderr.contains("1 events are still spooled"),
        "{}",
        flush.stderr
    );
}

/// Waits until `session` has a pending approval; returns its id.
async fn pending_approval(app: &TestApp, session: &str) -> String {
    for _ in 0..500 {
        let r = app
            .get(format!("/v1/sessions/{session}/interactions"))
            .await;
        let pending = r.body["interactions"].as_array().and_then(|all| {
            all.iter()
                .find(|i| i["status"] == "pending" && i["kind"] == "approval")
                .cloned()
        });
        if let Some(approval) = pending {
            return approval["interaction_id"].as_str().unwrap().to_owned();
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no approval appeared in {session}");
}

/// The PermissionRequest Claude Code sends after `pre_tool_use` when its rules say ask: the
/// same tool and input, no `tool_use_id`.
fn permission_request_for(pre_tool_use: &str) -> String {
    let mut input: Value = serde_json::from_str(pre_tool_use).unwrap();
    input["hook_event_name"] = json!("PermissionRequest");
    input.as_object_mut().unwrap().remove("tool_use_id");
    input["permission_suggestions"] = json!([{"type": "addRules",
        "rules": [{"toolName": "Bash", "ruleContent": "rm:*"}],
        "behavior": "allow", "destination": "localSettings"}]);
    input.to_string()
}

async fn approvals(app: &TestApp, session: &str) -> Vec<Value> {
    let r = app
        .get(format!("/v1/sessions/{session}/interactions"))
        .await;
    r.body["interactions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn approvals_print_the_decision(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let state = state_dir(&format!("approve-{backend:?}"));
    let require = ["--require-approval", "^(Bash|Write)$"];
    let approve = ["--approve", "^(Bash|Write)$"];

    // The policy gate: approved at PreToolUse.
    let input = fixture("PreToolUse", "cc-ok");
    let hook = run_hook(&app.base_url, &state, &require, &input);
    let decide = async {
        let id = pending_approval(&app, "cc-ok").await;
        assert_eq!(id, "approval-toolu_01PRE");
        let got = app
            .get(format!("/v1/sessions/cc-ok/interactions/{id}"))
            .await;
        assert_eq!(got.body["payload"]["tool_name"], "Bash");
        assert_eq!(got.body["payload"]["tool_input"]["command"], "rm -rf build");
        assert_eq!(got.body["payload"]["cwd"], "/home/dev/acme");
        let r = app
            .post(
                format!("/v1/sessions/cc-ok/interactions/{id}/resolve"),
                json!({"response": {"reason": "fine by me"}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    };
    let (run, ()) = tokio::join!(hook, decide);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).unwrap(),
        json!({"hookSpecificOutput": {"hookEventName": "PreToolUse",
            "permissionDecision": "allow", "permissionDecisionReason": "fine by me"}})
    );
    assert_eq!(run.stdout.lines().count(), 1);

    // Claude Code's rules still say ask: its PermissionRequest of the same tool use joins
    // that approval and gets its decision at once; nobody is asked twice.
    let request = permission_request_for(&fixture("PreToolUse", "cc-ok"));
    let run = run_hook(&app.base_url, &state, &require, &request).await;
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).unwrap(),
        json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest",
            "decision": {"behavior": "allow"}}}),
        "{run:?}"
    );
    assert_eq!(approvals(&app, "cc-ok").await.len(), 1);

    // A retried PreToolUse joins the same approval, already decided: the same answer at once.
    let run = run_hook(
        &app.base_url,
        &state,
        &require,
        &fixture("PreToolUse", "cc-ok"),
    )
    .await;
    assert_eq!(run.code, Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).unwrap()["hookSpecificOutput"]
            ["permissionDecision"],
        "allow"
    );
    assert_eq!(approvals(&app, "cc-ok").await.len(), 1);

    // The default gate is PermissionRequest: PreToolUse is only recorded.
    let run = run_hook(
        &app.base_url,
        &state,
        &approve,
        &fixture("PreToolUse", "cc-no"),
    )
    .await;
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), ""), "{run:?}");
    assert!(approvals(&app, "cc-no").await.is_empty());

    // Rejected, on a PermissionRequest.
    let input = fixture("PermissionRequest", "cc-no");
    let hook = run_hook(&app.base_url, &state, &approve, &input);
    let decide = async {
        let id = pending_approval(&app, "cc-no").await;
        let got = app
            .get(format!("/v1/sessions/cc-no/interactions/{id}"))
            .await;
        assert_eq!(
            got.body["payload"]["permission_suggestions"][0]["rules"][0]["ruleContent"],
            "git push:*"
        );
        let r = app
            .post(
                format!("/v1/sessions/cc-no/interactions/{id}/reject"),
                json!({"reason": "not on main"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    };
    let (run, ()) = tokio::join!(hook, decide);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).unwrap(),
        json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest",
            "decision": {"behavior": "deny", "message": "not on main"}}})
    );

    // The same request again is a new question, never the earlier decision replayed; this
    // time "always allow" is chosen: the offered suggestion is echoed, an invented one is not.
    let hook = run_hook(&app.base_url, &state, &approve, &input);
    let decide = async {
        let id = pending_approval(&app, "cc-no").await;
        let got = app
            .get(format!("/v1/sessions/cc-no/interactions/{id}"))
            .await;
        let offered = got.body["payload"]["permission_suggestions"][0].clone();
        let invented = json!({"type": "addRules", "rules": [{"toolName": "Bash"}],
            "behavior": "allow", "destination": "userSettings"});
        let r = app
            .post(
                format!("/v1/sessions/cc-no/interactions/{id}/resolve"),
                json!({"response": {"updated_permissions": [offered, invented]}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    };
    let (run, ()) = tokio::join!(hook, decide);
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).unwrap(),
        json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest",
            "decision": {"behavior": "allow", "updatedPermissions": [{"type": "addRules",
                "rules": [{"toolName": "Bash", "ruleContent": "git push:*"}],
                "behavior": "allow", "destination": "localSettings"}]}}}),
        "{run:?}"
    );
    assert_eq!(approvals(&app, "cc-no").await.len(), 2);

    // A tool the regex does not match is only recorded.
    let input = fixture("PermissionRequest", "cc-other").replace("\"Bash\"", "\"Read\"");
    let run = run_hook(&app.base_url, &state, &approve, &input).await;
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), ""));
    assert!(approvals(&app, "cc-other").await.is_empty());
}

async fn approvals_fall_back_without_a_decision(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let state = state_dir(&format!("fallback-{backend:?}"));
    let input = fixture("PreToolUse", "cc-late");
    let args = ["--require-approval", "Bash", "--approval-timeout", "1"];
    let run = run_hook(&app.base_url, &state, &args, &input).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    // No decision in time is no decision: Claude Code's own permission flow goes on, and the
    // user is told why (a forced `ask` would deny in a headless run).
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).unwrap(),
        json!({"systemMessage": "orchestrator: no decision within 1 s"})
    );
    // The approval is closed, so a late decision cannot claim otherwise.
    let closed = app
        .get("/v1/sessions/cc-late/interactions/approval-toolu_01PRE")
        .await;
    assert_eq!(closed.body["status"], "cancelled", "{}", closed.text);
    // Claude Code then asks the user itself: its PermissionRequest joins the approval that
    // timed out and says so at once, instead of opening a second one to wait for again.
    let request = permission_request_for(&fixture("PreToolUse", "cc-late"));
    let run = run_hook(&app.base_url, &state, &args, &request).await;
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).unwrap(),
        json!({"systemMessage": "orchestrator: the approval ended without a decision (cancelled)"})
    );
    assert_eq!(approvals(&app, "cc-late").await.len(), 1);

    let input = fixture("PreToolUse", "cc-late-2");
    let args = [
        "--require-approval",
        "Bash",
        "--approval-timeout",
        "1",
        "--on-timeout",
        "deny",
    ];
    let run = run_hook(&app.base_url, &state, &args, &input).await;
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).unwrap()["hookSpecificOutput"]
            ["permissionDecision"],
        "deny"
    );

    // Server unreachable: the fallback at once, exit 0.
    let down = closed_url();
    let run = run_hook(
        &down,
        &state,
        &["--require-approval", "Bash"],
        &fixture("PreToolUse", "cc-x"),
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).unwrap(),
        json!({"systemMessage": "orchestrator: the orchestrator is unreachable"})
    );
    let run = run_hook(
        &down,
        &state,
        &["--approve", "Bash", "--on-timeout", "deny"],
        &fixture("PermissionRequest", "cc-x"),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).unwrap(),
        json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest",
            "decision": {"behavior": "deny",
                "message": "orchestrator: the orchestrator is unreachable"}}})
    );
    // The same for a PermissionRequest: Claude Code's own dialog decides.
    let run = run_hook(
        &down,
        &state,
        &["--approve", "Bash"],
        &fixture("PermissionRequest", "cc-y"),
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let printed: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(printed.get("hookSpecificOutput").is_none(), "{printed}");
    assert!(printed["systemMessage"].is_string(), "{printed}");
}

async fn racing_deciders_make_one_decision_printed_once(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let state = state_dir(&format!("race-{backend:?}"));
    let input = fixture("PreToolUse", "cc-race");
    let hook = run_hook(
        &app.base_url,
        &state,
        &["--require-approval", "Bash"],
        &input,
    );
    let decide = async {
        let id = pending_approval(&app, "cc-race").await;
        let resolve = app.post(
            format!("/v1/sessions/cc-race/interactions/{id}/resolve"),
            json!({"response": "tab one"}),
        );
        let reject = app.post(
            format!("/v1/sessions/cc-race/interactions/{id}/reject"),
            json!({"reason": "tab two"}),
        );
        let (a, b) = tokio::join!(resolve, reject);
        (a, b)
    };
    let (run, (resolved, rejected)) = tokio::join!(hook, decide);
    let winners: Vec<bool> = [&resolved, &rejected]
        .iter()
        .map(|r| r.status == 200 && r.body["completed_now"] == true)
        .collect();
    assert_eq!(
        winners.iter().filter(|w| **w).count(),
        1,
        "{resolved:?} {rejected:?}"
    );
    let loser = if winners[0] { &rejected } else { &resolved };
    assert_eq!(loser.status, 409);
    assert_eq!(run.code, Some(0));
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "printed once: {}",
        run.stdout
    );
    let printed: Value = serde_json::from_str(&run.stdout).unwrap();
    let expected = if winners[0] {
        ("allow", "tab one")
    } else {
        ("deny", "tab two")
    };
    assert_eq!(
        printed["hookSpecificOutput"]["permissionDecision"],
        expected.0
    );
    assert_eq!(
        printed["hookSpecificOutput"]["permissionDecisionReason"],
        expected.1
    );
}

/// A 503 (here: the SQLite file's write lock held by another process, so the commit cannot
/// happen within ORCH_DB_TIMEOUT_MS) is "unavailable" like a refused connection: spooled, exit
/// 0, delivered by the next run once the lock is gone.
#[actix_rt::test]
async fn a_503_spools_like_an_unreachable_server() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    use orchestrator::store::DatabaseTarget;
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.db_timeout = Duration::from_millis(300);
    })
    .await
    .unwrap();
    let state = state_dir("503");
    let run = run_hook(
        &app.base_url,
        &state,
        &[],
        &fixture("SessionStart", "cc-503"),
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let DatabaseTarget::Sqlite(path) = &app.database else {
        unreachable!()
    };
    let mut blocker = diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
    blocker.batch_execute("BEGIN EXCLUSIVE").unwrap();
    let run = run_hook(&app.base_url, &state, &[], &fixture("Stop", "cc-503")).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("503"), "{}", run.stderr);
    blocker.batch_execute("ROLLBACK").unwrap();
    assert_eq!(app.all_events("cc-503").await.len(), 1);
    let run = run_hook(&app.base_url, &state, &[], &fixture("SessionEnd", "cc-503")).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let types: Vec<String> = app
        .all_events("cc-503")
        .await
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["SessionStart", "Stop", "SessionEnd"]);
}

/// A server that accepts connections and never answers cannot hold the agent: the run ends
/// within its budget (2 s, 1 s for SessionEnd), exit 0, the event spooled.
#[actix_rt::test]
async fn a_stalled_server_costs_at_most_the_budget() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = state_dir("stalled");
    for (event, budget) in [("PostToolUse", 2.0), ("SessionEnd", 1.0)] {
        let started = std::time::Instant::now();
        let run = run_hook(&url, &state, &[], &fixture(event, "cc-stalled")).await;
        let took = started.elapsed().as_secs_f64();
        eprintln!("{event}: {took:.2} s against a stalled server (budget {budget} s)");
        assert_eq!((run.code, run.stdout.as_str()), (Some(0), ""), "{run:?}");
        assert!(run.stderr.contains("kept in the spool"), "{}", run.stderr);
        // Bounded, not hung: the budget plus the process's own start and stop.
        assert!(took < budget + 3.0, "{event} took {took:.2} s");
    }
    drop(listener);
}

/// `hook install` merges the hooks block into a settings file, keeps other settings and hooks,
/// and replaces its own earlier install.
#[actix_rt::test]
async fn install_merges_the_hooks_into_a_settings_file() {
    let dir = state_dir("install");
    std::fs::create_dir_all(dir.join(".claude")).unwrap();
    let settings = dir.join(".claude/settings.json");
    std::fs::write(
        &settings,
        r#"{"model": "opus", "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify.sh"}]}]}}"#,
    )
    .unwrap();
    let install = |extra: &'static [&'static str]| {
        let (settings, dir) = (settings.clone(), dir.to_path_buf());
        async move {
            let mut args = vec!["install", "--settings", settings.to_str().unwrap()];
            args.extend_from_slice(extra);
            run_hook("http://127.0.0.1:9", &dir, &args, "").await
        }
    };
    let run = install(&["--approve", "^Bash$", "--approval-timeout", "120"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let first = std::fs::read_to_string(&settings).unwrap();
    let run = install(&["--approve", "^Bash$", "--approval-timeout", "120"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        first,
        "idempotent"
    );
    let merged: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(merged["model"], "opus");
    for event in EVENTS {
        let ours = merged["hooks"][event]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["hooks"][0]["command"]
                    .as_str()
                    .unwrap()
                    .contains(" hook ")
            })
            .unwrap_or_else(|| panic!("{event}: {merged}"));
        let command = ours["hooks"][0]["command"].as_str().unwrap();
        assert!(command.starts_with(BIN), "{command}");
        assert!(command.contains("--approve '^Bash$'"), "{command}");
        let timeout = ours["hooks"][0]["timeout"].as_u64().unwrap();
        if event == "PermissionRequest" {
            assert!(timeout > 120, "{event}: {timeout}");
        }
    }
    assert_eq!(
        merged["hooks"]["Stop"][0]["hooks"][0]["command"],
        "notify.sh"
    );
    // Without --settings the block is printed.
    let run = run_hook("http://127.0.0.1:9", &dir, &["install"], "").await;
    let printed: Value = serde_json::from_str(&run.stdout).unwrap();
    let registered = printed["hooks"].as_object().unwrap();
    assert_eq!(
        registered.len(),
        30,
        "every documented event but WorktreeCreate"
    );
    for event in EVENTS {
        assert!(registered.contains_key(event), "{event}");
    }
}

/// Exit code 2 means "block" to Claude Code. A setting the hook cannot use is reported with
/// exit 1 (shown, otherwise ignored), nothing is printed for Claude Code to obey, and the event
/// is still stored with the settings that could be read.
#[actix_rt::test]
async fn a_broken_setting_blocks_nothing_and_the_event_is_still_stored() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let state = state_dir("broken-settings");
    let cases: [(&[&str], &str); 5] = [
        (&["--approv", "Bash"], "--approv"),
        (&["--approve", "(Bash"], "--approve is not a valid regex"),
        (&["--on-timeout", "allow"], "--on-timeout"),
        (&["--approval-timeout", "0"], "--approval-timeout"),
        (&["--approve", "Bash", "--bogus"], "--bogus"),
    ];
    for (n, (args, complaint)) in cases.iter().enumerate() {
        let session = format!("broken-{n}");
        let run = run_hook(
            &app.base_url,
            &state,
            args,
            &fixture("PreToolUse", &session),
        )
        .await;
        assert_eq!(run.code, Some(1), "{args:?}: {run:?}");
        assert_eq!(
            run.stdout, "",
            "{args:?}: no decision for Claude Code to obey"
        );
        assert!(run.stderr.contains(complaint), "{args:?}: {}", run.stderr);
        let stored = app.all_events(&session).await;
        assert_eq!(stored.len(), 1, "{args:?}: the event is still stored");
        assert_eq!(stored[0]["event_type"], "PreToolUse");
        let pending = app
            .get(format!("/v1/sessions/{session}/interactions"))
            .await;
        assert_eq!(
            pending.body["interactions"].as_array().map(Vec::len),
            Some(0),
            "{args:?}: no approval is asked under a broken configuration"
        );
    }
    // --help still answers 0.
    let run = run_hook(&app.base_url, &state, &["--help"], "").await;
    assert_eq!(run.code, Some(0), "{run:?}");
}

/// An event that cannot be spooled is delivered directly rather than lost: a state directory
/// that cannot be made (here a file stands in its way, which stops root too), and no state
/// directory at all (HOME unset: no shared /tmp fallback). Exit 1 says so; nothing blocks.
#[actix_rt::test]
async fn an_event_that_cannot_be_spooled_is_delivered_directly() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let blocked = state_dir("not-a-directory");
    std::fs::write(&*blocked, b"a file where the state directory should be").unwrap();
    let run = run_hook(
        &app.base_url,
        &blocked,
        &[],
        &fixture("UserPromptSubmit", "unspooled"),
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("delivered directly"), "{}", run.stderr);
    let stored = app.all_events("unspooled").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["event_type"], "UserPromptSubmit");
    assert_eq!(
        stored[0]["sequence"],
        Value::Null,
        "it could not be numbered"
    );
    let _ = std::fs::remove_file(&*blocked);

    let mut child = Command::new(BIN)
        .args(["hook", "--url", &app.base_url])
        .env_remove("HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("ORCH_HOOK_STATE_DIR")
        .env_remove("ORCH_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(fixture("UserPromptSubmit", "homeless").as_bytes())
        .unwrap();
    let output = actix_rt::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HOME"), "a clear message: {stderr}");
    assert!(stderr.contains("delivered directly"), "{stderr}");
    assert_eq!(app.all_events("homeless").await.len(), 1);
}

/// SessionEnd ends the session on the server and cancels the approvals nobody waits for any
/// more (a waiting tab sees them cancelled); SessionStart with `source: resume` reopens it.
async fn session_start_and_end_open_and_close_the_session(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let state = state_dir(&format!("start-end-{backend:?}"));
    let run = run_hook(
        &app.base_url,
        &state,
        &[],
        &fixture("SessionStart", "cc-life"),
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        app.get("/v1/sessions/cc-life").await.body["status"],
        "active"
    );
    let created = app
        .post(
            "/v1/sessions/cc-life/interactions",
            json!({"interaction_id": "approval-x", "kind": "approval", "timeout_ms": 600000}),
        )
        .await;
    assert_eq!(created.status, 201);
    let queued = app
        .post(
            "/v1/sessions/cc-life/commands",
            json!({"interaction_id": "cmd-x", "payload": {"prompt": "go on"}}),
        )
        .await;
    assert_eq!(queued.status, 201);
    let waiting = app.get("/v1/sessions/cc-life/interactions/approval-x/wait?timeout_ms=20000");
    let ending = async {
        actix_rt::time::sleep(Duration::from_millis(200)).await;
        run_hook(
            &app.base_url,
            &state,
            &[],
            &fixture("SessionEnd", "cc-life"),
        )
        .await
    };
    let (waited, run) = futures_util::future::join(waiting, ending).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(waited.body["status"], "cancelled", "{}", waited.text);
    let session = app.get("/v1/sessions/cc-life").await.body;
    assert_eq!(session["status"], "ended");
    assert_eq!(session["interactions"]["cancelled"], 1);
    let command = app
        .get("/v1/sessions/cc-life/interactions/cmd-x")
        .await
        .body;
    assert_eq!(
        command["status"], "queued",
        "a queued command waits for a resume"
    );
    let events = app.all_events("cc-life").await;
    assert_eq!(
        events.last().unwrap()["event_type"],
        "SessionEnd",
        "stored as sent"
    );

    let resume = fixture("SessionStart", "cc-life").replace("\"startup\"", "\"resume\"");
    let run = run_hook(&app.base_url, &state, &[], &resume).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        app.get("/v1/sessions/cc-life").await.body["status"],
        "active"
    );
}

/// `hook install` keeps what the file was: its permission bits (a 0600 file stays 0600), a
/// symbolic link (written through, still a link), a user's hooks; it refuses a read-only file;
/// `hook uninstall` takes out exactly what install put in.
#[actix_rt::test]
async fn install_keeps_the_file_and_uninstall_takes_out_only_ours() {
    use std::os::unix::fs::PermissionsExt;
    let dir = state_dir("install-keeps");
    let real = dir.join("shared/settings.json");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::create_dir_all(dir.join(".claude")).unwrap();
    // Written by a person: keys in their order, not sorted.
    let original = r#"{
  "model": "opus",
  "hooks": {
    "Stop": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "notify.sh"
          }
        ]
      }
    ]
  },
  "env": {
    "KEY": "secret"
  }
}
"#;
    std::fs::write(&real, original).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.join(".claude/settings.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let hook = |sub: &'static str| {
        let (link, dir) = (link.clone(), dir.to_path_buf());
        async move {
            run_hook(
                "http://127.0.0.1:9",
                &dir,
                &[sub, "--settings", link.to_str().unwrap()],
                "",
            )
            .await
        }
    };
    let run = hook("install").await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "still a link"
    );
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the file's mode is kept");
    let installed: Value = serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    assert_eq!(
        installed["hooks"]["Stop"][0]["hooks"][0]["command"],
        "notify.sh"
    );
    assert_eq!(installed["hooks"]["Stop"].as_array().unwrap().len(), 2);

    let run = hook("uninstall").await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(&real).unwrap(),
        original,
        "install and uninstall leave the file as the user wrote it, key order included"
    );
    let uninstalled: Value =
        serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    assert_eq!(
        uninstalled,
        serde_json::from_str::<Value>(original).unwrap()
    );

    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o444)).unwrap();
    let run = hook("install").await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("read-only"), "{}", run.stderr);
    assert_eq!(
        serde_json::from_str::<Value>(&std::fs::read_to_string(&real).unwrap()).unwrap(),
        serde_json::from_str::<Value>(original).unwrap(),
        "left as it was"
    );
}

/// An input the hook cannot handle (here 17 MiB, over its 16 MiB limit) gets the answer of no
/// decision: `--on-timeout deny` refuses the tool use, the default decides nothing and says
/// why, and an observer exits 1, a non-blocking error. The hook reads all of stdin, so Claude
/// Code's write never fails.
#[actix_rt::test]
async fn an_input_the_hook_cannot_handle_gets_the_fallback() {
    let state = state_dir("huge-input");
    let huge = fixture("PreToolUse", "cc-huge").replace(
        "\"tool_input\": {",
        &format!(
            "\"tool_input\": {{\"padding\": \"{}\", ",
            "x".repeat(17 << 20)
        ),
    );
    assert!(huge.len() > 17 << 20, "the fixture has a tool_input to pad");
    let down = closed_url();
    let deny = ["--require-approval", "Bash", "--on-timeout", "deny"];
    let run = run_hook(&down, &state, &deny, &huge).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let printed: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(printed["hookSpecificOutput"]["permissionDecision"], "deny");
    assert!(run.stderr.contains("larger than"), "{}", run.stderr);

    let run = run_hook(&down, &state, &["--require-approval", "Bash"], &huge).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let printed: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(printed.get("hookSpecificOutput").is_none(), "{printed}");
    assert!(printed["systemMessage"].is_string(), "{printed}");

    let run = run_hook(&down, &state, &[], &huge).await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(1), ""),
        "an observer"
    );
    let run = run_hook(&down, &state, &deny, "{not json").await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(1), ""),
        "no event to answer"
    );
}

/// Steering: an instruction a person queued (a command with a `prompt`) is delivered by the
/// next Stop hook as `{"decision": "block", "reason": prompt}`, so the agent carries on with
/// it; the command is completed with where it went. Of parallel Stop hooks exactly one
/// delivers it; commands without a prompt are left to executors.
async fn a_queued_prompt_is_delivered_at_stop_once(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let state = state_dir(&format!("steer-{backend:?}"));
    let stop = fixture("Stop", "cc-steer");
    // Nothing queued: Stop stops.
    let run = run_hook(&app.base_url, &state, &[], &stop).await;
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), ""), "{run:?}");

    let queue = |id: &'static str, payload: Value| {
        app.post(
            "/v1/sessions/cc-steer/commands",
            json!({"interaction_id": id, "payload": payload, "timeout_ms": 60000}),
        )
    };
    assert_eq!(
        queue("run-tests", json!({"run": "cargo test"}))
            .await
            .status,
        201
    );
    assert_eq!(
        queue("say-1", json!({"prompt": "now add a test for it"}))
            .await
            .status,
        201
    );
    assert_eq!(
        queue("say-2", json!({"prompt": "then update the README"}))
            .await
            .status,
        201
    );

    // Parallel Stop hooks: each prompt is delivered by exactly one of them.
    let runs = join_all((0..6).map(|_| run_hook(&app.base_url, &state, &[], &stop))).await;
    assert!(runs.iter().all(|r| r.code == Some(0)), "{runs:?}");
    let mut delivered: Vec<String> = runs
        .iter()
        .filter(|r| !r.stdout.is_empty())
        .map(|r| {
            let output: Value = serde_json::from_str(&r.stdout).unwrap();
            assert_eq!(output["decision"], "block", "{output}");
            output["reason"].as_str().unwrap().to_owned()
        })
        .collect();
    delivered.sort();
    assert_eq!(
        delivered,
        ["now add a test for it", "then update the README"],
        "{runs:?}"
    );
    for id in ["say-1", "say-2"] {
        let said = app
            .get(format!("/v1/sessions/cc-steer/interactions/{id}"))
            .await;
        assert_eq!(
            (said.body["status"].as_str(), said.body["outcome"].as_str()),
            (Some("completed"), Some("ok"))
        );
        assert_eq!(said.body["result"]["delivered_by"], "Stop hook");
    }
    let untouched = app
        .get("/v1/sessions/cc-steer/interactions/run-tests")
        .await;
    assert_eq!(untouched.body["status"], "queued", "left to an executor");

    // A later instruction is delivered by a later Stop.
    assert_eq!(
        queue("say-3", json!({"prompt": "and commit"})).await.status,
        201
    );
    let run = run_hook(&app.base_url, &state, &[], &stop).await;
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).unwrap(),
        json!({"decision": "block", "reason": "and commit"})
    );
    let run = run_hook(&app.base_url, &state, &[], &stop).await;
    assert_eq!(run.stdout, "", "nothing more to say");
}

/// `POST /v1/hooks/claude-code`, where Claude Code's HTTP hooks post: the input is stored as
/// the command hook stores it, a gated tool use waits for its decision and gets the same JSON,
/// and what it cannot use is a problem answer (a non-blocking error to Claude Code), with the
/// event still stored where the input could be read. (The real CLI drives it in
/// tests/claude_code.)
async fn the_http_hook_route_stores_decides_and_refuses_clearly(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let route = "/v1/hooks/claude-code";
    let stop = fixture("Stop", "cc-http");
    let r = app.post_raw(route, stop.as_bytes()).await;
    assert_eq!((r.status, r.text.as_str()), (200, ""), "{}", r.text);
    let events = app.get("/v1/sessions/cc-http/events").await;
    assert_eq!(events.body["events"][0]["event_type"], "Stop");
    assert_eq!(events.body["events"][0]["data"]["stop_hook_active"], false);

    // A gated PermissionRequest waits for the decision.
    let request = fixture("PermissionRequest", "cc-http");
    let gated = format!("{route}?approve=%5EBash%24&approval_timeout=30");
    let hook = app.post_raw(gated.clone(), request.as_bytes());
    let decide = async {
        let id = pending_approval(&app, "cc-http").await;
        app.post(
            format!("/v1/sessions/cc-http/interactions/{id}/reject"),
            json!({"reason": "not on main"}),
        )
        .await
    };
    let (answer, rejected) = tokio::join!(hook, decide);
    assert_eq!(rejected.status, 200);
    assert_eq!(
        answer.body,
        json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest",
            "decision": {"behavior": "deny", "message": "not on main"}}})
    );

    // What the route cannot use.
    for (query, body, status, code) in [
        ("", "{not json".to_owned(), 400, "bad_request"),
        (
            "",
            r#"{"hook_event_name":"Stop"}"#.to_owned(),
            422,
            "validation_failed",
        ),
        (
            "?approve=(Bash",
            fixture("Stop", "cc-http-bad"),
            400,
            "bad_request",
        ),
        (
            "?approval_timeout=0",
            fixture("Stop", "cc-http-bad"),
            400,
            "bad_request",
        ),
        (
            "?on_timeout=allow",
            fixture("Stop", "cc-http-bad"),
            400,
            "bad_request",
        ),
    ] {
        let r = app
            .post_raw(format!("{route}{query}"), body.as_bytes())
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (status, Some(code)),
            "{query} {body}: {}",
            r.text
        );
    }
    // Settings the route cannot use lose no event.
    let stored = app.get("/v1/sessions/cc-http-bad/events").await;
    assert_eq!(
        stored.body["events"].as_array().unwrap().len(),
        3,
        "{}",
        stored.text
    );
}
