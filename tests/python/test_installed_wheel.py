"""The product as a user gets it: the wheel, installed with its dependencies into a fresh venv
in a temporary folder outside the clone, run from a folder of the user's own.

From there `account-engagement` prints its version, lands a small CRM snapshot and loads
Graph from the bundled emulator (started here, on loopback); the warehouse lands in that
folder, never in site-packages, with the rows expected, and the Graph load says which window
it used: the `window_days` of the user's own dbt_project.yml in that folder.

pip fetches the pinned dependencies from the package registry (its cache makes a second run
quick), as `make setup` does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from datetime import date, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from loaders.graph.load import EXCLUDED_FOLDERS

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 3, 15)  # the synthetic organisation's (conftest.SYNTHETIC_AS_OF)
WINDOW_DAYS = 200  # the user's dbt project's var: not the 365 the clone ships
# settings of the test run that must not leak into the user's shell
UNSET = ("DUCKDB_PATH", "PARQUET_DIR", "PYTHONPATH", "VIRTUAL_ENV", "DBT_PROJECT_DIR",
         "ACCOUNT_ENGAGEMENT_WINDOW_DAYS", "ACCOUNT_ENGAGEMENT_SCHEMA",
         "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def shipped_packages() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv, outside the clone, with the wheel built from pyproject.toml installed
    (its default dependencies only, no extra)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    for package in sorted({package.split(".")[0] for package in shipped_packages()}):
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                    str(wheels), str(source)], check=True, timeout=300)
    (wheel,) = wheels.glob("account_engagement-*.whl")

    venv = tmp_path_factory.mktemp("user") / "venv"
    assert not venv.resolve().is_relative_to(ROOT.resolve())
    # without a pip of its own (ensurepip would cost more than the rest of the set-up): this
    # interpreter's pip installs into it (--python), exactly what the venv's own would
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, timeout=600, check=False,
        env={name: value for name, value in os.environ.items() if name not in UNSET},
    )
    assert installed.returncode == 0, f"pip install of the wheel failed:\n{installed.stderr}"
    return venv


def user_env(venv: Path, **settings: str) -> dict[str, str]:
    """The environment of a user's shell with the venv activated (no DUCKDB_PATH: the
    defaults are under test)."""
    environment = {name: value for name, value in os.environ.items() if name not in UNSET}
    environment["PATH"] = f"{venv / 'bin'}{os.pathsep}{environment.get('PATH', '')}"
    return {**environment, **settings}


def run(venv: Path, cwd: Path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "account-engagement"), *args], cwd=cwd,
                          env=user_env(venv, **settings), capture_output=True, text=True,
                          timeout=300, check=False)


def expected_messages(org: Path, window_start: str) -> int:
    """How many messages of the selected mailboxes the loader must land: those of real-mail
    folders received on or after `window_start`, counted from the organisation's files."""
    count = 0
    for mailbox in json.loads((org / "manifest.json").read_text())["mailbox_ids"]:
        folders = json.loads((org / "graph/mailboxes" / mailbox / "folders.json").read_text())
        excluded = {f["id"] for f in folders if f.get("_wellKnownName") in EXCLUDED_FOLDERS}
        while True:  # descendants of excluded folders are excluded too
            grown = excluded | {f["id"] for f in folders if f.get("parentFolderId") in excluded}
            if grown == excluded:
                break
            excluded = grown
        for line in (org / "graph/mailboxes" / mailbox / "messages.ndjson").open("rb"):
            message = orjson.loads(line)
            if (message["parentFolderId"] not in excluded
                    and (message.get("receivedDateTime") or "") >= window_start):
                count += 1
    return count


def test_the_installed_wheel_works_from_the_users_folder(venv, tmp_path, graph_emulator,
                                                         synthetic_org):
    site_packages = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import loaders, account_engagement_cards, sysconfig; "
         "print(sysconfig.get_paths()['purelib']); print(loaders.__file__)"],
        cwd=tmp_path, env=user_env(venv), capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    # the code that runs is the installed copy, not the clone's
    assert Path(site_packages[1]).is_relative_to(site_packages[0])

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = run(venv, tmp_path, "--version")
    assert (result.returncode, result.stdout) == (0, f"account-engagement {version}\n")

    # a CRM snapshot, as a user exports one
    (tmp_path / "accounts.csv").write_text(
        "account_id,name,website\nA1,Contoso,contoso.com\nA2,Fabrikam,fabrikam.com\n"
        "A3,Northwind,northwind.com\n")
    (tmp_path / "contacts.csv").write_text(
        "contact_id,account_id,email\nC1,A1,ann@contoso.com\nC2,A1,bob@contoso.com\n"
        "C3,A2,cid@fabrikam.com\nC4,A3,dee@northwind.com\n")
    warehouse = tmp_path / "warehouse.duckdb"
    result = run(venv, tmp_path, "crm", "--accounts", "accounts.csv", "--contacts",
                 "contacts.csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"landed 3 accounts and 4 contacts in {warehouse}\n"

    # the user's dbt project sets the window; the loader follows it and says so
    (tmp_path / "dbt_project.yml").write_text(
        f"name: my_analytics\nvars:\n  window_days: {WINDOW_DAYS}\n")
    result = run(venv, tmp_path, "graph", "--group", "sales@contoso.com", "--as-of",
                 AS_OF.isoformat(), "--no-progress", **graph_emulator.environment())
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"window: {WINDOW_DAYS} days (vars.window_days in ./dbt_project.yml)"
    assert lines[-1].endswith(f"into {warehouse}")

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "accounts.csv", "contacts.csv", "dbt_project.yml", "warehouse.duckdb"]
    assert not list(venv.rglob("*.duckdb")) and not list(venv.rglob("*.duckdb.wal"))
    mailboxes = json.loads((synthetic_org / "manifest.json").read_text())["mailbox_ids"]
    window_start = (AS_OF - timedelta(days=WINDOW_DAYS - 1)).isoformat() + "T00:00:00Z"
    expected = expected_messages(synthetic_org, window_start)
    # the shorter window left some of the organisation's year out
    assert 0 < expected < expected_messages(synthetic_org, "2025-03-16T00:00:00Z")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        def count(sql: str) -> int:
            return con.execute(sql).fetchone()[0]

        assert count("select count(*) from raw_crm.accounts") == 3
        assert count("select count(*) from raw_crm.contacts") == 4
        assert count("select count(*) from raw_graph.users") == len(mailboxes)
        assert count("select count(distinct (_mailbox_id, id)) from raw_graph.messages") == \
            count("select count(*) from raw_graph.messages") == expected
        # ISO 8601 text in UTC, as Graph returns it: text order is time order
        assert con.execute("select min(receivedDateTime) from raw_graph.messages").fetchone()[
            0] >= window_start
