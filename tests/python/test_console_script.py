"""The console script `account-engagement` (pyproject.toml, [project.scripts]), as `pip
install` puts it beside the interpreter: run from a folder outside the clone, it has every
loader command, `cards` and `--version`, and says what it says under `python -m loaders`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = shutil.which("account-engagement", path=str(Path(sys.executable).parent))


def env(cwd: Path) -> dict[str, str]:
    return {**os.environ, "DUCKDB_PATH": str(cwd / "warehouse.duckdb")}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    if SCRIPT is None:
        pytest.fail("account-engagement is not installed beside this Python: run make setup "
                    "(pip install -e .) again")
    return subprocess.run([SCRIPT, *args], cwd=cwd, env=env(cwd), capture_output=True,
                          text=True, timeout=120, check=False)


def test_version_is_the_package_version(tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = run("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"account-engagement {version}\n")


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "{crm,graph,dataverse,leadspace,export,remove,cards}" in result.stdout


def test_a_loader_command_refuses_as_python_m_loaders_does(tmp_path: Path) -> None:
    args = ("crm", "--accounts", "accounts.csv", "--contacts", "contacts.csv")
    script = run(*args, cwd=tmp_path)
    module = subprocess.run([sys.executable, "-m", "loaders", *args], cwd=tmp_path,
                            env=env(tmp_path), capture_output=True, text=True, timeout=120,
                            check=False)
    assert (script.returncode, script.stderr) == (2, "error: accounts.csv: no such file.\n")
    assert (module.returncode, module.stderr) == (script.returncode, script.stderr)
    # refused before the warehouse is opened: no warehouse.duckdb left behind
    assert list(tmp_path.iterdir()) == []


def test_cards_takes_its_own_options(tmp_path: Path) -> None:
    help_text = run("cards", "--help", cwd=tmp_path)
    assert help_text.returncode == 0
    assert help_text.stdout.startswith("usage: account-engagement cards ")
    missing = tmp_path / "none.duckdb"
    result = run("cards", "--warehouse", str(missing), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"cards: the warehouse {missing} does not exist")


def test_an_option_before_cards_is_a_sentence_not_a_traceback(tmp_path: Path) -> None:
    result = run("-v", "cards", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, (
        "error: write `cards` first, with its own options after it: account-engagement cards "
        "[--warehouse FILE] [--out DIR] [--schema NAME].\n"))


# ---------------------------------------------------------------------------- the window
GRAPH_APP = {"GRAPH_TENANT_ID": "t", "GRAPH_CLIENT_ID": "c", "GRAPH_CLIENT_SECRET": "s"}


def graph(*args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess:
    """`account-engagement graph` with an app's settings: a refusal of the window comes before
    any server is contacted and any warehouse opened."""
    if SCRIPT is None:
        pytest.fail("account-engagement is not installed beside this Python: run make setup")
    environment = {name: value for name, value in env(cwd).items()
                   if name not in ("ACCOUNT_ENGAGEMENT_WINDOW_DAYS", "DBT_PROJECT_DIR")}
    return subprocess.run([SCRIPT, "graph", "--mailbox", "a@x.com", *args], cwd=cwd,
                          env={**environment, **GRAPH_APP, **settings}, capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_bad_window_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    flag = graph("--window-days", "0", cwd=tmp_path)
    assert (flag.returncode, flag.stderr) == (2, (
        "error: argument --window-days: '0' is not a whole number of days from 1 to 36,500: "
        "e.g. 365\n"))
    setting = graph(cwd=tmp_path, ACCOUNT_ENGAGEMENT_WINDOW_DAYS="a year")
    assert (setting.returncode, setting.stderr) == (2, (
        "error: ACCOUNT_ENGAGEMENT_WINDOW_DAYS='a year' is not a whole number of days from 1 "
        "to 36,500: unset it to follow the dbt project's vars.window_days, or give e.g. 365.\n"))
    folder = graph("--project-dir", str(tmp_path), cwd=tmp_path)
    assert (folder.returncode, folder.stderr) == (2, (
        f"error: argument --project-dir: {tmp_path} has no dbt_project.yml: give the folder of "
        "the dbt project whose vars.window_days the loader should follow\n"))
    (tmp_path / "dbt_project.yml").write_text("name: mine\nvars:\n  window_days: -3\n")
    var = graph(cwd=tmp_path)
    assert (var.returncode, var.stderr) == (2, (
        f"error: {tmp_path / 'dbt_project.yml'}: vars.window_days must be a whole number of "
        "days, 1 or more (got -3); 365 is a year.\n"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dbt_project.yml"]  # no warehouse


def test_the_window_comes_from_the_flag_the_setting_the_project_or_365(tmp_path, monkeypatch):
    """--window-days, else ACCOUNT_ENGAGEMENT_WINDOW_DAYS, else vars.window_days of the dbt
    project in --project-dir / DBT_PROJECT_DIR / the current folder (the package's own vars
    first, as dbt reads them for its models), else 365."""
    from loaders.settings import resolve_window

    mine, other = tmp_path / "mine", tmp_path / "other"
    mine.mkdir()
    other.mkdir()
    (mine / "dbt_project.yml").write_text("name: mine\nvars:\n  window_days: 90\n")
    (other / "dbt_project.yml").write_text(
        "name: other\nvars:\n  window_days: 30\n  account_engagement:\n    window_days: 45\n")
    monkeypatch.chdir(mine)
    monkeypatch.delenv("ACCOUNT_ENGAGEMENT_WINDOW_DAYS", raising=False)
    monkeypatch.delenv("DBT_PROJECT_DIR", raising=False)

    def said(*args) -> str:
        return resolve_window(*args).describe()

    assert said() == "window: 90 days (vars.window_days in ./dbt_project.yml)"
    monkeypatch.setenv("DBT_PROJECT_DIR", str(other))
    assert said() == (f"window: 45 days (vars.account_engagement.window_days in "
                      f"{other / 'dbt_project.yml'})")
    assert said(None, mine) == "window: 90 days (vars.window_days in ./dbt_project.yml)"
    monkeypatch.setenv("ACCOUNT_ENGAGEMENT_WINDOW_DAYS", " 200 ")
    assert said(None, mine) == "window: 200 days (ACCOUNT_ENGAGEMENT_WINDOW_DAYS)"
    assert said(7, mine) == "window: 7 days (--window-days)"
    monkeypatch.delenv("ACCOUNT_ENGAGEMENT_WINDOW_DAYS")
    monkeypatch.delenv("DBT_PROJECT_DIR")
    monkeypatch.chdir(tmp_path)
    assert said() == "window: 365 days (the default; no ./dbt_project.yml)"
    (tmp_path / "dbt_project.yml").write_text("name: bare\n")
    assert said() == "window: 365 days (the default; ./dbt_project.yml sets no vars.window_days)"
