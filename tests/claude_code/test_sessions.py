"""Whole Claude Code sessions recorded by the hook, with the real CLI: a broken hook setting
blocks nothing, and a session run while the server is down reaches it later, complete and in
order, by `hook flush`."""
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
