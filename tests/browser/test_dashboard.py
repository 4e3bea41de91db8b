"""The dashboard in a real headless Chromium against the real server: live sessions and
timelines, seq order for events sent out of order, two tabs racing one approval, a server
restart, and scopes kept apart with auth on."""
import os
import re
import threading
import time

from playwright.sync_api import expect

from conftest import SCREENSHOTS

TS = "2026-11-30T10:00:00Z"


def event(event_type, **fields):
    return dict(event_type=event_type, timestamp=TS, **fields)


def test_sessions_and_events_appear_live(make_server, tab):
    server = make_server()
    page = tab(server.base + "/")
    expect(page.locator("#live")).to_have_text("live")
    assert server.call("PUT", "/v1/sessions/live-1", {"metadata": {"repo": "acme"}})[0] == 201
    row = page.locator('tr[data-session="live-1"]')
    expect(row.get_by_role("link", name="live-1")).to_be_visible()
    for n in range(3):
        assert server.call("POST", "/v1/sessions/live-1/events", event("tool_use", data={"n": n}))[0] == 201
    expect(row.locator("td.events")).to_have_text("3")

    row.get_by_role("link", name="live-1").click()
    expect(page.locator("#timeline tbody tr")).to_have_count(3)
    server.call("POST", "/v1/sessions/live-1/events", event("session_end"))
    expect(page.locator("#timeline tbody tr")).to_have_count(4)
    expect(page.locator("#timeline tbody tr").last).to_contain_text("session_end")
    # The event-type filter, and data that expands.
    page.get_by_label("Event type").select_option("session_end")
    expect(page.locator("#timeline tbody tr")).to_have_count(1)
    page.get_by_label("Event type").select_option("")
    first = page.locator("#timeline tbody tr").first
    first.locator("summary.summary").click()
    first.get_by_text("raw JSON").click()
    expect(first.locator("details.raw pre")).to_contain_text('"n": 0')


def test_the_timeline_is_in_seq_order_for_events_sent_out_of_order(make_server, tab):
    server = make_server(ORCH_REORDER_GAP_MS=400)
    server.call("PUT", "/v1/sessions/ord", {})
    page = tab(server.base + "/#/session/ord")
    expect(page.locator("#live")).to_have_text("live")
    # Sequence 2 and 1 arrive before 0: their requests wait for the gap to fill.
    waiting = [threading.Thread(target=server.call, args=(
        "POST", "/v1/sessions/ord/events", event(f"e{s}", sequence=s))) for s in (2, 1)]
    for thread in waiting:
        thread.start()
        time.sleep(0.05)
    server.call("POST", "/v1/sessions/ord/events", event("e0", sequence=0))
    for thread in waiting:
        thread.join()
    rows = page.locator("#timeline tbody tr")
    expect(rows).to_have_count(3)
    assert [rows.nth(i).get_attribute("data-sequence") for i in range(3)] == ["0", "1", "2"]
    assert [int(rows.nth(i).get_attribute("data-seq")) for i in range(3)] == [1, 2, 3]
    # A gap that is given up: 4 is applied after the wait, 3 arrives late and is flagged.
    server.call("POST", "/v1/sessions/ord/events", event("e4", sequence=4))
    server.call("POST", "/v1/sessions/ord/events", event("e3", sequence=3))
    expect(rows).to_have_count(5)
    late = page.locator('#timeline tr[data-sequence="3"]')
    expect(late.locator(".flag")).to_have_text("out of order")
    seqs = [int(rows.nth(i).get_attribute("data-seq")) for i in range(5)]
    assert seqs == sorted(seqs)


def test_two_tabs_racing_one_approval_make_one_decision(make_server, tab):
    server = make_server()
    server.call("PUT", "/v1/sessions/race", {})
    first = tab(server.base + "/#/approvals", notifications=True)
    second = tab(server.base + "/#/approvals")
    for page, name in ((first, "Ana"), (second, "Bo")):
        expect(page.locator("#live")).to_have_text("live")
        # Each person says who they are once; the browser keeps it.
        page.get_by_label("Your name, shown with your decisions").fill(name)
    status, _ = server.call("POST", "/v1/sessions/race/interactions", {
        "interaction_id": "perm-1", "kind": "approval", "timeout_ms": 600000,
        "payload": {"tool_name": "Bash", "tool_input": {"command": "rm -rf build"}}})
    assert status == 201
    for page in (first, second):
        card = page.locator('article[data-key="race/perm-1"]')
        expect(card).to_contain_text("rm -rf build")
        expect(card).to_contain_text("expires in")
        expect(page.locator("#approval-count")).to_have_text("1")
    # The tab that allowed notifications got one for the new approval.
    shown = first.evaluate("window.shownNotifications")
    assert shown == [{"title": "Approval needed", "body": "Bash: rm -rf build"}], shown
    # Both decide at once: the clicks are dispatched back to back, without waiting for either
    # answer (dispatch_event does not wait for the button to stay visible).
    second.get_by_role("textbox", name="Reason for rejecting").fill("not on main")
    # The first tab decides from the keyboard (focus the button, press Enter), right after the
    # second tab's click; neither waits for the other's answer.
    first.get_by_role("button", name="Approve").focus()
    second.locator('article[data-key="race/perm-1"] button', has_text="Reject").dispatch_event("click")
    first.keyboard.press("Enter")

    status, interaction = server.call("GET", "/v1/sessions/race/interactions/perm-1")
    deadline = time.time() + 10
    while interaction["status"] == "pending" and time.time() < deadline:
        time.sleep(0.05)
        status, interaction = server.call("GET", "/v1/sessions/race/interactions/perm-1")
    assert interaction["status"] == "completed"
    outcome = interaction["outcome"]
    assert outcome in ("approved", "rejected")
    _, listing = server.call("GET", "/v1/notifications?session_id=race")
    completed = [n for n in listing["notifications"] if n["type"] == "interaction.completed"]
    assert len(completed) == 1, completed
    winner, loser = (first, second) if outcome == "approved" else (second, first)
    word = "Approved" if outcome == "approved" else "Rejected"
    for page in (first, second):
        card = page.locator('article[data-key="race/perm-1"]')
        expect(card).to_have_attribute("data-outcome", outcome)
        expect(card.get_by_role("button", name="Approve")).to_be_hidden()
        expect(page.locator("#approval-count")).to_have_text("")
    name = "Ana" if winner is first else "Bo"
    assert interaction["decided_by"] == name, interaction
    expect(winner.locator('article[data-key="race/perm-1"] .status')).to_contain_text(f"{word} by {name} here")
    expect(loser.locator('article[data-key="race/perm-1"] .status')).to_contain_text(
        f"{word} by {name} in another tab")
    # Who decided is history too: after a reload, and in the name box the name stays.
    loser.reload()
    expect(loser.locator('article[data-key="race/perm-1"] .status')).to_contain_text(f"{word} by {name}")
    expect(loser.get_by_label("Your name, shown with your decisions")).to_have_value(
        "Bo" if loser is second else "Ana")


def test_the_page_reconnects_after_a_restart_without_gaps_or_repeats(make_server, tab):
    server = make_server()
    server.call("PUT", "/v1/sessions/rs", {})
    page = tab(server.base + "/#/session/rs")
    expect(page.locator("#live")).to_have_text("live")
    for n in range(5):
        server.call("POST", "/v1/sessions/rs/events", event("before", data={"n": n}))
    expect(page.locator("#timeline tbody tr")).to_have_count(5)
    server.stop()
    expect(page.locator("#live")).to_have_text("reconnecting")
    server.start()
    expect(page.locator("#live")).to_have_text("live", timeout=15000)
    for n in range(5):
        server.call("POST", "/v1/sessions/rs/events", event("after", data={"n": n}))
    rows = page.locator("#timeline tbody tr")
    expect(rows).to_have_count(10)
    _, stored = server.call("GET", "/v1/sessions/rs/events?limit=1000")
    shown = [int(rows.nth(i).get_attribute("data-seq")) for i in range(10)]
    assert shown == [e["seq"] for e in stored["events"]]


def test_with_auth_a_page_sees_only_its_scope(make_server, tab):
    server = make_server(ORCH_API_KEYS="key-alpha:alpha,key-beta:beta")
    pages = {}
    for scope in ("alpha", "beta"):
        page = tab(server.base + "/")
        expect(page.get_by_role("dialog")).to_be_visible()
        page.get_by_label("API key").fill(f"key-{scope}")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#live")).to_have_text("live")
        pages[scope] = page
    # Both scopes have a session "shared"; each has one of its own.
    for scope in ("alpha", "beta"):
        key = f"key-{scope}"
        server.call("PUT", "/v1/sessions/shared", {}, key=key)
        server.call("PUT", f"/v1/sessions/only-{scope}", {}, key=key)
        for n in range(2 if scope == "alpha" else 4):
            server.call("POST", "/v1/sessions/shared/events", event("x", data={"n": n}), key=key)
    for scope, other, count in (("alpha", "beta", "2"), ("beta", "alpha", "4")):
        page = pages[scope]
        expect(page.locator(f'tr[data-session="only-{scope}"]')).to_be_visible()
        expect(page.locator('tr[data-session="shared"] td.events')).to_have_text(count)
        expect(page.locator(f'tr[data-session="only-{other}"]')).to_have_count(0)
    # A page with a wrong key is asked again and shows nothing.
    page = tab(server.base + "/")
    page.get_by_label("API key").fill("nope")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("That key was not accepted.")).to_be_visible()
    expect(page.locator("#sessions tbody tr")).to_have_count(0)


def test_a_message_to_the_agent_is_queued_then_shown_delivered(make_server, tab):
    server = make_server()
    assert server.call("PUT", "/v1/sessions/steer-1", {"metadata": {}})[0] == 201
    page = tab(server.base + "/#/session/steer-1")
    box = page.get_by_label("Send the agent a message")
    box.fill("now add a test for it")
    page.get_by_role("button", name="Send").click()
    message = page.locator("#messages li")
    expect(message).to_have_count(1)
    expect(message.locator(".prompt")).to_have_text("now add a test for it")
    expect(message.locator(".state")).to_have_text("waiting for the agent's next stop")
    expect(box).to_have_value("")
    status, body = server.call("GET", "/v1/sessions/steer-1/interactions")
    [command] = body["interactions"]
    assert (command["kind"], command["payload"]) == ("command", {"prompt": "now add a test for it"})
    # The agent stops: its Stop hook (here Claude Code's HTTP hook) takes the message.
    stop = {"session_id": "steer-1", "hook_event_name": "Stop", "stop_hook_active": False,
            "cwd": "/home/dev/acme", "transcript_path": "/tmp/t.jsonl"}
    status, answer = server.call("POST", "/v1/hooks/claude-code", stop)
    assert (status, answer) == (200, {"decision": "block", "reason": "now add a test for it"})
    expect(message.locator(".state")).to_contain_text("delivered")
    # A message being typed survives live updates.
    box.fill("then update the README")
    server.call("POST", "/v1/sessions/steer-1/events", event("tool_use", data={"n": 1}))
    expect(page.locator("#timeline tbody tr")).to_have_count(2)
    expect(box).to_have_value("then update the README")


def test_always_allow_offers_the_suggestions_and_history_survives_a_reload(make_server, tab):
    server = make_server()
    server.call("PUT", "/v1/sessions/always", {})
    suggestion = {"type": "addRules", "rules": [{"toolName": "Bash", "ruleContent": "git init *"}],
                  "behavior": "allow", "destination": "localSettings"}
    status, _ = server.call("POST", "/v1/sessions/always/interactions", {
        "interaction_id": "approval-1", "kind": "approval", "timeout_ms": 600000,
        "payload": {"tool_name": "Bash", "tool_input": {"command": "git init repo"},
                    "hook_event_name": "PermissionRequest", "permission_suggestions": [suggestion]}})
    assert status == 201
    page = tab(server.base + "/#/approvals")
    card = page.locator('article[data-key="always/approval-1"]')
    always = card.get_by_role(
        "button", name="Approve and always allow Bash(git init *) in this project (local settings)")
    always.click()
    expect(card).to_have_attribute("data-outcome", "approved")
    _, interaction = server.call("GET", "/v1/sessions/always/interactions/approval-1")
    assert interaction["result"]["updated_permissions"] == [suggestion], interaction
    expect(card.locator(".status")).to_have_text("Approved here")
    # After a reload the decision is history, not gone.
    page.reload()
    card = page.locator('article[data-key="always/approval-1"]')
    expect(card).to_have_attribute("data-outcome", "approved")
    expect(card.locator(".status")).to_contain_text("Approved")
    expect(card.get_by_role("button", name="Approve", exact=True)).to_be_hidden()


def open_approvals(server, count):
    server.call("PUT", "/v1/sessions/keys", {})
    for n in range(count):
        status, _ = server.call("POST", "/v1/sessions/keys/interactions", {
            "interaction_id": f"perm-{n}", "kind": "approval", "timeout_ms": 600000,
            "payload": {"tool_name": "Bash", "cwd": "/home/dev/acme",
                        "tool_input": {"command": f"make step-{n}", "description": f"Step {n}"}}})
        assert status == 201


def test_the_keyboard_moves_approves_and_rejects(make_server, tab):
    server = make_server()
    open_approvals(server, 3)
    page = tab(server.base + "/#/approvals")
    cards = page.locator("#approvals .card")
    expect(cards).to_have_count(3)
    expect(cards.first).to_contain_text("/home/dev/acme")
    page.keyboard.press("j")
    expect(cards.nth(0)).to_be_focused()
    page.keyboard.press("j")
    expect(cards.nth(1)).to_be_focused()
    key = cards.nth(1).get_attribute("data-key")
    page.keyboard.press("a")
    expect(page.locator(f'article[data-key="{key}"]')).to_have_attribute("data-outcome", "approved")
    # The decided one moves down the list; the focus goes on to the next open request.
    focused = page.locator("#approvals .card:focus")
    expect(focused).to_have_attribute("data-status", "pending")
    next_key = focused.get_attribute("data-key")
    assert next_key != key
    # A reason typed in the card's box goes with r; typing there is not a shortcut.
    card = page.locator(f'article[data-key="{next_key}"]')
    card.get_by_role("textbox", name="Reason for rejecting").fill("not now, after the release")
    card.focus()
    page.keyboard.press("r")
    expect(card).to_have_attribute("data-outcome", "rejected")
    _, rejected = server.call("GET", f"/v1/sessions/keys/interactions/{next_key.split('/')[1]}")
    assert rejected["result"] == "not now, after the release", rejected
    _, listing = server.call("GET", "/v1/sessions/keys/interactions?status=pending")
    assert len(listing["interactions"]) == 1


def test_a_phone_can_approve(make_server, browser):
    server = make_server()
    open_approvals(server, 1)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(server.base + "/#/approvals")
        card = page.locator('article[data-key="keys/perm-0"]')
        expect(card).to_contain_text("make step-0")
        approve = card.get_by_role("button", name="Approve", exact=True)
        box = approve.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, box
        # Nothing is wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        os.makedirs(SCREENSHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SCREENSHOTS, "phone-approvals.png"), full_page=True)
        approve.tap()
        expect(card).to_have_attribute("data-outcome", "approved")
        page.goto(server.base + "/")
        expect(page.locator('tr[data-session="keys"]')).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=os.path.join(SCREENSHOTS, "phone-sessions.png"), full_page=True)
    finally:
        context.close()


def test_the_theme_follows_the_system_and_the_toggle(make_server, browser):
    server = make_server()
    context = browser.new_context(color_scheme="dark")
    try:
        page = context.new_page()
        page.goto(server.base + "/")
        background = lambda: page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        expect(page.locator("#theme")).to_have_text("Theme: auto")
        assert background() == "rgb(20, 21, 24)", background()
        page.get_by_role("button", name="Theme: auto").click()
        expect(page.locator("#theme")).to_have_text("Theme: light")
        assert background() == "rgb(250, 250, 250)", background()
        page.reload()
        expect(page.locator("#theme")).to_have_text("Theme: light")
        assert background() == "rgb(250, 250, 250)"
        page.get_by_role("button", name="Theme: light").click()
        expect(page.locator("#theme")).to_have_text("Theme: dark")
        assert background() == "rgb(20, 21, 24)"
        os.makedirs(SCREENSHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SCREENSHOTS, "dark-sessions.png"), full_page=True)
    finally:
        context.close()


def test_a_burst_across_many_sessions_ends_in_the_right_state(make_server, tab):
    server = make_server()
    page = tab(server.base + "/")
    expect(page.locator("#live")).to_have_text("live")
    reads = []
    page.on("request", lambda r: reads.append(r.url) if "/v1/sessions/" in r.url else None)

    def agent(n):
        for k in range(5):
            status, _ = server.call("POST", f"/v1/sessions/burst-{n}/events",
                                    event("tool_use", data={"k": k, "cwd": f"/w/p{n}"}))
            assert status == 201

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = page.locator("#sessions tbody tr")
    expect(rows).to_have_count(100)
    for n in (0, 42, 99):
        expect(page.locator(f'tr[data-session="burst-{n}"] td.events')).to_have_text("5")
    _, listing = server.call("GET", "/v1/notifications?limit=1000")
    # Reported, not asserted (it depends on timing): the page reads each session once per
    # batch of notifications, not once per notification.
    print(f"{len(listing['notifications'])} notifications, {len(reads)} session reads by the page")


def test_a_question_the_agent_asks_is_answered_in_the_page(make_server, tab):
    """Claude Code asks AskUserQuestion through its permission dialog, so its HTTP hook posts a
    PermissionRequest and waits; the answers picked in the page come back to it as the tool's
    new input, with `answers` (question → answer), which Claude Code takes as the user's."""
    import threading

    server = make_server()
    questions = [
        {"question": "Which database should the tests use?", "header": "Database", "multiSelect": False,
         "options": [{"label": "SQLite", "description": "embedded, no set-up"},
                     {"label": "PostgreSQL", "description": "as in production"}]},
        {"question": "Which checks should run?", "header": "Checks", "multiSelect": True,
         "options": [{"label": "fmt"}, {"label": "clippy"}, {"label": "tests"}]},
    ]
    ask = {"session_id": "asks", "hook_event_name": "PermissionRequest", "cwd": "/home/dev/acme",
           "transcript_path": "/tmp/t.jsonl", "permission_mode": "default",
           "tool_name": "AskUserQuestion", "tool_input": {"questions": questions}}
    answered = {}
    hook = threading.Thread(target=lambda: answered.update(
        zip(("status", "body"), server.call("POST", "/v1/hooks/claude-code?approve=AskUserQuestion", ask))))
    hook.start()
    page = tab(server.base + "/#/approvals")
    card = page.locator("#approvals .card").first
    expect(card.locator("h3")).to_have_text("A question from asks")
    expect(card.locator("fieldset.question")).to_have_count(2)
    # Every question needs an answer.
    card.get_by_label("PostgreSQL").check()
    card.get_by_role("button", name="Send answers").click()
    expect(card.get_by_role("alert")).to_have_text("Answer “Which checks should run?” first.")
    card.get_by_label("clippy").check()
    card.get_by_label("tests").check()
    card.get_by_label("Other:").nth(1).fill("the browser tests")
    shots = os.environ.get("ORCH_SCREENSHOTS", "target/browser-screenshots")
    os.makedirs(shots, exist_ok=True)
    page.screenshot(path=os.path.join(shots, "question-open.png"), full_page=True)
    card.get_by_role("button", name="Send answers").click()
    expect(card.locator(".status")).to_have_text(
        "Answered here: PostgreSQL; clippy, tests, the browser tests")
    expect(card.locator(".ask")).to_have_text(
        "Which database should the tests use?\nWhich checks should run?")
    hook.join(timeout=30)
    assert answered.get("status") == 200, answered
    decision = answered["body"]["hookSpecificOutput"]["decision"]
    assert decision["behavior"] == "allow"
    assert decision["updatedInput"] == {"questions": questions, "answers": {
        "Which database should the tests use?": "PostgreSQL",
        "Which checks should run?": "clippy, tests, the browser tests"}}


def test_a_sustained_500_events_a_second_across_100_sessions(make_server, tab):
    """100 agents each sending a batch of 5 events a second for 15 s (500 events/s), the
    sessions list and the activity view open in two tabs. The end state is asserted; the
    pages' main-thread time (Chromium's own TaskDuration) is reported, not asserted."""
    server = make_server()
    sessions_page = tab(server.base + "/")
    activity_page = tab(server.base + "/#/activity")
    for page in (sessions_page, activity_page):
        expect(page.locator("#live")).to_have_text("live")
    cdp = {}
    for name, page in (("sessions", sessions_page), ("activity", activity_page)):
        cdp[name] = page.context.new_cdp_session(page)
        cdp[name].send("Performance.enable")

    def busy(name):
        metrics = cdp[name].send("Performance.getMetrics")["metrics"]
        return next(m["value"] for m in metrics if m["name"] == "TaskDuration")

    before = {name: busy(name) for name in cdp}
    seconds = 15
    started = time.time()

    def agent(n):
        for second in range(seconds):
            batch = [event("PreToolUse", data={"tool_name": "Bash", "cwd": f"/w/p{n}",
                                               "tool_input": {"command": f"step {second}.{k}"}})
                     for k in range(5)]
            status, _ = server.call("POST", f"/v1/sessions/load-{n}/events", {"events": batch})
            assert status == 201
            time.sleep(max(0.0, started + second + 1 - time.time()))

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.time() - started
    rows = sessions_page.locator("#sessions tbody tr")
    expect(rows).to_have_count(100)
    for n in (0, 57, 99):
        expect(sessions_page.locator(f'tr[data-session="load-{n}"] td.events')).to_have_text(str(5 * seconds))
    expect(activity_page.locator(".activity-chart svg")).to_have_attribute(
        "aria-label", re.compile(f"^Events per minute over the last 15 minutes: {500 * seconds} in all"))
    for name in cdp:
        spent = busy(name) - before[name]
        print(f"{name} page: {spent:.2f} s of main-thread work in {took:.1f} s "
              f"({100 * spent / took:.0f} %) for {500 * seconds} events")
