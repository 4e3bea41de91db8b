"""Fixtures of the dashboard's browser tests: the real `orchestrator` binary on a fresh
database (tests/pysupport), and one headless Chromium (Debian's package) shared by every test.

Run by scripts/browser-test; by hand:
    ORCH_BINARY=target/debug/orchestrator target/browser-venv/bin/pytest tests/browser
"""
import os
import sys

import pytest
from playwright.sync_api import sync_playwright

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pysupport"))
from orchestrator_server import free_port, make_server  # noqa: E402,F401  (fixtures)

CHROMIUM = os.environ.get("ORCH_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.environ.get("ORCH_SCREENSHOTS", "target/browser-screenshots")


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture
def tab(browser, request):
    """Opens tabs (each its own browser context, like separate windows) and screenshots them
    when the test ends."""
    contexts = []

    def open_tab(url, notifications=False):
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        contexts.append(context)
        if notifications:
            # Notifications allowed, and recorded instead of shown (headless has no desktop).
            context.grant_permissions(["notifications"])
            context.add_init_script("""
                window.shownNotifications = [];
                window.Notification = class {
                    static permission = "granted";
                    static requestPermission() { return Promise.resolve("granted"); }
                    constructor(title, options) {
                        window.shownNotifications.push({title, body: options.body});
                    }
                };
            """)
        page = context.new_page()
        page.goto(url)
        return page

    yield open_tab
    os.makedirs(SCREENSHOTS, exist_ok=True)
    for i, context in enumerate(contexts):
        for page in context.pages:
            name = f"{request.node.name}-{i}.png".replace("[", "-").replace("]", "")
            page.screenshot(path=os.path.join(SCREENSHOTS, name), full_page=True)
        context.close()
