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
    assert "{crm,graph,leadspace,export,remove,cards}" in result.stdout


def test_a_loader_command_refuses_as_python_m_loaders_does(tmp_path: Path) -> None:
    args = ("crm", "--accounts", "accounts.csv", "--contacts", "contacts.csv")
    script = run(*args, cwd=tmp_path)
    module = subprocess.run([sys.executable, "-m", "loaders", *args], cwd=tmp_path,
                            env=env(tmp_path), capture_output=True, text=True, timeout=120,
                            check=False)
    assert (script.returncode, script.stderr) == (2, "error: accounts.csv: no such file.\n")
    assert (module.returncode, module.stderr) == (script.returncode, script.stderr)


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
        "[--warehouse FILE] [--out DIR].\n"))
