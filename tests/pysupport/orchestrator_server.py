"""The real `orchestrator` binary for the Python test suites (the dashboard in Chromium, Claude
Code end to end): a server on a fresh database of each backend, started and stopped as the
tests need, and called over HTTP."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import pytest

BINARY = os.path.abspath(os.environ.get("ORCH_BINARY", "target/debug/orchestrator"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The binary on one database; can be stopped and started again on the same port."""

    def __init__(self, database_url, env):
        self.database_url = database_url
        self.env = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.log = tempfile.NamedTemporaryFile(prefix="orch-test-", suffix=".log", delete=False)

    def start(self):
        env = {k: v for k, v in os.environ.items() if k != "ORCH_API_KEYS"}
        env.update(DATABASE_URL=self.database_url, ORCH_LISTEN=f"127.0.0.1:{self.port}",
                   RUST_LOG="warn", **self.env)
        self.process = subprocess.Popen([BINARY], env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the server did not start: " + open(self.log.name).read())

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def call(self, method, path, body=None, key=None):
        """One API call: (status, JSON body or None)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            text = error.read()
            return error.code, json.loads(text) if text else None


def databases():
    backends = ["sqlite"]
    if os.environ.get("ORCH_TEST_POSTGRES_URL"):
        backends.append("postgres")
    elif os.environ.get("ORCH_REQUIRE_POSTGRES"):
        raise RuntimeError("PostgreSQL is required but ORCH_TEST_POSTGRES_URL is not set")
    return backends


@pytest.fixture(params=databases())
def make_server(request):
    """Starts servers on a fresh database of the parametrized backend: make_server(**env)."""
    made, cleanup = [], []

    def make(**env):
        if request.param == "sqlite":
            directory = tempfile.mkdtemp(prefix="orch-browser-")
            cleanup.append(lambda: shutil.rmtree(directory, ignore_errors=True))
            url = f"sqlite://{directory}/dashboard.db"
        else:
            admin = os.environ["ORCH_TEST_POSTGRES_URL"]
            name = "orch_browser_" + uuid.uuid4().hex[:12]
            subprocess.run(["psql", "-q", admin, "-c", f"CREATE DATABASE {name}"], check=True)
            cleanup.append(lambda: subprocess.run(
                ["psql", "-q", admin, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"]))
            url = admin.rsplit("/", 1)[0] + "/" + name
        server = Server(url, {k: str(v) for k, v in env.items()})
        server.start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()
    for clean in cleanup:
        clean()


def wait_for(what, check, timeout=30.0):
    """Polls `check()` until it returns something truthy, which is returned; fails the test
    with `what` when `timeout` seconds pass first."""
    deadline = time.time() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
