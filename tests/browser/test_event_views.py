"""What the timeline says about a Claude Code session, in Chromium: each event in one line,
and expanded as its kind reads best. The events are a real session, recorded from the real
Claude Code CLI through `orchestrator hook` (tests/fixtures/claude_code_session.json): a
Write, a Read, an Edit, a failing and a passing Bash, then its answer."""
import json
import os
import time

from playwright.sync_api import expect

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "claude_code_session.json")


def load_session(server, sid):
    events = json.load(open(FIXTURE))
    status, body = server.call("POST", f"/v1/sessions/{sid}/events", {"events": events})
    assert status == 201, body
    return events


def row(page, seq):
    return page.locator(f'#timeline tr[data-seq="{seq}"]')


def test_each_event_says_what_happened_in_one_line(make_server, tab):
    server = make_server()
    load_session(server, "cc-1")
    page = tab(server.base + "/#/session/cc-1")
    expect(page.locator("#timeline tbody tr")).to_have_count(22)
    summaries = {
        2: "“write some notes and check them”",
        3: "Write: notes.md",
        6: "Read: notes.md",
        9: "Edit: notes.md",
        12: "Bash: ls -1 && false",
        13: "Bash: ls -1 && false — failed: Exit code 1",
        16: "Bash: wc -l notes.md",
        21: "All done: notes written and checked.",
        22: "ended: other",
    }
    for seq, text in summaries.items():
        expect(row(page, seq).locator("summary.summary")).to_have_text(text)


def test_expanded_tool_uses_read_as_their_kind(make_server, tab):
    server = make_server()
    load_session(server, "cc-2")
    page = tab(server.base + "/#/session/cc-2")
    expect(page.locator("#timeline tbody tr")).to_have_count(22)

    bash = row(page, 16)
    bash.locator("summary.summary").click()
    expect(bash.locator("pre.command")).to_have_text("wc -l notes.md")
    expect(bash.get_by_text("Count lines", exact=True)).to_be_visible()
    expect(bash.locator("pre.block").nth(1)).to_have_text("4 notes.md")
    expect(bash.locator(".exit.ok")).to_have_text("0")

    failed = row(page, 13)
    failed.locator("summary.summary").click()
    expect(failed.locator(".exit.failed")).to_have_text("1")

    edit = row(page, 10)
    edit.locator("summary.summary").click()
    expect(edit.locator(".diff .removed")).to_have_text("-second line\n")
    expect(edit.locator(".diff .added")).to_have_text("+second line, edited\n")

    write = row(page, 3)
    write.locator("summary.summary").click()
    expect(write.locator("pre.block")).to_contain_text("first line\nsecond line")

    read = row(page, 7)
    read.locator("summary.summary").click()
    expect(read.get_by_text("5 of 5 lines", exact=True)).to_be_visible()

    # The raw JSON stays one click away, with copy.
    read.get_by_text("raw JSON").click()
    expect(read.locator("details.raw pre")).to_contain_text('"tool_name": "Read"')
    read.get_by_role("button", name="Copy").click()
    expect(read.get_by_role("button", name="Copied")).to_be_visible()


def test_sessions_have_a_name_a_project_and_a_state_that_follows_the_events(make_server, tab):
    server = make_server()
    load_session(server, "cc-done")
    page = tab(server.base + "/")
    done = page.locator('tr[data-session="cc-done"]')
    expect(done.get_by_role("link", name="write some notes and check them")).to_be_visible()
    expect(done.locator("td.project")).to_contain_text("acme")
    expect(done.locator("td.project")).to_have_attribute("title", "/home/dev/acme")
    expect(done.locator("td.state")).to_have_text("ended")

    # A live session moves through its states as its events arrive.
    def hook(name, **data):
        data.update(cwd="/home/dev/widget", session_id="cc-live")
        status, body = server.call("POST", "/v1/sessions/cc-live/events",
                                   {"event_type": name, "timestamp": "2026-12-05T10:00:00Z", "data": data})
        assert status == 201, body

    hook("UserPromptSubmit", prompt="add a login page")
    live = page.locator('tr[data-session="cc-live"]')
    expect(live.locator("td.state")).to_have_text("working")
    expect(live.get_by_role("link", name="add a login page")).to_be_visible()
    hook("PermissionRequest", tool_name="Bash", tool_input={"command": "npm install"})
    expect(live.locator("td.state")).to_have_text("waiting for you")
    hook("PostToolUse", tool_name="Bash", tool_input={"command": "npm install"})
    expect(live.locator("td.state")).to_have_text("working")
    hook("Stop", last_assistant_message="The login page is in.")
    expect(live.locator("td.state")).to_have_text("stopped")


def test_the_conversation_view_reads_as_prompts_tool_calls_and_replies(make_server, tab):
    server = make_server()
    load_session(server, "cc-talk")
    # A message sent from the dashboard and delivered at a Stop appears where it was given.
    server.call("POST", "/v1/sessions/cc-talk/commands", {"payload": {"prompt": "now the changelog"}})
    def stop(said, active):
        return {"session_id": "cc-talk", "hook_event_name": "Stop", "stop_hook_active": active,
                "cwd": "/home/dev/acme", "last_assistant_message": said}

    answer = server.call("POST", "/v1/hooks/claude-code", stop("Anything else?", False))[1]
    assert answer["reason"] == "now the changelog"
    assert server.call("POST", "/v1/hooks/claude-code", stop("The changelog is written.", True))[0] == 200
    page = tab(server.base + "/#/session/cc-talk")
    expect(page.locator("#timeline tbody tr")).to_have_count(24)
    page.get_by_role("link", name="Conversation").click()
    turns = page.locator("#conversation .turn")
    expect(turns).to_have_count(5)
    expect(turns.nth(0)).to_contain_text("write some notes and check them")
    expect(turns.nth(1)).to_contain_text("All done: notes written and checked.")
    expect(turns.nth(2)).to_contain_text("Anything else?")
    expect(turns.nth(3)).to_contain_text("now the changelog")
    expect(turns.nth(3)).to_have_class("turn user sent")
    expect(turns.nth(4)).to_contain_text("The changelog is written.")
    tools = page.locator("#conversation .tool")
    expect(tools).to_have_text(["Write: notes.md", "Read: notes.md", "Edit: notes.md",
                                "Bash: ls -1 && false — failed: Exit code 1", "Bash: wc -l notes.md"])
    # The tool calls sit between the prompt and the reply.
    texts = page.locator("#conversation > li").all_inner_texts()
    assert "Write: notes.md" in texts[1] and "All done" in texts[6], texts
    # The view is in the URL: a reload keeps it.
    page.reload()
    expect(page.locator("#conversation .turn")).to_have_count(5)
    expect(page.get_by_role("link", name="Conversation")).to_have_attribute("aria-current", "page")


def test_a_session_of_200k_events_opens_with_its_newest_and_pages_back(make_server, tab):
    server = make_server()
    total = 200_000
    for start in range(0, total, 1000):
        batch = [{"event_type": "tool_use", "timestamp": "2026-12-05T10:00:00Z",
                  "data": {"n": n, "tool_name": "Bash", "cwd": "/w"}} for n in range(start, start + 1000)]
        status, body = server.call("POST", "/v1/sessions/huge/events", {"events": batch})
        assert status == 201, body
    started = time.monotonic()
    page = tab(server.base + "/#/session/huge")
    rows = page.locator("#timeline tbody tr")
    expect(rows).to_have_count(500, timeout=20_000)
    # Reported, not asserted: speed is for benchmarks.
    print(f"a 200k-event session opened in {time.monotonic() - started:.2f} s")
    # The newest first page: seq 199501..200000, and a way back.
    assert rows.first.get_attribute("data-seq") == "199501"
    assert rows.last.get_attribute("data-seq") == "200000"
    older = page.get_by_role("button", name="Show older events (199500 before these)")
    older.click()
    expect(rows).to_have_count(1000)
    assert rows.first.get_attribute("data-seq") == "199001"
    # Live events still arrive at the end.
    server.call("POST", "/v1/sessions/huge/events", {"event_type": "tool_use", "timestamp": "2026-12-05T10:00:00Z", "data": {"n": "live"}})
    expect(rows).to_have_count(1001)
    assert rows.last.get_attribute("data-seq") == "200001"


def test_subagents_are_shown_under_their_session(make_server, tab):
    server = make_server()

    def hook(name, **data):
        data.update(session_id="cc-sub", cwd="/home/dev/acme")
        status, body = server.call("POST", "/v1/sessions/cc-sub/events",
                                   {"event_type": name, "timestamp": "2026-12-05T10:00:00Z", "data": data})
        assert status == 201, body

    hook("UserPromptSubmit", prompt="review the change")
    hook("SubagentStart", agent_id="agent-1", agent_type="code-reviewer")
    hook("PreToolUse", agent_id="agent-1", agent_type="code-reviewer", tool_name="Read",
         tool_input={"file_path": "/home/dev/acme/src/lib.rs"}, tool_use_id="toolu_1")
    page = tab(server.base + "/#/session/cc-sub")
    reviewer = page.locator('#subagents li[data-agent="agent-1"]')
    expect(reviewer).to_contain_text("code-reviewer")
    expect(reviewer).to_have_attribute("data-state", "running")
    expect(page.locator('#timeline tr[data-seq="3"] .badge.agent')).to_have_text("code-reviewer")
    hook("SubagentStop", agent_id="agent-1", agent_type="code-reviewer",
         last_assistant_message="Two issues: an unwrap on user input, and a missing test.")
    expect(reviewer).to_have_attribute("data-state", "finished")
    expect(reviewer).to_contain_text("3 events")
    expect(reviewer.locator(".said")).to_have_text("Two issues: an unwrap on user input, and a missing test.")
    page.get_by_role("link", name="Conversation").click()
    expect(page.locator("#conversation .turn.agent")).to_contain_text("Subagent code-reviewer")


def test_session_filters_live_in_the_url(make_server, tab):
    server = make_server()
    load_session(server, "cc-done")

    def hook(sid, name, **data):
        data.update(cwd=f"/home/dev/{sid}-repo", session_id=sid)
        status, body = server.call("POST", f"/v1/sessions/{sid}/events",
                                   {"event_type": name, "timestamp": "2026-12-05T10:00:00Z", "data": data})
        assert status == 201, body

    hook("asks", "UserPromptSubmit", prompt="deploy the docs")
    hook("asks", "PermissionRequest", tool_name="Bash", tool_input={"command": "make deploy"})
    hook("works", "UserPromptSubmit", prompt="refactor the parser")
    page = tab(server.base + "/")
    rows = page.locator("#sessions tbody tr")
    expect(rows).to_have_count(3)
    page.get_by_label("State").select_option("waiting for you")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-session", "asks")
    assert "state=waiting+for+you" in page.url
    page.get_by_label("State").select_option("")
    page.get_by_label("Project").select_option("acme")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-session", "cc-done")
    page.get_by_label("Project").select_option("")
    page.get_by_label("Find").fill("PARSER")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-session", "works")
    # The address carries the view: a reload, or a shared link, opens it the same.
    shared = page.url
    assert "find=PARSER" in shared
    other = tab(shared)
    expect(other.locator("#sessions tbody tr")).to_have_count(1)
    expect(other.get_by_label("Find")).to_have_value("PARSER")
    # A timeline's event type too.
    page.goto(server.base + "/#/session/cc-done?type=PostToolUse")
    expect(page.locator("#timeline tbody tr")).to_have_count(4)
    expect(page.get_by_label("Event type")).to_have_value("PostToolUse")
