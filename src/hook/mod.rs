//! `orchestrator hook`: the Claude Code adapter. Claude Code runs it for each hook event with
//! the event's JSON on stdin; it turns that into an event of the session (numbered with a
//! per-session `sequence` so the server applies parallel hooks in the order they started),
//! delivers it through a local spool so nothing is lost while the server is down, and, for
//! tool uses that `--approve` matches, opens an approval interaction and prints the decision
//! in the form Claude Code reads. It uses only the public HTTP API.

mod client;
mod install;
mod key_order;
mod state;

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use crate::claude_code::decision::{fall_back, hook_output, Fallback};
use crate::claude_code::flow::{self, Waiting};
use crate::claude_code::gates::Gates;
use crate::claude_code::input::HookInput;
use client::{HookOrchestrator, Reply, Server};
use state::StateDir;

/// How long an observe-only hook may take in all, retries included: it must never slow the
/// agent down, and an event that does not get through waits in the spool.
const OBSERVE_BUDGET: Duration = Duration::from_millis(2000);
/// SessionEnd hooks share about 1.5 s in Claude Code; the process itself needs some of it.
const SESSION_END_BUDGET: Duration = Duration::from_millis(1000);
/// `hook flush` may take this long.
const FLUSH_BUDGET: Duration = Duration::from_secs(60);
/// The largest hook input read from stdin.
const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Sends Claude Code hook events to the orchestrator (reads one hook input on stdin).
#[derive(Debug, Parser)]
#[command(name = "orchestrator hook", version)]
struct HookCli {
    #[command(subcommand)]
    command: Option<HookSubcommand>,
    /// The orchestrator's address (http only)
    #[arg(
        long,
        env = "ORCH_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// Bearer key, when the server has ORCH_API_KEYS
    #[arg(long, env = "ORCH_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    /// Where the sequence counters and the spool live (default: the per-user state directory,
    /// $XDG_STATE_HOME/orchestrator/hook or ~/.local/state/orchestrator/hook)
    #[arg(long, env = "ORCH_HOOK_STATE_DIR", global = true)]
    state_dir: Option<PathBuf>,
    /// Ask a person in the orchestrator whenever Claude Code would ask the user about a tool
    /// whose name matches this regex (the PermissionRequest hook). Calls the user's rules or
    /// permission mode allow are not asked about.
    #[arg(long, global = true)]
    approve: Option<String>,
    /// Ask a person in the orchestrator before every use of a tool whose name matches this
    /// regex, even one the user's rules allow (the PreToolUse hook): a policy gate. If Claude
    /// Code then asks too, its PermissionRequest gets the same decision; it is not asked twice.
    #[arg(long, global = true)]
    require_approval: Option<String>,
    /// Seconds to wait for an approval
    #[arg(long, default_value_t = 300, global = true)]
    approval_timeout: u64,
    /// What to answer when no decision comes in time or the server is unreachable: `ask`
    /// decides nothing (Claude Code's own permission flow goes on, with a message saying the
    /// orchestrator did not answer), `deny` refuses the tool use
    #[arg(long, value_enum, default_value = "ask", global = true)]
    on_timeout: Fallback,
}

/// How Claude Code reaches the orchestrator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Transport {
    Command,
    Http,
}

#[derive(Debug, Subcommand)]
enum HookSubcommand {
    /// Deliver every spooled event now, in sequence order
    Flush,
    /// Print the `hooks` block for Claude Code's settings, or merge it into a settings file
    Install {
        /// The settings.json to merge into (e.g. .claude/settings.json); printed when absent
        #[arg(long)]
        settings: Option<PathBuf>,
        /// `command`: Claude Code runs this binary for each hook (spooled while the server is
        /// down, numbered in start order); `http`: Claude Code posts each hook's input to the
        /// server's /v1/hooks/claude-code itself (nothing to install on the machine)
        #[arg(long, value_enum, default_value = "command")]
        transport: Transport,
    },
    /// Take this command's hooks out of a settings file, leaving every other hook
    Uninstall {
        /// The settings.json to change (e.g. .claude/settings.json)
        #[arg(long)]
        settings: PathBuf,
    },
}

/// The settings that could be read from `args` when they do not all parse: the argument
/// clap names in its error (and, for a bad value, the value after it) is left out and the rest
/// parsed again, so a mistyped flag costs only itself; the URL, key and state directory still
/// apply.
fn best_effort_settings(args: &[OsString]) -> HookCli {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let mut args = args.to_vec();
    for _ in 0..16 {
        let error = match HookCli::try_parse_from(&args) {
            Ok(cli) => return cli,
            Err(error) => error,
        };
        let offending = [ContextKind::InvalidArg, ContextKind::InvalidSubcommand]
            .into_iter()
            .find_map(|kind| match error.get(kind) {
                Some(ContextValue::String(offending)) => Some(offending.clone()),
                _ => None,
            });
        let Some(offending) = offending else {
            break;
        };
        let flag = offending.split([' ', '=']).next().unwrap_or("").to_owned();
        let Some(at) = args
            .iter()
            .skip(1)
            .position(|a| {
                let a = a.to_string_lossy();
                a == flag || a.starts_with(&format!("{flag}="))
            })
            .map(|i| i + 1)
        else {
            break;
        };
        let takes_value =
            error.kind() == ErrorKind::InvalidValue && !args[at].to_string_lossy().contains('=');
        args.remove(at);
        if takes_value && at < args.len() {
            args.remove(at);
        }
    }
    // Nothing to go on but the environment.
    HookCli::try_parse_from(args.iter().take(1))
        .unwrap_or_else(|_| HookCli::parse_from(["orchestrator hook"]))
}

/// Runs `orchestrator hook …`; `args` starts with the sub-command's own name.
///
/// It never exits 2: to Claude Code that means "block" (the prompt erased, every tool call
/// refused, Stop kept from stopping). A setting it cannot use (a mistyped flag, a bad
/// `--approve` regex, an unknown `--on-timeout`) is reported on stderr with exit 1, which
/// Claude Code shows and otherwise ignores, and the event is still recorded with the settings
/// that could be read; no approval is asked under a broken configuration.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args: Vec<OsString> = args.into_iter().collect();
    let (mut cli, mut problems) = match HookCli::try_parse_from(&args) {
        Ok(cli) => (cli, Vec::new()),
        Err(e) if !e.use_stderr() => {
            // --help, --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => (best_effort_settings(&args), vec![e.to_string()]),
    };
    let gates = Gates::parse(cli.approve.as_deref(), cli.require_approval.as_deref())
        .unwrap_or_else(|e| {
            problems.push(e);
            Gates::default()
        });
    if cli.approval_timeout == 0 || cli.approval_timeout > 86_400 {
        problems.push("--approval-timeout must be from 1 to 86400 seconds".into());
        cli.approval_timeout = 300;
    }
    // Under a broken configuration nothing is gated: Claude Code's own permission flow decides.
    let gates = if problems.is_empty() {
        gates
    } else {
        Gates::default()
    };
    let report = |problems: &[String]| {
        for problem in problems {
            eprintln!("orchestrator hook: {}", problem.trim_end());
        }
    };
    if !problems.is_empty() && cli.command.is_some() {
        // `install` and `flush` are run by a person: do nothing rather than half of it.
        report(&problems);
        return ExitCode::FAILURE;
    }
    let state = cli
        .state_dir
        .clone()
        .or_else(StateDir::default_root)
        .map(StateDir::new);
    let no_state = "there is no state directory for the spool: HOME and XDG_STATE_HOME are \
                    unset (set ORCH_HOOK_STATE_DIR or --state-dir)";
    match &cli.command {
        Some(HookSubcommand::Install {
            settings,
            transport,
        }) => install(&cli, settings.as_deref(), *transport),
        Some(HookSubcommand::Uninstall { settings }) => {
            rewrite_settings(settings, "uninstalled from", install::remove_ours)
        }
        Some(HookSubcommand::Flush) => {
            let Some(state) = state else {
                report(&[no_state.to_owned()]);
                return ExitCode::FAILURE;
            };
            let server = Server::new(&cli.url, cli.api_key.clone());
            actix_rt::System::new().block_on(async {
                let deadline = Instant::now() + FLUSH_BUDGET;
                let left = deliver_all(&state, &server, None, deadline).await;
                if left == 0 {
                    ExitCode::SUCCESS
                } else {
                    eprintln!("orchestrator hook: {left} events are still spooled");
                    ExitCode::FAILURE
                }
            })
        }
        None => {
            let input = match read_input() {
                Ok(input) => input,
                Err((why, text)) => return unreadable_input(&why, &text, &gates, cli.on_timeout),
            };
            let server = Server::new(&cli.url, cli.api_key.clone());
            let wants_approval = gates.gate(&input.event_name, input.tool_name());
            if state.is_none() {
                problems.push(format!("{no_state}; the event is sent without it"));
            }
            actix_rt::System::new().block_on(async {
                if let Err(lost) = record(state.as_ref(), &server, &input).await {
                    problems.push(lost);
                }
                let orchestrator = HookOrchestrator {
                    server: &server,
                    state: state.as_ref(),
                };
                if wants_approval {
                    let waiting = Waiting {
                        timeout: Duration::from_secs(cli.approval_timeout),
                        fallback: cli.on_timeout,
                    };
                    let verdict = flow::decide(&orchestrator, waiting, &input).await;
                    let suggestions = input.permission_suggestions();
                    if let Some(output) = hook_output(&input.event_name, &verdict, suggestions) {
                        println!("{output}");
                    }
                }
                if input.event_name == "Stop" {
                    let via = "orchestrator hook";
                    if let Some(prompt) = flow::next_instruction(&orchestrator, &input, via).await {
                        println!("{}", json!({"decision": "block", "reason": prompt}));
                    }
                }
                if problems.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    report(&problems);
                    ExitCode::FAILURE
                }
            })
        }
    }
}

/// Reads the hook input from stdin: at most [`MAX_INPUT_BYTES`] of it are kept, the rest is
/// read and dropped so that Claude Code's write never fails on a closed pipe. On failure, why
/// and the text that was kept.
fn read_input() -> Result<HookInput, (String, String)> {
    let mut stdin = std::io::stdin().lock();
    let mut bytes = Vec::new();
    if let Err(e) = (&mut stdin).take(MAX_INPUT_BYTES).read_to_end(&mut bytes) {
        return Err((format!("reading stdin: {e}"), String::new()));
    }
    let rest = std::io::copy(&mut stdin, &mut std::io::sink()).unwrap_or(0);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if rest > 0 {
        let why = format!(
            "the hook input is larger than {MAX_INPUT_BYTES} bytes ({} more were dropped)",
            rest
        );
        return Err((why, text));
    }
    HookInput::parse(&text).map_err(|e| (e.to_string(), text))
}

/// What the hook answers when it cannot read or handle its input: what it answers when no
/// decision comes. For a tool use that approvals may gate (its event name found near the start
/// of the text, where Claude Code writes it), `--on-timeout deny` refuses it and the default
/// decides nothing, saying why; for anything else the error goes to stderr with exit 1, a
/// non-blocking error. It never blocks otherwise.
fn unreadable_input(why: &str, text: &str, gates: &Gates, fallback: Fallback) -> ExitCode {
    eprintln!("orchestrator hook: {why}");
    let head = &text[..text.floor_char_boundary(64 * 1024)];
    let event =
        regex_lite::Regex::new(r#""hook_event_name"\s*:\s*"(PreToolUse|PermissionRequest)""#)
            .ok()
            .and_then(|re| re.captures(head))
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_owned());
    // The tool is unknown: any gate that could apply to the event counts.
    match event {
        Some(event) if gates.may_gate(&event) => {
            let verdict = fall_back(fallback, "the hook input could not be read");
            if let Some(output) = hook_output(&event, &verdict, &[]) {
                println!("{output}");
            }
            // Claude Code reads stdout only after exit 0.
            ExitCode::SUCCESS
        }
        _ => ExitCode::FAILURE,
    }
}

/// Spools the input as an event of its session, then delivers the spool: this session's
/// first, then whatever other sessions left behind, all within the observe budget. When the
/// event cannot be spooled (no state directory, one that cannot be written, a lock held too
/// long) it is delivered directly, without a sequence number, rather than lost; the error
/// says what happened to it.
async fn record(
    state: Option<&StateDir>,
    server: &Server,
    input: &HookInput,
) -> Result<(), String> {
    let budget = if input.event_name == "SessionEnd" {
        SESSION_END_BUDGET
    } else {
        OBSERVE_BUDGET
    };
    let deadline = Instant::now() + budget;
    let session = input.session_id.as_str();
    let now = crate::domain::time::format_millis(crate::domain::time::now_millis());
    let event_id = input.new_event_id();
    let spooled = match state {
        Some(state) => state
            .assign_and_spool(session, deadline, |sequence| {
                input.event(&event_id, &now, Some(sequence))
            })
            .map(|_| ())
            .map_err(|e| format!("cannot spool the event: {e}")),
        None => Err("the event was not spooled".to_owned()),
    };
    let outcome = match spooled {
        Ok(()) => Ok(()),
        Err(why) => {
            let path = format!("/v1/sessions/{session}/events");
            let event = input.event(&event_id, &now, None);
            match server
                .request(Method::POST, &path, Some(&event), deadline)
                .await
            {
                Reply::Answered(200 | 201, _) => Err(format!(
                    "{why}; it was delivered directly, without a sequence number"
                )),
                Reply::Answered(status, _) => Err(format!(
                    "{why}; the server refused it ({status}): it is lost"
                )),
                Reply::Unavailable(unavailable) => Err(format!(
                    "{why}; the server is unavailable ({unavailable}): it is lost"
                )),
            }
        }
    };
    if let Some(state) = state {
        deliver_all(state, server, Some(session), deadline).await;
    }
    outcome
}

/// Delivers the spools, `first`'s before the others; returns how many events are left.
async fn deliver_all(
    state: &StateDir,
    server: &Server,
    first: Option<&str>,
    deadline: Instant,
) -> usize {
    let mut sessions = state.sessions_with_spool();
    if let Some(first) = first {
        sessions.retain(|s| s != first);
        sessions.insert(0, first.to_owned());
    }
    let mut left = 0;
    for session in sessions {
        if let Err(why) = deliver(state, server, &session, deadline).await {
            eprintln!("orchestrator hook: session {session}: {why}; kept in the spool");
        }
        left += state.spooled(&session).map_or(0, |s| s.len());
    }
    left
}

/// Delivers one session's spool in sequence order, under its delivery lock, until done, the
/// server is unavailable or time is up. Each event leaves the spool only once the server has
/// acknowledged it (stored, or recognised as a duplicate), so an event is delivered at least
/// once and, by its event id, stored exactly once.
async fn deliver(
    state: &StateDir,
    server: &Server,
    session: &str,
    deadline: Instant,
) -> Result<(), String> {
    let _lock = state
        .lock_delivery(session, deadline)
        .map_err(|e| e.to_string())?;
    let path = format!("/v1/sessions/{session}/events");
    for spooled in state.spooled(session).map_err(|e| e.to_string())? {
        let mut event = spooled.event.clone();
        loop {
            match server
                .request(Method::POST, &path, Some(&event), deadline)
                .await
            {
                Reply::Answered(200 | 201, _) => {
                    state.delivered(&spooled).map_err(|e| e.to_string())?;
                }
                // The number is taken by another event (the state directory was lost or
                // shared): store the event without one rather than lose it.
                Reply::Answered(422, body)
                    if body["field"] == "sequence" && event.get("sequence").is_some() =>
                {
                    event.as_object_mut().map(|e| e.remove("sequence"));
                    continue;
                }
                Reply::Answered(401 | 403, _) => {
                    return Err("the server refused the API key".into());
                }
                Reply::Answered(status @ (400 | 404 | 409 | 413 | 422), body) => {
                    eprintln!(
                        "orchestrator hook: the server refused event {} of session {session} \
                         ({status} {}); set aside",
                        spooled.sequence,
                        body["detail"].as_str().unwrap_or("")
                    );
                    state
                        .reject(session, &spooled.path)
                        .map_err(|e| e.to_string())?;
                }
                Reply::Answered(status, _) => return Err(format!("the server answered {status}")),
                Reply::Unavailable(why) => {
                    return Err(format!("the server is unavailable ({why})"))
                }
            }
            break;
        }
    }
    Ok(())
}

/// `hook install`: prints the hooks block, or merges it into `settings`.
fn install(cli: &HookCli, settings: Option<&std::path::Path>, transport: Transport) -> ExitCode {
    let program = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "orchestrator".into());
    let mut args = Vec::new();
    if cli.url != "http://127.0.0.1:8080" {
        args.extend(["--url".to_owned(), cli.url.clone()]);
    }
    if let Some(dir) = &cli.state_dir {
        args.extend(["--state-dir".to_owned(), dir.display().to_string()]);
    }
    if let Some(approve) = &cli.approve {
        args.extend(["--approve".to_owned(), approve.clone()]);
    }
    if let Some(required) = &cli.require_approval {
        args.extend(["--require-approval".to_owned(), required.clone()]);
    }
    let gated = cli.approve.is_some() || cli.require_approval.is_some();
    if gated {
        args.extend([
            "--approval-timeout".to_owned(),
            cli.approval_timeout.to_string(),
        ]);
        if cli.on_timeout == Fallback::Deny {
            args.extend(["--on-timeout".to_owned(), "deny".to_owned()]);
        }
        eprintln!(
            "orchestrator hook: note: Claude Code's auto mode settles most permission prompts \
             itself, so --approve sees only the ones it leaves to the user. For a person to \
             decide every gated call, set \"permissions\": {{\"defaultMode\": \"default\"}} in \
             the settings, or gate with --require-approval (asked before every use, whatever \
             the rules say)."
        );
    }
    let http = (transport == Transport::Http).then(|| install::HttpTarget {
        url: http_hook_url(cli),
        with_key: cli.api_key.is_some(),
    });
    let command = install::HookCommand {
        program,
        args,
        approval_timeout_secs: gated.then_some(cli.approval_timeout),
        gates_pre_tool_use: cli.require_approval.is_some(),
        http,
    };
    let Some(path) = settings else {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"hooks": command.hooks_block()}))
                .unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    };
    rewrite_settings(path, "installed in", |settings| {
        command.merge_into(settings)
    })
}

/// The URL of the server's route for Claude Code's HTTP hooks, with the gates as its query.
fn http_hook_url(cli: &HookCli) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(approve) = &cli.approve {
        query.append_pair("approve", approve);
    }
    if let Some(required) = &cli.require_approval {
        query.append_pair("require_approval", required);
    }
    if cli.approve.is_some() || cli.require_approval.is_some() {
        query.append_pair("approval_timeout", &cli.approval_timeout.to_string());
        if cli.on_timeout == Fallback::Deny {
            query.append_pair("on_timeout", "deny");
        }
    }
    let query = query.finish();
    let url = format!("{}/v1/hooks/claude-code", cli.url.trim_end_matches('/'));
    if query.is_empty() {
        url
    } else {
        format!("{url}?{query}")
    }
}

/// Reads a Claude Code settings file, changes it with `change`, and writes it back in place:
/// through a symbolic link to the file it names, with the file's permission bits kept (a
/// settings file that holds a key stays private), atomically. A read-only file is left as it
/// is, and so is one that is not JSON.
fn rewrite_settings(
    path: &std::path::Path,
    done: &str,
    change: impl FnOnce(Value) -> Result<Value, String>,
) -> ExitCode {
    use std::os::unix::fs::PermissionsExt;
    let fail = |why: String| {
        eprintln!("orchestrator hook: {}: {why}", path.display());
        ExitCode::FAILURE
    };
    // A link is followed: the file it names is changed, and the link stays a link.
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut order = key_order::KeyOrder::default();
    let (existing, mode) = match std::fs::metadata(&target) {
        Ok(meta) if meta.permissions().readonly() => {
            return fail("the file is read-only; nothing was changed".into())
        }
        Ok(meta) => match std::fs::read_to_string(&target) {
            Ok(text) if text.trim().is_empty() => (json!({}), meta.permissions().mode() & 0o7777),
            Ok(text) => match serde_json::from_str(&text) {
                Ok(value) => {
                    order = key_order::KeyOrder::of(&text);
                    (value, meta.permissions().mode() & 0o7777)
                }
                Err(e) => return fail(format!("not JSON: {e}")),
            },
            Err(e) => return fail(format!("reading: {e}")),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (json!({}), 0o644),
        Err(e) => return fail(format!("reading: {e}")),
    };
    let changed = match change(existing) {
        Ok(changed) => changed,
        Err(why) => return fail(why),
    };
    // The user's key order is kept; our entries come after theirs.
    let text = order.pretty(&changed) + "\n";
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(parent);
    }
    match state::write_atomically_with_mode(&target, text.as_bytes(), mode) {
        Ok(()) => {
            eprintln!("orchestrator hook: hooks {done} {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("writing: {e}")),
    }
}
