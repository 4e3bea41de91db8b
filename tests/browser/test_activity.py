"""The activity view across sessions, in Chromium: the newest events of every session
interleaved, the events-per-minute chart, new sessions announced, all live; search and filters
served by the API (`/v1/events`) and kept in the URL."""
import json
import os

from playwright.sync_api import expect

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "claude_code_session.json")


def hook(server, sid, name, **data):
    data.setdefault("cwd", f"/home/dev/{sid}")
    status, body = server.call("POST", f"/v1/sessions/{sid}/events",
                               {"event_type": name, "timestamp": "2026-12-05T10:00:00Z", "data": data})
    assert status == 201, body


def rows(page):
    return page.locator("#activity tbody tr")


def test_events_of_every_session_interleave_live_with_the_chart_and_new_sessions(make_server, tab):
    server = make_server()
    hook(server, "alpha", "UserPromptSubmit", prompt="tidy the README")
    hook(server, "beta", "PreToolUse", tool_name="Bash", tool_input={"command": "cargo build"})
    page = tab(server.base + "/#/activity")
    expect(rows(page)).to_have_count(2)
    # Newest first, each row saying what happened and whose it is.
    expect(rows(page).nth(0)).to_have_attribute("data-session", "beta")
    expect(rows(page).nth(0).locator("summary.summary")).to_have_text("Bash: cargo build")
    expect(rows(page).nth(1).locator("td.session")).to_have_text("tidy the README")
    chart = page.locator(".activity-chart svg")
    expect(chart).to_have_attribute("aria-label", "Events per minute over the last 15 minutes: 2 in all, at most 2 in a minute")
    expect(page.locator(".legend li")).to_have_count(2)

    # Live: a new session is announced, its events join the list and the chart.
    hook(server, "gamma", "SessionStart", source="startup", model="claude-opus-5")
    hook(server, "gamma", "UserPromptSubmit", prompt="write the changelog")
    hook(server, "alpha", "PostToolUse", tool_name="Edit",
         tool_input={"file_path": "/home/dev/alpha/README.md", "old_string": "a", "new_string": "b"})
    expect(rows(page)).to_have_count(5)
    expect(page.locator("#announced")).to_contain_text("New: write the changelog")
    expect(rows(page).nth(0).locator("summary.summary")).to_have_text("Edit: README.md")
    expect(chart).to_have_attribute("aria-label", "Events per minute over the last 15 minutes: 5 in all, at most 5 in a minute")
    expect(page.locator(".legend li")).to_have_count(3)
    # The chart's window.
    page.get_by_role("button", name="60 min").click()
    expect(chart).to_have_attribute("aria-label", "Events per minute over the last 60 minutes: 5 in all, at most 5 in a minute")
    shots = os.environ.get("ORCH_SCREENSHOTS", "target/browser-screenshots")
    os.makedirs(shots, exist_ok=True)
    page.screenshot(path=os.path.join(shots, "activity-view.png"), full_page=True)
    # A row opens its session.
    rows(page).nth(0).locator("td.session a").click()
    expect(page.locator("#timeline tbody tr")).to_have_count(2)


def test_search_and_filters_are_served_by_the_api_and_live_in_the_url(make_server, tab):
    server = make_server()
    events = json.load(open(FIXTURE))
    assert server.call("POST", "/v1/sessions/recorded/events", {"events": events})[0] == 201
    hook(server, "other", "PreToolUse", tool_name="Bash", tool_input={"command": "wc -l notes.md.bak"})
    hook(server, "other", "UserPromptSubmit", prompt="count the notes lines")
    page = tab(server.base + "/#/activity")
    expect(rows(page)).to_have_count(24)

    page.get_by_label("Search").fill("wc -l notes.md")
    # The recorded session's PreToolUse and PostToolUse of `wc -l notes.md`, and the other
    # session's command (a prefix of its last word).
    expect(rows(page)).to_have_count(3)
    assert "q=wc+-l+notes.md" in page.url
    page.get_by_label("Session", exact=True).select_option("other")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first.locator("summary.summary")).to_have_text("Bash: wc -l notes.md.bak")
    page.get_by_label("Session", exact=True).select_option("")
    # A project is a working directory; the other session works in /home/dev/other.
    page.get_by_label("Project").select_option(label="other")
    expect(rows(page)).to_have_count(1)
    assert "project=%2Fhome%2Fdev%2Fother" in page.url, page.url
    page.get_by_label("Project").select_option("")
    page.get_by_label("Tool").select_option("Bash")
    page.get_by_label("Event type").select_option("PostToolUse")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_have_attribute("data-session", "recorded")
    # Text that matches nothing says so.
    page.get_by_label("Search").fill("no such words")
    expect(page.get_by_text("No event matches.")).to_be_visible()
    page.get_by_label("Search").fill("notes")

    # The address carries the view: a second tab on it shows the same.
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first.locator("summary.summary")).to_have_text("Bash: wc -l notes.md")
    shared = page.url
    for part in ("q=notes", "tool=Bash", "type=PostToolUse"):
        assert part in shared, shared
    other = tab(shared)
    expect(other.locator("#activity tbody tr")).to_have_count(1)
    expect(other.get_by_label("Search")).to_have_value("notes")
    expect(other.get_by_label("Tool")).to_have_value("Bash")
    # A time range: nothing is older than a day, and everything is within it.
    other.get_by_label("When").select_option("1440")
    expect(other.locator("#activity tbody tr")).to_have_count(1)
    assert "range=1440" in other.url


def test_older_events_page_in(make_server, tab):
    server = make_server()
    batch = [{"event_type": "PreToolUse", "timestamp": "2026-12-05T10:00:00Z",
              "data": {"tool_name": "Bash", "tool_input": {"command": f"step {n}"}}} for n in range(120)]
    assert server.call("POST", "/v1/sessions/long/events", {"events": batch})[0] == 201
    page = tab(server.base + "/#/activity")
    expect(rows(page)).to_have_count(50)
    expect(rows(page).first.locator("summary.summary")).to_have_text("Bash: step 119")
    page.get_by_role("button", name="Show older events").click()
    expect(rows(page)).to_have_count(100)
    page.get_by_role("button", name="Show older events").click()
    expect(rows(page)).to_have_count(120)
    expect(rows(page).last.locator("summary.summary")).to_have_text("Bash: step 0")
    expect(page.get_by_role("button", name="Show older events")).to_have_count(0)
