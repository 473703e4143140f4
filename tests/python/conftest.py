"""Shared fixtures: a small synthetic organisation and a running Graph emulator over it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run from a fresh clone without installing the package
    sys.path.insert(0, str(ROOT))

from devtools.emulators.graph import GraphEmulator  # noqa: E402
from devtools.synthetic import generate  # noqa: E402

SYNTHETIC_AS_OF = date(2026, 3, 15)
SYNTHETIC_ARGS = {"seed": 7, "mailboxes": 6, "accounts": 40, "messages_per_mailbox": 150}


@pytest.fixture(scope="session")
def synthetic_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small organisation (6 mailboxes, 40 accounts, ~150 messages per mailbox) as of
    2026-03-15; read-only: tests that change data do it through the emulator's admin API."""
    out = tmp_path_factory.mktemp("synthetic_org")
    generate(out, as_of=SYNTHETIC_AS_OF, **SYNTHETIC_ARGS)
    return out


@pytest.fixture
def graph_emulator(synthetic_org: Path) -> Iterator[GraphEmulator]:
    """A fresh emulator per test (own faults, own mutations) on a free loopback port."""
    emulator = GraphEmulator(synthetic_org).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def fetch_token(emulator: GraphEmulator, session: requests.Session | None = None) -> str:
    response = (session or requests).post(
        f"{emulator.login_url}/{emulator.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": emulator.client_id,
              "client_secret": emulator.client_secret,
              "scope": "https://graph.microsoft.com/.default"},
        timeout=10, verify=emulator.ca_bundle,
    )
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture
def graph_session(graph_emulator: GraphEmulator) -> Iterator[requests.Session]:
    """A requests session holding a valid Bearer token for `graph_emulator`."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {fetch_token(graph_emulator, session)}"
        yield session


DEMO_AS_OF = "2026-03-15"


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small `make demo` (4 mailboxes, 24 accounts) run end to end in a temporary folder:
    synthetic org, Graph emulator, loaders, `dbt build` (which publishes the Parquet copies),
    customer cards. Returns the folder: warehouse.duckdb, parquet/, customer_cards/."""
    import os
    import subprocess

    workdir = tmp_path_factory.mktemp("demo_build")
    env = dict(os.environ)
    env["DUCKDB_PATH"] = str(workdir / "warehouse.duckdb")
    env.pop("PARQUET_DIR", None)
    result = subprocess.run(
        [sys.executable, "-m", "devtools.demo", "--workdir", str(workdir), "--mailboxes", "4",
         "--accounts", "24", "--messages-per-mailbox", "150", "--as-of", DEMO_AS_OF,
         "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"the demo failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    (workdir / "demo.log").write_text(result.stdout)
    return workdir


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A throwaway PostgreSQL 15 server for the session (tests/python/postgres_server.py):
    127.0.0.1 on a free port, its own temporary folder, stopped and removed at the end. Skips
    the test, with the reason, where no server can be started (no binaries). `.env()` gives
    its POSTGRES_* settings; `.create_database(name)` a fresh database of a test's own."""
    from postgres_server import PostgresServer, PostgresUnavailable

    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for this test: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def spark_server() -> Iterator[object]:
    """One local Spark Thrift server for the session (tests/python/spark_server.py), from the
    pinned pyspark: 127.0.0.1 on a free port, its own temporary metastore and warehouse,
    stopped by its pid and removed at the end; every Spark dbt call of the session uses it.
    Skips the test, with the reason, where none can be started (no pyspark, no Java)."""
    from spark_server import SparkServer, SparkUnavailable

    server = SparkServer()
    try:
        server.start()
    except SparkUnavailable as exc:
        pytest.skip(f"no Spark Thrift server for this test: {exc}")
    try:
        yield server
    finally:
        server.stop()
