"""`python -m loaders export --target spark`, run as users run it (a subprocess with the
SPARK_* settings), against the session's local Spark Thrift server (the `spark_server`
fixture), over the warehouse of the small `make demo` organisation: every raw table is
written as Parquet under SPARK_RAW_PATH and registered on Spark, nested lists as
`array<struct<...>>`, replaced by the next export (messages and events: the files of the
months that changed; test_export_incremental.py); an unreachable server is one sentence and
exit 2."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from spark_server import free_port

ROOT = Path(__file__).resolve().parents[2]
RECIPIENTS = "array<struct<emailAddress:struct<name:string,address:string>>>"


@pytest.fixture
def warehouse(demo_build: Path, tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_build / "warehouse.duckdb", path)
    return path


def export(warehouse: Path, settings: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARK_")}
    env.update(settings, DUCKDB_PATH=str(warehouse))
    return subprocess.run(
        [sys.executable, "-m", "loaders", "export", "--target", "spark", "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )


def raw_counts(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute("""select table_schema, table_name from information_schema.tables
            where table_schema like 'raw\\_%' escape '\\' and table_type = 'BASE TABLE'
            """).fetchall()
        return {f"{schema}.{name}": con.execute(
            f'select count(*) from "{schema}"."{name}"').fetchone()[0]
            for schema, name in tables}


def test_an_unreachable_server_is_one_sentence(warehouse: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    result = export(warehouse, {"SPARK_HOST": "127.0.0.1", "SPARK_PORT": str(free_port()),
                                "SPARK_RAW_PATH": str(raw)})
    assert result.returncode == 2, (result.stdout, result.stderr)
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message, result.stderr
    assert "SPARK_HOST" in message and "SPARK_PORT" in message and "Traceback" not in message
    assert not raw.exists(), "nothing is written when Spark cannot be reached"


def test_every_raw_table_is_written_nested_registered_and_replaced_whole(
        warehouse: Path, tmp_path: Path, spark_server) -> None:
    raw = tmp_path / "raw"
    settings = {**spark_server.env(), "SPARK_RAW_PATH": str(raw)}
    result = export(warehouse, settings)
    assert result.returncode == 0, result.stdout + result.stderr

    counts = raw_counts(warehouse)
    assert counts["raw_graph.messages"] > 0 and counts["raw_graph.events"] > 0
    for name, rows in counts.items():
        assert spark_server.query(f"select count(*) from {name}") == [(rows,)], name
        schema, table = name.split(".")
        files = sorted(p.name for p in (raw / schema / table).iterdir())
        if name in ("raw_graph.messages", "raw_graph.events"):
            # one file per month of the date (a small table), and the export's record
            assert files[0] == "_export_state.json", name
            assert files[1:] and all(re.fullmatch(r"part-(\d{4}-\d{2}|other)-\d+\.parquet", f)
                                     for f in files[1:]), (name, files)
        else:  # one file, and the record of its rows
            assert files == ["_export_state.json", "part-0.parquet"], name
    columns = dict(row[:2] for row in spark_server.query("describe raw_graph.messages"))
    assert columns["toRecipients"] == RECIPIENTS
    assert columns["_loaded_at"] == "timestamp"
    attendees = dict(row[:2] for row in spark_server.query("describe raw_graph.events"))
    assert attendees["attendees"].startswith("array<struct<type:string,status:struct<")
    # a nested value, read by Spark as DuckDB holds it
    with duckdb.connect(str(warehouse), read_only=True) as con:
        first = con.execute("""select "toRecipients"[1].emailAddress.address from
            raw_graph.messages where len("toRecipients") > 0 order by id limit 1""").fetchone()
    assert spark_server.query("""select toRecipients[0].emailAddress.address from
        raw_graph.messages where size(toRecipients) > 0 order by id limit 1""") == [first]

    # the next export replaces each table (the messages' files that changed): Spark sees the
    # new rows, no folder is left
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from raw_graph.messages where id in "
                    "(select id from raw_graph.messages order by id limit 5)")
    users = (raw / "raw_graph" / "users" / "part-0.parquet").stat().st_ino
    result = export(warehouse, settings)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = counts["raw_graph.messages"] - 5
    assert spark_server.query("select count(*) from raw_graph.messages") == [(rows,)]
    # the tables without a change are neither written nor registered again, and Spark still
    # reads them
    assert "raw_graph.users: 0 rows written (unchanged since the last export)" in result.stdout
    assert (raw / "raw_graph" / "users" / "part-0.parquet").stat().st_ino == users
    assert spark_server.query("select count(*) from raw_graph.users") == [
        (counts["raw_graph.users"],)]
    # a table changed without a change of columns: the same registration, refreshed, reads
    # the new file
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from raw_graph.users where id in "
                    "(select id from raw_graph.users order by id limit 1)")
    result = export(warehouse, settings)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"raw_graph.users: {counts['raw_graph.users'] - 1:,} rows written (whole)" in (
        result.stdout)
    assert spark_server.query("select count(*) from raw_graph.users") == [
        (counts["raw_graph.users"] - 1,)]
    assert sorted(p.name for p in (raw / "raw_graph").iterdir()) == sorted(
        name.split(".")[1] for name in counts if name.startswith("raw_graph."))
