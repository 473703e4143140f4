"""The project as a dbt package: integration_tests/ is a user's dbt project that installs it
(`packages.yml: - local: ../`), as an analytics engineer would.

The raw tables of the demo organisation are copied to a warehouse of the user's under other
schema and table names than the loaders' (`landing_graph.graph_messages`, ...), which the
integration project names through the package's source vars. Its `dbt deps` and `dbt build`
must build the package's outputs in their own schema (`main_account_engagement`), equal cell
for cell to the standalone build of the same raw tables (the demo's), beside a model of the
user's named `office` that stays theirs; the Parquet hook publishes the package's tables when
`account_engagement_publish_parquet` is on and nothing when it is left unset; the DuckDB
settings hook sets only what the user's environment asks for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import DEMO_AS_OF
from engines import CLEAN_SUMMARY, OUTPUTS, WARNING, differences

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "integration_tests"
# where the package's models go in the user's warehouse: `<target schema>_account_engagement`
PACKAGE_SCHEMA = "main_account_engagement"
# the loaders' raw schema -> the user's: each table `<table>` lands as `<source>_<table>`
RENAMED_SCHEMAS = {"raw_graph": "landing_graph", "raw_crm": "landing_crm",
                   "raw_leadspace": "landing_leadspace"}


def land_under_other_names(demo_warehouse: Path, warehouse: Path) -> int:
    """The demo's raw tables copied to `warehouse` under integration_tests/'s names (and no
    `raw_*` schema, so a source still read from the loaders' names fails the build); how
    many tables."""
    copied = 0
    with duckdb.connect(str(warehouse)) as con:
        con.execute("attach ? as demo (read_only)", [str(demo_warehouse)])
        names = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = 'demo' and table_schema in ?",
            [list(RENAMED_SCHEMAS)]).fetchall()
        for schema, name in names:
            source = schema.removeprefix("raw_")
            con.execute(f"create schema if not exists {RENAMED_SCHEMAS[schema]}")
            con.execute(f'create table {RENAMED_SCHEMAS[schema]}."{source}_{name}" as '
                        f'select * from demo.{schema}."{name}"')
            copied += 1
        con.execute("detach demo")
    return copied


def dbt(workdir: Path, env: dict[str, str], *args: str) -> str:
    """dbt ARGS in integration_tests/ with its profiles.yml, as its README line says, target/
    and logs/ in `workdir`; its output. It must succeed and print no warning."""
    command = [str(Path(sys.executable).parent / "dbt"), *args, "--profiles-dir", str(PROJECT)]
    result = subprocess.run(
        command, cwd=PROJECT, capture_output=True, text=True, check=False,
        env={**os.environ, **env, "DBT_TARGET_PATH": str(workdir / "target"),
             "DBT_LOG_PATH": str(workdir / "logs")})
    assert result.returncode == 0, f"dbt {' '.join(args)} exited {result.returncode}:\n" \
        f"{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    warnings = [line for line in result.stdout.splitlines()
                if WARNING.search(line) and not CLEAN_SUMMARY.search(line)]
    assert not warnings, f"dbt {' '.join(args)} warned:\n" + "\n".join(warnings)
    return result.stdout


@pytest.fixture(scope="module")
def package_build(demo_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The integration project built once on the demo's raw tables under other names, with
    the Parquet copies on: a folder with `warehouse.duckdb` and `parquet/`."""
    workdir = tmp_path_factory.mktemp("package_build")
    assert land_under_other_names(demo_build / "warehouse.duckdb",
                                  workdir / "warehouse.duckdb") >= 9
    env = {"DUCKDB_PATH": str(workdir / "warehouse.duckdb"),
           "PARQUET_DIR": str(workdir / "parquet")}
    dbt(workdir, env, "deps")
    dbt(workdir, env, "build", "--vars", json.dumps(
        {"as_of_date": DEMO_AS_OF, "account_engagement_publish_parquet": True}))
    return workdir


def rows(warehouse: Path, sql: str) -> tuple[list[str], list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute(sql)
        return [column[0] for column in cursor.description], cursor.fetchall()


def test_the_package_builds_in_its_own_schema_equal_to_the_standalone_build(
        package_build, demo_build):
    warehouse = package_build / "warehouse.duckdb"
    schemas = {schema for (schema,) in rows(
        warehouse, "select distinct table_schema from information_schema.tables")[1]}
    assert schemas == {"main", PACKAGE_SCHEMA, *RENAMED_SCHEMAS.values()}
    for table in OUTPUTS:
        ours = rows(warehouse, f"select * from {PACKAGE_SCHEMA}.{table}")
        standalone = rows(demo_build / "warehouse.duckdb", f"select * from main.{table}")
        assert standalone[1], f"the standalone {table} is empty: the comparison would say nothing"
        assert differences(ours, standalone) == [], table


def test_the_users_own_office_stays_theirs(package_build):
    warehouse = package_build / "warehouse.duckdb"
    assert rows(warehouse, "select * from main.office") == (
        ["note", "desks"], [("the office of the user's project", 42)])
    # the user's models that read the package's office by its package name find ours
    assert rows(warehouse, "select count(*) from main.engaged_accounts")[1] == [(24,)]
    main_tables = rows(warehouse, "select table_name from information_schema.tables "
                                  "where table_schema = 'main' order by all")[1]
    assert main_tables == [("duckdb_settings",), ("engaged_accounts",), ("office",)]


def test_the_parquet_hook_publishes_the_package_tables_when_asked(package_build):
    folder = package_build / "parquet"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{t}.parquet" for t in OUTPUTS)
    warehouse = package_build / "warehouse.duckdb"
    for table in OUTPUTS:
        published = rows(warehouse, f"select * from '{folder / table}.parquet'")
        assert differences(published, rows(warehouse, f"select * from {PACKAGE_SCHEMA}.{table}")
                           ) == [], table


def test_as_a_package_the_hooks_touch_only_what_the_user_asked_for(package_build):
    """Without the var, the package's on-run-end hook publishes nothing; its on-run-start
    hook sets DUCKDB_THREADS, which the user set, and leaves preserve_insertion_order (which
    the standalone project turns off) as DuckDB has it."""
    folder = package_build / "parquet_unasked"
    dbt(package_build, {"DUCKDB_PATH": str(package_build / "warehouse.duckdb"),
                        "PARQUET_DIR": str(folder), "DUCKDB_THREADS": "1"},
        "run", "--select", "account_engagement_integration_tests",
        "--vars", json.dumps({"as_of_date": DEMO_AS_OF}))
    assert list(folder.iterdir()) == []  # the profile's plugin made the folder; nothing in it
    assert rows(package_build / "warehouse.duckdb", "select * from main.duckdb_settings") == (
        ["threads", "preserve_insertion_order"], [(1, True)])
