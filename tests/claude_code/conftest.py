"""Fixtures of the Claude Code end-to-end tests: the real `claude` CLI (npm
`@anthropic-ai/claude-code`, pinned in scripts/claude-code-test) in a throwaway HOME and project
with the hooks `orchestrator hook install` writes, talking to a scripted Messages API stand-in
on loopback, and the real `orchestrator` binary on a fresh database of each backend.

Run by scripts/claude-code-test; by hand:
    ORCH_BINARY=target/debug/orchestrator ORCH_CLAUDE=target/claude-code/node_modules/.bin/claude \\
        target/pytest-venv/bin/pytest tests/claude_code
"""
import json
import os
import subprocess
import sys
import threading
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pysupport"))
from orchestrator_server import BINARY, make_server, wait_for  # noqa: E402,F401  (fixtures)
from messages_standin import MessagesStandIn  # noqa: E402

CLAUDE = os.path.abspath(os.environ.get("ORCH_CLAUDE", "target/claude-code/node_modules/.bin/claude"))


class ClaudeCode:
    """One user's machine: a HOME, a project with `.claude/settings.json`, and `claude -p`."""

    def __init__(self, root):
        self.home = root / "home"
        self.project = root / "project"
        self.settings = self.project / ".claude" / "settings.json"
        self.settings.parent.mkdir(parents=True)
        self.home.mkdir()
        # Claude Code starts in auto mode, which settles most permission prompts itself; the
        # default mode asks, so that the hooks see every prompt.
        self.write_settings({"permissions": {"defaultMode": "default"}})
        # A project the user has trusted (Claude Code ignores a project's allow rules until
        # then), as theirs would be.
        (self.home / ".claude.json").write_text(json.dumps(
            {"projects": {str(self.project): {"hasTrustDialogAccepted": True}}}))

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCH_", "ANTHROPIC_", "CLAUDE"))}
        env.update(HOME=str(self.home), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
                   ANTHROPIC_API_KEY="sk-ant-standin", DISABLE_AUTOUPDATER="1")
        env.update(extra)
        return env

    def read_settings(self):
        return json.loads(self.settings.read_text())

    def write_settings(self, settings):
        self.settings.write_text(json.dumps(settings, indent=2))

    def hook(self, *args, stdin=""):
        """Runs `orchestrator hook ARGS` as this user."""
        return subprocess.run([BINARY, "hook", *args], env=self.env(), input=stdin,
                              capture_output=True, text=True, timeout=120)

    def install(self, url, *args, transport="command"):
        """`hook install` into the project's settings; `transport="http"` makes Claude Code post
        to the server itself."""
        done = self.hook("install", "--settings", str(self.settings), "--url", url,
                         "--transport", transport, *args)
        assert done.returncode == 0, done.stderr
        return done

    def run(self, prompt, standin, session_id=None, resume=None, timeout=120):
        """`claude -p PROMPT` against the stand-in, in a new session (`session_id`, else a new
        id) or resuming one (`resume`): its JSON summary, with the session id."""
        if resume:
            session_args = ["--resume", resume]
        else:
            session_id = session_id or str(uuid.uuid4())
            session_args = ["--session-id", session_id]
        done = subprocess.run(
            [CLAUDE, "-p", prompt, "--output-format", "json", *session_args],
            cwd=self.project, env=self.env(ANTHROPIC_BASE_URL=standin.url),
            capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"claude exited {done.returncode}: {done.stdout}\n{done.stderr}"
        summary = json.loads(done.stdout)
        summary.setdefault("session_id", session_id)
        return summary


@pytest.fixture
def claude(tmp_path):
    return ClaudeCode(tmp_path)


@pytest.fixture
def standin():
    """make(script): a Messages API stand-in playing `script`, closed after the test."""
    made = []

    def make(script):
        made.append(MessagesStandIn(script))
        return made[-1]

    yield make
    for s in made:
        s.close()


def events_of(server, session_id):
    status, body = server.call("GET", f"/v1/sessions/{session_id}/events?limit=1000")
    assert status == 200, body
    return body["events"]


def approvals_of(server, session_id):
    status, body = server.call("GET", f"/v1/sessions/{session_id}/interactions")
    if status == 404:
        return []
    assert status == 200, body
    return [i for i in body["interactions"] if i["kind"] == "approval"]


class Decider:
    """A person at the dashboard, in a thread: decides the approvals of one session as they
    appear, each with the next of `decisions` (("resolve", response) or ("reject", reason));
    records every approval it saw."""

    def __init__(self, server, session_id, decisions):
        self.server, self.session_id = server, session_id
        self.decisions = list(decisions)
        self.seen = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set() and self.decisions:
            for approval in approvals_of(self.server, self.session_id):
                if approval["status"] != "pending" or approval["interaction_id"] in {a["interaction_id"] for a in self.seen}:
                    continue
                self.seen.append(approval)
                action, argument = self.decisions.pop(0)
                path = f"/v1/sessions/{self.session_id}/interactions/{approval['interaction_id']}/{action}"
                body = {"response": argument} if action == "resolve" else {"reason": argument}
                status, answer = self.server.call("POST", path, body)
                assert status == 200, answer
                break
            self.stop.wait(0.05)

    def close(self):
        self.stop.set()
        self.thread.join(5)
