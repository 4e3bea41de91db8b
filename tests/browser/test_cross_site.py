"""What a web page of another site can do to the service in a real Chromium: nothing. A page
served from another loopback origin tries a `no-cors` POST with a text body (the approval
and a queued command), a form POST, and framing the dashboard; a page loaded under a name
that resolves to the service (DNS rebinding) tries to read. The approval stays pending, no
command is queued, the frame is refused and the rebound name is answered 421."""
import http.server
import threading

from playwright.sync_api import expect

from conftest import CHROMIUM, free_port

ATTACK = """<!doctype html>
<html><head><title>attacker</title></head><body>
<h1>a page on another site</h1>
<form id="form" method="POST" enctype="text/plain" target="sink"
      action="{target}/v1/sessions/s1/interactions/perm-1/resolve">
  <input type="hidden" name='{{"response":{{"x":"' value='"}}}}'>
</form>
<iframe name="sink" title="form target"></iframe>
<iframe id="framed" title="the dashboard" src="{target}/"></iframe>
<script>
  window.attempts = (async () => {{
    const results = [];
    for (const [path, body] of [
      ["/v1/sessions/s1/interactions/perm-1/resolve", '{{"response":{{}}}}'],
      ["/v1/sessions/s1/commands", '{{"interaction_id":"cmd-evil","payload":{{"run":"rm -rf ~"}}}}'],
    ]) {{
      try {{
        const r = await fetch("{target}" + path, {{method: "POST", mode: "no-cors",
          headers: {{"Content-Type": "text/plain"}}, body}});
        results.push(r.type);
      }} catch (e) {{ results.push("error " + e); }}
    }}
    document.getElementById("form").submit();
    return results;
  }})();
</script>
</body></html>
"""


def serve_attacker_page(html):
    """Serves `html` at / from another loopback origin (localhost on another port)."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://localhost:{port}/"


def test_a_page_of_another_origin_cannot_approve_queue_or_frame(make_server, tab):
    server = make_server()
    assert server.call("PUT", "/v1/sessions/s1", {})[0] == 201
    status, _ = server.call("POST", "/v1/sessions/s1/interactions",
                            {"interaction_id": "perm-1", "kind": "approval",
                             "payload": {"tool": "Bash"}, "timeout_ms": 600000})
    assert status == 201
    attacker, url = serve_attacker_page(ATTACK.format(target=server.base))
    try:
        page = tab(url)
        assert page.evaluate("window.attempts") == ["opaque", "opaque"], "the requests were sent"
        # The form's answer lands in the sink frame; give it and the fetches time to arrive.
        page.wait_for_timeout(1000)
        framed = page.frame_locator("#framed")
        # frame-ancestors 'none': Chromium shows its error page instead of the dashboard.
        expect(framed.locator("#live")).to_have_count(0)
        expect(framed.locator("h1")).not_to_have_text("orchestrator")
        dashboard_frames = [f for f in page.frames if f.url == server.base + "/"]
        for frame in dashboard_frames:
            assert frame.evaluate("document.querySelector('#live')") is None
    finally:
        attacker.shutdown()
    status, interaction = server.call("GET", "/v1/sessions/s1/interactions/perm-1")
    assert (status, interaction["status"]) == (200, "pending"), interaction
    status, _ = server.call("POST", "/v1/sessions/s1/commands/next?wait_ms=0")
    assert status == 204, "no command was queued"
    # The service's own page still decides.
    own = tab(server.base + "/#/approvals")
    card = own.locator('article[data-key="s1/perm-1"]')
    card.get_by_role("button", name="Approve").click()
    expect(card).to_have_attribute("data-outcome", "approved")
    status, interaction = server.call("GET", "/v1/sessions/s1/interactions/perm-1")
    assert interaction["outcome"] == "approved", interaction


def test_a_name_rebound_to_the_service_is_misdirected(make_server, browser):
    server = make_server()
    assert server.call("PUT", "/v1/sessions/secret", {"metadata": {"token": "t"}})[0] == 201
    # attacker.test resolves to the service, as a rebinding DNS server would make it.
    rebound = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--host-resolver-rules=MAP attacker.test 127.0.0.1"])
    try:
        page = rebound.new_page()
        response = page.goto(f"http://attacker.test:{server.port}/v1/sessions")
        assert response.status == 421
        assert "host_not_allowed" in page.content()
        assert "secret" not in page.content()
        # The same browser reaching it by a loopback name is served.
        response = page.goto(f"http://localhost:{server.port}/v1/sessions")
        assert response.status == 200
        assert "secret" in page.content()
    finally:
        rebound.close()
