"""Approvals with the real Claude Code CLI: a person in the orchestrator decides where Claude
Code would ask the user, and only there; each decision reaches Claude Code (and, for a
rejection, its reason reaches the model); each tool use is asked about once, and no decision
is ever replayed to another one."""
import json
import threading

import pytest

from conftest import Decider, approvals_of, events_of, wait_for
from messages_standin import text, tool_use


# Both ways Claude Code reaches the orchestrator: running `orchestrator hook`, or posting to
# the server's /v1/hooks/claude-code itself.
both_transports = pytest.mark.parametrize("transport", ["command", "http"])


def bash(command):
    return tool_use("Bash", command=command, description="a step of the test")


@both_transports
def test_an_approved_call_runs_and_the_session_ends(make_server, claude, standin, transport):
    server = make_server()
    claude.install(server.base, "--approve", "^Bash$", "--approval-timeout", "30", transport=transport)
    model = standin([bash("touch approved.txt"), text("made it")])
    decider = Decider(server, session_id := "a7e0c5b2-0000-4000-8000-000000000001",
                      [("resolve", {"reason": "fine"})])
    summary = claude.run("make a file", model, session_id=session_id)
    decider.close()
    assert summary["result"] == "made it"
    assert summary["permission_denials"] == []
    assert (claude.project / "approved.txt").exists()
    [approval] = approvals_of(server, session_id)
    assert approval["outcome"] == "approved"
    assert approval["payload"]["tool_input"]["command"] == "touch approved.txt"
    assert approval["payload"]["hook_event_name"] == "PermissionRequest"
    # Every hook event, stored in the order the hooks started, exactly as Claude Code sent it.
    names = [e["event_type"] for e in events_of(server, session_id)]
    # Claude Code (2.1.332) runs no HTTP hook at SessionStart: over HTTP the session begins
    # with the prompt.
    first = "SessionStart" if transport == "command" else "UserPromptSubmit"
    assert names[0] == first and names[-1] == "SessionEnd", names
    for expected in ["UserPromptSubmit", "PreToolUse", "PermissionRequest", "PostToolUse", "Stop"]:
        assert expected in names, names
    # SessionEnd ended the session.
    status, session = server.call("GET", f"/v1/sessions/{session_id}")
    assert (status, session["status"]) == (200, "ended"), session


@both_transports
def test_a_rejection_and_its_reason_reach_the_model(make_server, claude, standin, transport):
    server = make_server()
    claude.install(server.base, "--approve", "^Bash$", "--approval-timeout", "30", transport=transport)
    model = standin([bash("touch rejected.txt"), text("understood")])
    session_id = "a7e0c5b2-0000-4000-8000-000000000002"
    decider = Decider(server, session_id, [("reject", "not on the main branch")])
    summary = claude.run("make a file", model, session_id=session_id)
    decider.close()
    assert not (claude.project / "rejected.txt").exists()
    assert [d["tool_name"] for d in summary["permission_denials"]] == ["Bash"]
    [(content, is_error)] = model.tool_results().values()
    assert is_error and "not on the main branch" in content, content
    [approval] = approvals_of(server, session_id)
    assert approval["outcome"] == "rejected"


@both_transports
def test_no_decision_leaves_it_to_claude_code(make_server, claude, standin, transport):
    server = make_server()
    claude.install(server.base, "--approve", "^Bash$", "--approval-timeout", "2", transport=transport)
    model = standin([bash("touch undecided.txt"), text("ok")])
    summary = claude.run("make a file", model)
    # Nobody decided: Claude Code's own flow goes on, which in a headless run denies.
    assert not (claude.project / "undecided.txt").exists()
    assert [d["tool_name"] for d in summary["permission_denials"]] == ["Bash"]
    [approval] = approvals_of(server, summary["session_id"])
    assert approval["status"] == "cancelled", approval


@both_transports
def test_a_call_the_rules_allow_is_not_asked_about(make_server, claude, standin, transport):
    server = make_server()
    settings = claude.read_settings()
    settings["permissions"]["allow"] = ["Bash(touch allowed.txt)"]
    claude.write_settings(settings)
    claude.install(server.base, "--approve", "^Bash$", "--approval-timeout", "30", transport=transport)
    model = standin([bash("touch allowed.txt"), text("ok")])
    summary = claude.run("make a file", model)
    assert (claude.project / "allowed.txt").exists()
    assert summary["permission_denials"] == []
    assert approvals_of(server, summary["session_id"]) == []
    # The install kept the user's rule.
    assert claude.read_settings()["permissions"]["allow"] == ["Bash(touch allowed.txt)"]


@both_transports
def test_the_same_command_twice_is_asked_twice(make_server, claude, standin, transport):
    server = make_server()
    claude.install(server.base, "--approve", "^Bash$", "--approval-timeout", "30", transport=transport)
    model = standin([bash("touch twice.txt"), bash("touch twice.txt"), text("ok")])
    session_id = "a7e0c5b2-0000-4000-8000-000000000003"
    decider = Decider(server, session_id, [("resolve", {}), ("reject", "once is enough")])
    summary = claude.run("make a file twice", model, session_id=session_id)
    decider.close()
    approvals = approvals_of(server, session_id)
    assert [a["outcome"] for a in approvals] == ["approved", "rejected"], approvals
    assert len(summary["permission_denials"]) == 1
    results = model.tool_results()
    assert results["toolu_00_0"][1] is False
    assert results["toolu_01_0"][1] is True and "once is enough" in results["toolu_01_0"][0]


@both_transports
def test_always_allow_stops_the_asking(make_server, claude, standin, transport):
    server = make_server()
    claude.install(server.base, "--approve", "^Bash$", "--approval-timeout", "30", transport=transport)
    model = standin([bash("git init first"), bash("git init second"), text("ok")])
    session_id = "a7e0c5b2-0000-4000-8000-000000000004"
    chosen = []

    def choose_always_allow():
        """Picks the "always allow" rule the dialog would have offered."""
        pending = wait_for("an approval", lambda: [a for a in approvals_of(server, session_id)
                                                   if a["status"] == "pending"])
        suggestions = pending[0]["payload"]["permission_suggestions"]
        chosen.extend(s for s in suggestions if s["type"] == "addRules")
        status, body = server.call(
            "POST", f"/v1/sessions/{session_id}/interactions/{pending[0]['interaction_id']}/resolve",
            {"response": {"updated_permissions": chosen[:1]}})
        assert status == 200, body

    person = threading.Thread(target=choose_always_allow, daemon=True)
    person.start()
    summary = claude.run("make two repositories", model, session_id=session_id)
    person.join(5)
    assert chosen and chosen[0]["rules"][0]["ruleContent"] == "git init *", chosen
    assert summary["permission_denials"] == []
    assert (claude.project / "first" / ".git").is_dir()
    assert (claude.project / "second" / ".git").is_dir()
    # Asked once: Claude Code saved the rule where the option said, and the second use was
    # allowed by it.
    assert len(approvals_of(server, session_id)) == 1
    local = json.loads((claude.project / ".claude" / "settings.local.json").read_text())
    assert "Bash(git init *)" in local["permissions"]["allow"], local


@both_transports
def test_the_policy_gate_asks_even_where_the_rules_allow_and_only_once(make_server, claude, standin, transport):
    server = make_server()
    settings = claude.read_settings()
    settings["permissions"]["allow"] = ["Bash(touch policy-allowed.txt)"]
    settings["permissions"]["ask"] = ["Bash(touch policy-asked.txt)"]
    claude.write_settings(settings)
    claude.install(server.base, "--require-approval", "^Bash$", "--approval-timeout", "30", transport=transport)
    model = standin([bash("touch policy-allowed.txt"), bash("touch policy-asked.txt"), text("ok")])
    session_id = "a7e0c5b2-0000-4000-8000-000000000005"
    decider = Decider(server, session_id, [("resolve", {}), ("resolve", {})])
    summary = claude.run("make two files", model, session_id=session_id)
    decider.close()
    assert summary["permission_denials"] == []
    assert (claude.project / "policy-allowed.txt").exists()
    assert (claude.project / "policy-asked.txt").exists()
    # One approval per tool use: the second, which the user's rules say to ask about, got a
    # PermissionRequest too, and it joined the approval of its PreToolUse.
    approvals = approvals_of(server, session_id)
    assert [a["payload"]["hook_event_name"] for a in approvals] == ["PreToolUse", "PreToolUse"], approvals
    names = [e["event_type"] for e in events_of(server, session_id)]
    assert names.count("PermissionRequest") == 1, names


@both_transports
def test_an_approval_can_change_the_input(make_server, claude, standin, transport):
    # AskUserQuestion and ExitPlanMode, the tools that need it most, are off in headless runs;
    # a shell command shows the same path: the person's input is what Claude Code runs.
    server = make_server()
    claude.install(server.base, "--approve", "^Bash$", "--approval-timeout", "30", transport=transport)
    model = standin([bash("touch as-asked.txt"), text("ok")])
    session_id = "a7e0c5b2-0000-4000-8000-000000000006"
    edited = {"command": "touch as-edited.txt", "description": "edited in the dashboard"}
    decider = Decider(server, session_id, [("resolve", {"updated_input": edited})])
    summary = claude.run("make a file", model, session_id=session_id)
    decider.close()
    assert summary["permission_denials"] == []
    assert (claude.project / "as-edited.txt").exists()
    assert not (claude.project / "as-asked.txt").exists()
