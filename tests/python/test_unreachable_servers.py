"""A server that does not answer, met as a user meets it (issue 32, item 3).

Each loader runs as a subprocess (`python -m loaders ...`) with one setting pointing at a
loopback port opened here: a listening socket whose connections are never accepted (the
kernel completes the TCP handshake, nothing ever answers: a firewall or proxy that swallows
traffic), or a closed port (nothing listens). The loader must say on one line, within
seconds, that it cannot reach HOST:PORT and is retrying (stdout, the progress stream), and
give up with one sentence on stderr naming the setting to check, exit 2, within the give-up
budget: LOADERS_CONNECT_GIVE_UP_SECONDS, shortened here except in the test of the default.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from loaders.cli import main
from loaders.graph.transport import GraphClient
from loaders.settings import GraphSettings

ROOT = Path(__file__).resolve().parents[2]
GIVE_UP = "LOADERS_CONNECT_GIVE_UP_SECONDS"
SHORT = 6.0  # seconds: the budget of the quick tests (attempts of 0.5 s, pauses 0.1-0.8 s)
STARTUP = 10.0  # seconds a loader process may take to start and to stop, on a busy machine
SECRET = "not-a-real-secret-5b2e"
PASSWORD = "not-a-real-password-91c4"
KEY = "not-a-real-leadspace-key-77d1"
AS_OF = "2026-03-15"
GRAPH_ARGS = ["graph", "--mailbox", "ann@contoso.com", "--mailbox", "bob@contoso.com",
              "--as-of", AS_OF, "--no-progress"]
LEADSPACE_ARGS = ["leadspace", "--consent", "--map", "company_name=name", "--no-progress"]


# ---------------------------------------------------------------------------- the servers
class Swallower:
    """A loopback port that takes connections and never answers: by default they are never
    accepted (they wait in the listen queue); with `accept`, they are accepted and whatever
    arrives on them is kept (`received`), unanswered."""

    def __init__(self, accept: bool = False) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)
        self.port = self._socket.getsockname()[1]
        self.received: list[bytes] = []
        self._held: list[socket.socket] = []
        if accept:
            threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self._held.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.received.append(data)

    def close(self) -> None:
        self._socket.close()
        for connection in self._held:
            connection.close()


@contextmanager
def swallowing(accept: bool = False) -> Iterator[Swallower]:
    server = Swallower(accept)
    try:
        yield server
    finally:
        server.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------------------- a loader run
SECRET_SETTINGS = ("GRAPH_CLIENT_SECRET", "LEADSPACE_TOKEN", "POSTGRES_PASSWORD")


@dataclass
class Run:
    code: int
    seconds: float
    stderr: str
    lines: list[tuple[float, str]] = field(default_factory=list)  # stdout, seconds after start
    secrets: list[str] = field(default_factory=list)  # the settings' secret values

    @property
    def output(self) -> str:
        return self.stderr + "".join(line + "\n" for _, line in self.lines)


def start(args: list[str], env: dict[str, str]
          ) -> tuple[subprocess.Popen, float, dict[str, str]]:
    Path(env["DUCKDB_PATH"]).parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "loaders", *args], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, time.monotonic(), env


def finish(process: subprocess.Popen, started: float, env: dict[str, str],
           timeout: float = 150, lines: list[tuple[float, str]] | None = None) -> Run:
    """Its stdout lines (after `lines`, read before), each with the time it came, until it
    ends."""
    lines = list(lines or [])
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(process.stderr.read()), daemon=True)
    reader.start()
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        for line in process.stdout:
            lines.append((time.monotonic() - started, line.rstrip("\n")))
        code = process.wait()
    finally:
        timer.cancel()
    seconds = time.monotonic() - started
    reader.join(10)
    secrets = [env[name] for name in SECRET_SETTINGS if env.get(name)]
    return Run(code, seconds, "".join(errors), lines, secrets)


def run(args: list[str], env: dict[str, str]) -> Run:
    return finish(*start(args, env))


def environment(tmp_path: Path, budget: float | None = SHORT, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GRAPH_", "LEADSPACE_", "POSTGRES_", "SPARK_", "PG", GIVE_UP,
                                "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"))
           and k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}}
    env["DUCKDB_PATH"] = str(tmp_path / "warehouse.duckdb")
    if budget is not None:
        env[GIVE_UP] = str(budget)
    env.update(settings)
    return env


def graph_settings(login_url: str, api_url: str) -> dict[str, str]:
    return {"GRAPH_LOGIN_URL": login_url, "GRAPH_API_URL": api_url, "GRAPH_TENANT_ID": "t",
            "GRAPH_CLIENT_ID": "c", "GRAPH_CLIENT_SECRET": SECRET}


def retries(result: Run, address: str) -> list[tuple[float, str, int]]:
    """The retry lines for `address`: (when, reason, attempt announced)."""
    found = []
    for when, line in result.lines:
        match = re.fullmatch(rf"cannot reach {re.escape(address)} \((.+)\); retrying, "
                             r"attempt (\d) of 5", line)
        if match:
            found.append((when, match.group(1), int(match.group(2))))
    return found


def assert_gave_up(result: Run, address: str, what: str, setting: str, reason: str,
                   budget: float = SHORT, first_line_within: float = STARTUP,
                   has_secret: bool = True) -> str:
    """Exit 2, one sentence naming `setting`, retry lines before it, all within `budget`."""
    assert result.code == 2, result.output
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in result.output, result.output
    assert message.startswith(f"error: cannot reach {what} at {address} ({reason}; gave up "
                              "after "), message
    assert f"check {setting}" in message, message
    seen = retries(result, address)
    assert seen, result.output
    assert [n for _, _, n in seen] == list(range(2, len(seen) + 2)), result.output
    assert {r for _, r, _ in seen} == {reason}, result.output
    assert seen[0][0] < first_line_within, f"first retry line after {seen[0][0]:.1f} s"
    assert result.seconds < budget + STARTUP, f"gave up after {result.seconds:.1f} s"
    assert bool(result.secrets) == has_secret, "a secret setting to keep out of the output"
    for secret in result.secrets:
        assert secret not in result.output
    return message


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def crm_warehouse(tmp_path_factory: pytest.TempPathFactory, synthetic_org: Path) -> Path:
    """A warehouse holding the synthetic CRM snapshot (what leadspace and export read)."""
    path = tmp_path_factory.mktemp("crm") / "warehouse.duckdb"
    os.environ["DUCKDB_PATH"] = str(path)
    try:
        assert main(["crm", "--accounts", str(synthetic_org / "crm" / "accounts.csv"),
                     "--contacts", str(synthetic_org / "crm" / "contacts.csv")]) == 0
    finally:
        del os.environ["DUCKDB_PATH"]
    return path


@pytest.fixture
def warehouse(crm_warehouse: Path, tmp_path: Path) -> Path:
    shutil.copy(crm_warehouse, tmp_path / "warehouse.duckdb")
    return tmp_path / "warehouse.duckdb"


# ---------------------------------------------------------------------------- the default
def test_at_the_default_budget_the_login_says_it_retries_within_seconds_and_gives_up_within_60s(
        tmp_path: Path) -> None:
    """The issue's two cases, at the default budget (60 s), side by side: a login URL whose
    port takes the connection and never answers (MSAL over https), and one where nothing
    listens (the client-credentials request over http)."""
    closed = closed_port()
    with swallowing() as server:
        swallowed = start(GRAPH_ARGS, environment(tmp_path, budget=None, **graph_settings(
            f"https://127.0.0.1:{server.port}", f"http://127.0.0.1:{closed}/v1.0")))
        # the second starts once the first has said it retries: not both starting at once
        first = [(time.monotonic() - swallowed[1], swallowed[0].stdout.readline().rstrip())]
        refused = start(GRAPH_ARGS, environment(tmp_path / "other", budget=None, **graph_settings(
            f"http://127.0.0.1:{closed}", f"http://127.0.0.1:{closed}/v1.0")))
        with ThreadPoolExecutor(2) as both:  # each read as its lines come
            futures = (both.submit(finish, *swallowed, lines=first),
                       both.submit(finish, *refused))
            results = tuple(future.result() for future in futures)
    for result, port, reason in zip(results, (server.port, closed),
                                    ("timed out", "connection refused"), strict=True):
        message = assert_gave_up(result, f"127.0.0.1:{port}", "the identity platform",
                                 "GRAPH_LOGIN_URL", reason, budget=60, first_line_within=10)
        assert "gave up after 5 attempts" in message
    # 5 attempts of 5 s and pauses of 1+2+4+8 s; a closed port costs the pauses only
    assert results[0].seconds > 35, results[0].seconds
    assert results[1].seconds < 30, results[1].seconds


# ---------------------------------------------------------------------------- Graph
@pytest.mark.parametrize("scheme", ["https", "http"])
def test_a_login_url_that_never_answers(tmp_path: Path, scheme: str) -> None:
    """https: MSAL (the TLS handshake never completes); http: the direct token request."""
    with swallowing(accept=True) as server:
        result = run(GRAPH_ARGS, environment(tmp_path, **graph_settings(
            f"{scheme}://127.0.0.1:{server.port}", f"http://127.0.0.1:{closed_port()}/v1.0")))
    assert_gave_up(result, f"127.0.0.1:{server.port}", "the identity platform",
                   "GRAPH_LOGIN_URL", "timed out")


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_a_login_url_where_nothing_listens(tmp_path: Path, scheme: str) -> None:
    port = closed_port()
    result = run(GRAPH_ARGS, environment(tmp_path, **graph_settings(
        f"{scheme}://127.0.0.1:{port}", f"http://127.0.0.1:{port}/v1.0")))
    assert_gave_up(result, f"127.0.0.1:{port}", "the identity platform", "GRAPH_LOGIN_URL",
                   "connection refused")


@pytest.mark.parametrize("kind", ["never answers", "nothing listens"])
def test_a_graph_api_url_that_cannot_be_reached(tmp_path: Path, graph_emulator, kind: str
                                                ) -> None:
    """The token comes (the emulator's identity platform); Graph itself is not reached."""
    with swallowing() as server:
        port = server.port if kind == "never answers" else closed_port()
        env = environment(tmp_path, **graph_emulator.environment())
        env["GRAPH_API_URL"] = f"http://127.0.0.1:{port}/v1.0"
        result = run(GRAPH_ARGS, env)
    assert_gave_up(result, f"127.0.0.1:{port}", "Microsoft Graph", "GRAPH_API_URL",
                   "timed out" if kind == "never answers" else "connection refused")
    assert [r["status"] for r in graph_emulator.requests.matching("/oauth2/v2.0/token")] == [
        200], "the token came once; only Graph itself was retried"


def test_a_slow_graph_is_not_cut_off_once_it_has_answered(graph_emulator, monkeypatch) -> None:
    """The first contact's short waits end with Graph's first answer: a page slower than them
    afterwards is waited for, not retried."""
    settings = GraphSettings(graph_emulator.graph_url, graph_emulator.login_url,
                             graph_emulator.tenant_id, graph_emulator.client_id,
                             client_secret=graph_emulator.client_secret, give_up_seconds=1.2)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graph_emulator.ca_bundle)
    client = GraphClient(settings)  # first contact: attempts of 0.1 s
    assert client.get("users", params={"$top": "1"}).value
    graph_emulator.faults.latency_ms = 400
    started = time.monotonic()
    assert client.get("users", params={"$top": "1"}).value
    assert time.monotonic() - started >= 0.4
    assert client.retries_made == 0
    assert [r["status"] for r in graph_emulator.requests.matching("/users")] == [200, 200]


# ---------------------------------------------------------------------------- Leadspace
@pytest.mark.parametrize("kind", ["never answers", "nothing listens"])
def test_a_leadspace_url_that_cannot_be_reached(tmp_path: Path, warehouse: Path, kind: str
                                                ) -> None:
    """https: the TLS handshake never completes, so the bulk POST was never sent and is
    tried again."""
    with swallowing() as server:
        port = server.port if kind == "never answers" else closed_port()
        result = run(LEADSPACE_ARGS, environment(
            tmp_path, LEADSPACE_API_URL=f"https://127.0.0.1:{port}", LEADSPACE_TOKEN=KEY))
    assert_gave_up(result, f"127.0.0.1:{port}", "Leadspace", "LEADSPACE_API_URL",
                   "timed out" if kind == "never answers" else "connection refused")


def test_a_leadspace_post_sent_and_never_answered_is_not_sent_twice(
        tmp_path: Path, warehouse: Path) -> None:
    """Over http the POST leaves as soon as the connection is open: it may be processed (and
    billed), so it is awaited until the budget is spent, said so, and not sent again."""
    with swallowing(accept=True) as server:
        result = run(LEADSPACE_ARGS, environment(
            tmp_path, LEADSPACE_API_URL=f"http://127.0.0.1:{server.port}", LEADSPACE_TOKEN=KEY))
        received = b"".join(server.received)
    assert result.code == 2, result.output
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in result.output, result.output
    assert message.startswith(f"error: Leadspace at 127.0.0.1:{server.port} took the request "
                              "but did not answer it (timed out; gave up after "), message
    assert "without sending it again" in message and "check LEADSPACE_API_URL" in message
    assert received.count(b"POST /enrichment/enrich/bulk ") == 1, received[:300]
    waiting = [when for when, line in result.lines if re.fullmatch(
        rf"no answer yet from 127\.0\.0\.1:{server.port} after 0\.5 s; waiting up to 5\.\d s "
        r"more \(the request may be in progress, so it is not sent twice\)", line)]
    assert len(waiting) == 1 and waiting[0] < STARTUP, result.output
    assert not retries(result, f"127.0.0.1:{server.port}"), result.output
    assert SHORT - 1 < result.seconds < SHORT + STARTUP
    assert KEY not in result.output


# ---------------------------------------------------------------------------- export
@pytest.mark.parametrize("kind", ["never answers", "nothing listens"])
def test_a_postgres_server_that_cannot_be_reached(tmp_path: Path, warehouse: Path, kind: str
                                                  ) -> None:
    pytest.importorskip("psycopg2", reason="the postgres extra is not installed")
    with swallowing() as server:
        port = server.port if kind == "never answers" else closed_port()
        result = run(["export", "--target", "postgres", "--no-progress"], environment(
            tmp_path, POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=str(port), POSTGRES_USER="u",
            POSTGRES_DB="d", POSTGRES_PASSWORD=PASSWORD))
    # libpq waits 2 s at least per attempt: three of them fit in the short budget
    assert_gave_up(result, f"127.0.0.1:{port}", "Postgres", "POSTGRES_HOST and POSTGRES_PORT",
                   "timeout expired" if kind == "never answers" else "connection refused")


@pytest.mark.parametrize("kind", ["never answers", "nothing listens"])
def test_a_spark_server_that_cannot_be_reached(tmp_path: Path, warehouse: Path, kind: str
                                               ) -> None:
    pytest.importorskip("pyhive", reason="the spark extra is not installed")
    raw = tmp_path / "spark_raw"
    with swallowing() as server:
        port = server.port if kind == "never answers" else closed_port()
        result = run(["export", "--target", "spark", "--no-progress"], environment(
            tmp_path, SPARK_HOST="127.0.0.1", SPARK_PORT=str(port), SPARK_RAW_PATH=str(raw)))
    assert_gave_up(result, f"127.0.0.1:{port}", "a Spark Thrift server",
                   "SPARK_HOST and SPARK_PORT",
                   "timed out" if kind == "never answers" else "could not connect",
                   has_secret=False)
    assert not raw.exists(), "nothing is written when Spark cannot be reached"


# ---------------------------------------------------------------------------- the setting
@pytest.mark.parametrize("value", ["soon", "0", "nan"])
def test_a_give_up_budget_that_is_not_a_duration_is_one_sentence(tmp_path: Path, value: str
                                                                 ) -> None:
    result = run(["export", "--target", "spark", "--no-progress"],
                 environment(tmp_path, budget=None, **{GIVE_UP: value}))
    assert result.code == 2, result.output
    assert result.stderr.strip() == (
        f"error: {GIVE_UP}={value!r} is not a number of seconds above 0 and at most 3600: "
        "unset it for the default (60) or give e.g. 30.")
