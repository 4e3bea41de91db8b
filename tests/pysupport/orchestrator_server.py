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


def partition_of(scope, session_id, partitions=256):
    """The partition a session belongs to, as the service computes it (src/cluster/partition.rs:
    FNV-1a over the scope, a zero byte and the session id)."""
    value = 0xcbf29ce484222325
    for byte in scope.encode() + b"\0" + session_id.encode():
        value = ((value ^ byte) * 0x100000001b3) % (1 << 64)
    return value % partitions


class Cluster:
    """Nodes of one cluster on one PostgreSQL database, named node-1, node-2, ..."""

    def __init__(self, database_url, nodes):
        self.database_url = database_url
        self.nodes = nodes

    def owner_of(self, session_id, scope="default"):
        """The id of the node that holds the session's partition now."""
        done = subprocess.run(
            ["psql", "-tA", self.database_url, "-c",
             f"SELECT owner FROM partition_leases WHERE partition = {partition_of(scope, session_id)}"],
            check=True, capture_output=True, text=True)
        return done.stdout.strip()

    def session_held_by(self, node_id):
        """A new session id (a UUID, as Claude Code's) whose partition `node_id` holds."""
        while True:
            candidate = str(uuid.uuid4())
            if self.owner_of(candidate) == node_id:
                return candidate


def metric(server, name):
    """A metric's value in a server's /metrics."""
    with urllib.request.urlopen(server.base + "/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.fixture
def make_cluster():
    """make_cluster(n, **env): n nodes on a fresh PostgreSQL database, once each holds its share
    of the partitions. Skipped without PostgreSQL, failed when it is required."""
    admin = os.environ.get("ORCH_TEST_POSTGRES_URL")
    if not admin:
        if os.environ.get("ORCH_REQUIRE_POSTGRES"):
            raise RuntimeError("PostgreSQL is required but ORCH_TEST_POSTGRES_URL is not set")
        pytest.skip("cluster mode needs PostgreSQL (ORCH_TEST_POSTGRES_URL)")
    made, names = [], []

    def make(n, **env):
        name = "orch_cluster_" + uuid.uuid4().hex[:12]
        subprocess.run(["psql", "-q", admin, "-c", f"CREATE DATABASE {name}"], check=True)
        names.append(name)
        url = admin.rsplit("/", 1)[0] + "/" + name
        nodes = []
        for i in range(1, n + 1):
            settings = {"ORCH_NODE_ID": f"node-{i}", "ORCH_LEASE_TTL_MS": "4000"}
            settings.update({k: str(v) for k, v in env.items()})
            node = Server(url, settings)
            node.start()
            made.append(node)
            nodes.append(node)
        share = 256 // n
        wait_for("the partitions to spread over the nodes", lambda: all(
            metric(node, "orchestrator_partitions_owned") >= share for node in nodes))
        return Cluster(url, nodes)

    yield make
    for node in made:
        node.stop()
    for name in names:
        subprocess.run(["psql", "-q", admin, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])
