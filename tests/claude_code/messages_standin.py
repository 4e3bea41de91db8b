"""A scripted stand-in for the Anthropic Messages API on loopback, for running the real Claude
Code CLI through whole sessions without a network.

A test gives a script: the assistant turns of the conversation, in order. Each turn is either
tool uses (`tool_use(...)`) that Claude Code then runs, or a final text that ends the turn.
Which turn a request gets is read off the conversation it carries: the assistant content
blocks (tool uses and texts) in it so far, each turn accounting for its own (Claude Code merges
consecutive assistant messages, so messages cannot be counted). So the stand-in holds no state
between requests, and a retried request gets the same answer. Requests without tools (Claude Code's side queries, such as titles) get
a short text. Every request is kept for the test to inspect: what the model was told.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def tool_use(name, **tool_input):
    """An assistant turn that asks Claude Code to run one tool."""
    return {"tool_uses": [(name, tool_input)]}


def text(words):
    """An assistant turn that ends with text (stop_reason end_turn)."""
    return {"text": words}


class MessagesStandIn:
    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.startswith("/v1/messages") or "count_tokens" in self.path:
                    return self._send(200, "application/json", b'{"input_tokens": 1}')
                with standin._lock:
                    standin.requests.append(body)
                blocks, stop = standin._answer(body)
                if body.get("stream"):
                    self._send(200, "text/event-stream", _sse(body, blocks, stop))
                else:
                    message = _message(body, blocks, stop)
                    self._send(200, "application/json", json.dumps(message).encode())

            def do_GET(self):
                self._send(404, "application/json", b"{}")

            def _send(self, status, content_type, data):
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, body):
        if not body.get("tools"):
            return [{"type": "text", "text": "ok"}], "end_turn"
        said = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant"
                   and isinstance(m.get("content"), list)
                   for block in m["content"] if block.get("type") in ("tool_use", "text"))
        turn = 0
        while turn < len(self.script) and said >= _blocks(self.script[turn]):
            said -= _blocks(self.script[turn])
            turn += 1
        step = self.script[turn] if turn < len(self.script) else text("done")
        if "text" in step:
            return [{"type": "text", "text": step["text"]}], "end_turn"
        blocks = [{"type": "tool_use", "id": f"toolu_{turn:02d}_{i}", "name": name, "input": tool_input}
                  for i, (name, tool_input) in enumerate(step["tool_uses"])]
        return blocks, "tool_use"

    def main_requests(self):
        """The requests of the conversation itself (with tools), in order."""
        with self._lock:
            return [r for r in self.requests if r.get("tools")]

    def tool_results(self):
        """Every tool result Claude Code sent back to the model: {tool_use_id: (content, is_error)}."""
        results = {}
        for request in self.main_requests():
            for message in request.get("messages", []):
                content = message.get("content")
                if message.get("role") != "user" or not isinstance(content, list):
                    continue
                for block in content:
                    if block.get("type") == "tool_result":
                        results[block["tool_use_id"]] = (_flatten(block.get("content")), block.get("is_error", False))
        return results

    def user_texts(self):
        """Every text the model was given as the user, in order, from the last request."""
        requests = self.main_requests()
        if not requests:
            return []
        texts = []
        for message in requests[-1].get("messages", []):
            if message.get("role") == "user":
                texts.append(_flatten(message.get("content")))
        return texts


def _blocks(step):
    """How many assistant content blocks a turn of the script makes."""
    return len(step["tool_uses"]) if "tool_uses" in step else 1


def _flatten(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_flatten(c.get("text", c.get("content", ""))) if isinstance(c, dict) else str(c) for c in content)
    return "" if content is None else str(content)


def _usage():
    return {"input_tokens": 1, "output_tokens": 1}


def _message(body, blocks, stop):
    return {"id": "msg_standin", "type": "message", "role": "assistant", "model": body.get("model"),
            "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": _usage()}


def _sse(body, blocks, stop):
    start = _message(body, [], None)
    events = [("message_start", {"type": "message_start", "message": start})]
    for i, block in enumerate(blocks):
        if block["type"] == "text":
            opening = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": opening}))
        events.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                     "usage": {"output_tokens": 1}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()
