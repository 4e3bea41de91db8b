"""Whole Claude Code sessions recorded by the hook, with the real CLI: a broken hook setting
blocks nothing, and a session run while the server is down reaches it later, complete and in
order, by `hook flush`."""
import pytest

from conftest import approvals_of, events_of
from messages_standin import text, tool_use


def test_a_mistyped_flag_blocks_nothing(make_server, claude, standin):
    server = make_server()
    claude.install(server.base)
    # A typo in the hook command of every event, as a user might make editing the settings.
    settings = claude.read_settings()
    for groups in settings["hooks"].values():
        for group in groups:
            for hook in group["hooks"]:
                hook["command"] += " --aprove Bash"
    claude.write_settings(settings)
    model = standin([tool_use("Read", file_path=str(claude.project / ".claude" / "settings.json")),
                     text("read it")])
    summary = claude.run("read the settings", model)
    # The agent went on as if the hook were not there (exit 1 is a non-blocking error)...
    assert summary["result"] == "read it" and summary["permission_denials"] == []
    [(content, is_error)] = model.tool_results().values()
    assert not is_error and "--aprove" in content
    # ...and the events were still recorded, with the settings the hook could read.
    names = [e["event_type"] for e in events_of(server, summary["session_id"])]
    for expected in ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SessionEnd"]:
        assert expected in names, names


def test_a_session_while_the_server_is_down_arrives_by_flush(make_server, claude, standin):
    server = make_server()
    server.stop()
    claude.install(server.base, "--approve", "^Bash$")
    model = standin([tool_use("Bash", command="touch offline.txt", description="x"), text("ok")])
    summary = claude.run("make a file", model)
    # No orchestrator: no decision, so Claude Code's own flow went on (a denial, headless).
    assert [d["tool_name"] for d in summary["permission_denials"]] == ["Bash"]
    server.start()
    assert server.call("GET", f"/v1/sessions/{summary['session_id']}")[0] == 404
    flushed = claude.hook("flush", "--url", server.base)
    assert flushed.returncode == 0, flushed.stderr
    events = events_of(server, summary["session_id"])
    names = [e["event_type"] for e in events]
    assert names[0] == "SessionStart" and names[-1] == "SessionEnd", names
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert "PermissionRequest" in names
    # Flushing again stores nothing twice.
    assert claude.hook("flush", "--url", server.base).returncode == 0
    assert len(events_of(server, summary["session_id"])) == len(events)
    status, session = server.call("GET", f"/v1/sessions/{summary['session_id']}")
    assert session["status"] == "ended", session
    assert approvals_of(server, summary["session_id"]) == []


@pytest.mark.parametrize("transport", ["command", "http"])
def test_a_queued_instruction_reaches_the_agent_at_stop(make_server, claude, standin, transport):
    server = make_server()
    claude.install(server.base, transport=transport)
    session_id = "5eed0000-0000-4000-8000-000000000001"
    assert server.call("PUT", f"/v1/sessions/{session_id}", {"metadata": {"repo": "acme"}})[0] == 201
    status, _ = server.call("POST", f"/v1/sessions/{session_id}/commands",
                            {"interaction_id": "say-1", "payload": {"prompt": "now write the changelog"}})
    assert status == 201
    model = standin([text("the feature is done"), text("the changelog is written")])
    summary = claude.run("build the feature", model, session_id=session_id)
    # The agent did not stop after its first answer: it was given the instruction and went on.
    assert summary["result"] == "the changelog is written", summary
    assert any("now write the changelog" in said for said in model.user_texts()), model.user_texts()
    status, command = server.call("GET", f"/v1/sessions/{session_id}/interactions/say-1")
    assert (command["status"], command["outcome"]) == ("completed", "ok"), command
    assert command["result"]["delivered_by"] == "Stop hook"
    assert command["result"]["via"] == ("orchestrator hook" if transport == "command" else "http hook")
    stops = [e for e in events_of(server, session_id) if e["event_type"] == "Stop"]
    assert len(stops) == 2 and stops[1]["data"]["stop_hook_active"] is True, stops


def test_a_resumed_session_is_reopened_then_ended_again(make_server, claude, standin):
    server = make_server()
    claude.install(server.base)
    model = standin([text("first"), text("second")])
    summary = claude.run("start", model)
    session_id = summary["session_id"]
    assert server.call("GET", f"/v1/sessions/{session_id}")[1]["status"] == "ended"
    resumed = claude.run("go on", model, resume=session_id)
    assert resumed["session_id"] == session_id
    sources = [e["data"].get("source") for e in events_of(server, session_id)
               if e["event_type"] == "SessionStart"]
    assert sources == ["startup", "resume"], sources
    status, body = server.call("GET", f"/v1/notifications?session_id={session_id}")
    assert status == 200, body
    statuses = [n["status"] for n in body["notifications"]
                if n["type"] in ("session.created", "session.updated") and "status" in n]
    assert statuses == ["active", "ended", "active", "ended"], body["notifications"]
