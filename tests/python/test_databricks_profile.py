"""The `databricks` output of profiles.yml on dbt-databricks, with the dbt of .venv-databricks
(`make databricks-venv`: the `databricks` extra needs a dbt-spark older than the `spark` extra's,
so it has a venv of its own). Dummy DATABRICKS_* settings: nothing here connects (`dbt parse`
never does, nor does rendering the profile), and the host is the loopback address all the same.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-databricks"
DBT = VENV / "bin" / "dbt"
PYTHON = VENV / "bin" / "python"

SETTINGS = {
    "DATABRICKS_HOST": "https://127.0.0.1/",
    "DATABRICKS_HTTP_PATH": "/sql/protocolv1/o/1234567890123456/0123-456789-abcdefgh",
    "DATABRICKS_TOKEN": "dapi-not-a-real-token",
    "DATABRICKS_CATALOG": "engagement_catalog",
    "DATABRICKS_SCHEMA": "engagement_models",
}

# Renders the profile's `databricks` output as dbt does before it connects, and prints what
# it holds (the token only as whether it is the one set, never itself).
RENDER = """
import json, os, sys
from argparse import Namespace
from dbt_common.context import set_invocation_context
from dbt.flags import set_from_args
from dbt.config.runtime import load_profile
set_invocation_context(os.environ)
set_from_args(Namespace(PROFILES_DIR=sys.argv[1]), None)
profile = load_profile(sys.argv[1], {}, target_override="databricks")
c = profile.credentials
print(json.dumps({
    "type": c.type, "host": c.host, "http_path": c.http_path, "catalog": c.database,
    "schema": c.schema, "token_is_set": c.token == os.environ.get("DATABRICKS_TOKEN"),
    "threads": profile.threads, "session_properties": c.session_properties,
}))
"""


@pytest.fixture(scope="module", autouse=True)
def databricks_venv() -> None:
    """Skips, saying why, where .venv-databricks has no dbt-databricks."""
    if not DBT.exists():
        pytest.skip(f"no {DBT.relative_to(ROOT)}: `make databricks-venv` installs the "
                    "`databricks` extra there (`make test` does it first)")
    probe = subprocess.run([str(PYTHON), "-c", "import dbt.adapters.databricks"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"dbt-databricks is not installed in {VENV.relative_to(ROOT)} "
                    "(`make databricks-venv`)")


def environment(**changes: str | None) -> dict[str, str]:
    """This process's environment without DATABRICKS_* and DBT_* settings of its own, with the
    dummy settings, `changes` applied (None removes one) and dbt's usage pings off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "DBT_"))}
    env.update(SETTINGS, DO_NOT_TRACK="1", DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def render_profile(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PYTHON), "-c", RENDER, str(ROOT)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_dbt_parse_on_databricks(tmp_path: Path) -> None:
    target = tmp_path / "target"
    result = subprocess.run(
        [str(DBT), "parse", "--target", "databricks", "--project-dir", str(ROOT),
         "--profiles-dir", str(ROOT), "--target-path", str(target),
         "--log-path", str(tmp_path / "logs")],
        env=environment(), cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "databricks"
    # the raw tables of `export --target spark`, in the catalog
    sources = manifest["sources"].values()
    assert {(source["database"], source["schema"]) for source in sources} == {
        ("engagement_catalog", "raw_graph"), ("engagement_catalog", "raw_crm"),
        ("engagement_catalog", "raw_leadspace")}
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    assert {(node["database"], node["schema"]) for node in models} == {
        ("engagement_catalog", "engagement_models")}


def test_profile_takes_the_databricks_settings() -> None:
    result = render_profile(environment())
    assert result.returncode == 0, result.stderr[-4000:]
    assert json.loads(result.stdout) == {
        "type": "databricks",
        "host": "127.0.0.1",  # the SQL connector wants the bare host name
        "http_path": SETTINGS["DATABRICKS_HTTP_PATH"],
        "catalog": "engagement_catalog",
        "schema": "engagement_models",
        "token_is_set": True,
        "threads": 4,
        # docs/engines.md, 'Settings a Spark cluster needs'
        "session_properties": {
            "spark.sql.ansi.enabled": "true",
            "spark.sql.ansi.doubleQuotedIdentifiers": "true",
            "spark.sql.parser.escapedStringLiterals": "true",
            "spark.sql.session.timeZone": "UTC",
        },
    }


def test_profile_defaults() -> None:
    result = render_profile(environment(DATABRICKS_HOST="127.0.0.1",
                                        DATABRICKS_CATALOG=None, DATABRICKS_SCHEMA=None))
    assert result.returncode == 0, result.stderr[-4000:]
    rendered = json.loads(result.stdout)
    assert (rendered["host"], rendered["catalog"], rendered["schema"]) == (
        "127.0.0.1", "hive_metastore", "main")


@pytest.mark.parametrize("name", ["DATABRICKS_HOST", "DATABRICKS_HTTP_PATH", "DATABRICKS_TOKEN"])
def test_a_missing_setting_is_named(name: str) -> None:
    result = render_profile(environment(**{name: None}))
    assert result.returncode != 0
    assert f"Env var required but not provided: '{name}'" in result.stderr
