"""Every view of the dashboard checked with axe-core (npm, pinned in scripts/browser-test),
injected into the page by Playwright: no serious or critical violations, in the light and
dark themes and on a phone. The checker is injected with the page's CSP bypassed in the test's
browser context only (the page itself allows no inline script)."""
import json
import os

import pytest
from playwright.sync_api import expect

AXE = os.environ.get("ORCH_AXE", "target/axe-core/node_modules/axe-core/axe.min.js")
FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "claude_code_session.json")


def serious_violations(page):
    page.add_script_tag(path=AXE)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]


def populate(server):
    events = json.load(open(FIXTURE))
    assert server.call("POST", "/v1/sessions/cc-a11y/events", {"events": events})[0] == 201
    server.call("PUT", "/v1/sessions/asks", {})
    for n, command in enumerate(["git push origin main", "rm -rf build"]):
        status, _ = server.call("POST", "/v1/sessions/asks/interactions", {
            "interaction_id": f"perm-{n}", "kind": "approval", "timeout_ms": 600000,
            "payload": {"tool_name": "Bash", "cwd": "/home/dev/acme", "hook_event_name": "PermissionRequest",
                        "tool_input": {"command": command, "description": "a step"},
                        "permission_suggestions": [{"type": "addRules", "behavior": "allow",
                                                    "destination": "localSettings",
                                                    "rules": [{"toolName": "Bash", "ruleContent": "git push:*"}]}]}})
        assert status == 201
    server.call("POST", "/v1/sessions/asks/interactions/perm-1/reject", {"reason": "not today"})
    status, _ = server.call("POST", "/v1/sessions/asks/interactions", {
        "interaction_id": "question-1", "kind": "approval", "timeout_ms": 600000,
        "payload": {"tool_name": "AskUserQuestion", "hook_event_name": "PermissionRequest",
                    "tool_input": {"questions": [
                        {"question": "Which database?", "header": "Database", "multiSelect": False,
                         "options": [{"label": "SQLite", "description": "embedded"}, {"label": "PostgreSQL"}]},
                        {"question": "Which checks?", "header": "Checks", "multiSelect": True,
                         "options": [{"label": "fmt"}, {"label": "clippy"}]}]}}})
    assert status == 201
    server.call("POST", "/v1/sessions/cc-a11y/commands", {"payload": {"prompt": "now the changelog"}})


VIEWS = {
    "sessions": ("/", "#sessions tbody tr"),
    "session": ("/#/session/cc-a11y", "#timeline tbody tr"),
    "conversation": ("/#/session/cc-a11y/conversation", "#conversation li"),
    "approvals": ("/#/approvals", "#approvals .card"),
    "activity": ("/#/activity", "#activity tbody tr"),
}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_each_view_has_no_serious_accessibility_violations(make_server, browser, view, scheme):
    server = make_server()
    populate(server)
    context = browser.new_context(bypass_csp=True, color_scheme=scheme, viewport={"width": 1200, "height": 800})
    try:
        page = context.new_page()
        path, ready = VIEWS[view]
        page.goto(server.base + path)
        expect(page.locator(ready).first).to_be_visible()
        if view == "session":
            # Expanded rows too: a diff, a command with its output, the raw JSON.
            for seq in (10, 16):
                page.locator(f'#timeline tr[data-seq="{seq}"] summary.summary').click()
            page.locator('#timeline tr[data-seq="16"]').get_by_text("raw JSON").click()
        assert serious_violations(page) == []
    finally:
        context.close()


def test_the_phone_layout_and_the_sign_in_dialog_have_no_serious_violations(make_server, browser):
    server = make_server(ORCH_API_KEYS="key-alpha:alpha")
    context = browser.new_context(bypass_csp=True, viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(server.base + "/#/approvals")
        expect(page.locator("#key-dialog")).to_be_visible()
        assert serious_violations(page) == []
        page.get_by_label("API key").fill("key-alpha")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#live")).to_have_text("live")
        assert serious_violations(page) == []
    finally:
        context.close()


def test_the_check_finds_what_it_should(make_server, browser):
    # The checker itself: a button without a name and an image without text are reported.
    server = make_server()
    context = browser.new_context(bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(server.base + "/")
        expect(page.locator("#live")).to_have_text("live")
        page.evaluate("""document.querySelector('main').append(
            document.createElement('button'),
            Object.assign(document.createElement('img'), {src: '/dashboard/missing.png'}))""")
        found = {v["id"] for v in serious_violations(page)}
        assert {"button-name", "image-alt"} <= found, found
    finally:
        context.close()
