"""Claude Code against a cluster (PostgreSQL): the hooks reach a node that does not hold the
session, which forwards them to the one that does; the approval asked there is decided
through the first node too, and the session is recorded whole, in order, and ended."""
import pytest

from conftest import Decider, approvals_of, events_of
from messages_standin import text, tool_use
from orchestrator_server import make_cluster, metric  # noqa: F401  (fixture)


@pytest.mark.parametrize("transport", ["command", "http"])
def test_a_session_through_a_node_that_does_not_hold_it(make_cluster, claude, standin, transport):
    cluster = make_cluster(2)
    reached, owner = cluster.nodes
    session_id = cluster.session_held_by("node-2")
    claude.install(reached.base, "--approve", "^Bash$", "--approval-timeout", "30", transport=transport)
    model = standin([tool_use("Bash", command="touch clustered.txt", description="a step"),
                     text("made it")])
    decider = Decider(reached, session_id, [("resolve", {"reason": "fine"})])
    summary = claude.run("make a file", model, session_id=session_id)
    decider.close()
    assert summary["result"] == "made it"
    assert summary["permission_denials"] == []
    assert (claude.project / "clustered.txt").exists()
    # Through either node: one approval, approved, and every hook event in order.
    for node in cluster.nodes:
        [approval] = approvals_of(node, session_id)
        assert approval["outcome"] == "approved"
        names = [e["event_type"] for e in events_of(node, session_id)]
        first = "SessionStart" if transport == "command" else "UserPromptSubmit"
        assert names[0] == first and names[-1] == "SessionEnd", names
        for expected in ["UserPromptSubmit", "PreToolUse", "PermissionRequest", "PostToolUse", "Stop"]:
            assert expected in names, names
        status, session = node.call("GET", f"/v1/sessions/{session_id}")
        assert (status, session["status"]) == (200, "ended"), session
    # The node the hooks reached sent them on; the owner did the work.
    assert cluster.owner_of(session_id) == "node-2"
    assert metric(reached, "orchestrator_forwarded_requests_total") > 0
    assert metric(owner, "orchestrator_forwarded_requests_total") == 0
