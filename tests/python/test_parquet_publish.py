"""The BI contract's Parquet copies (macros/publish_parquet.sql, account_engagement_parquet/).

After `dbt build` every output table is a Parquet file with the table's rows and columns; a
failed write never replaces the previous file; a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ("office", "office_user_entity", "stale_accounts", "enrichment_status", "leadspace")


def scalar(sql: str) -> object:
    with duckdb.connect() as con:
        return con.execute(sql).fetchone()[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dbt_build_publishes_every_output_table(demo_build):
    warehouse = demo_build / "warehouse.duckdb"
    folder = demo_build / "parquet"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'"
        ).fetchall()}
        assert set(CONTRACT) <= tables  # the demo runs the Leadspace step
        expected = CONTRACT
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{t}.parquet" for t in expected)
        for table in expected:
            file = str(folder / f"{table}.parquet")
            assert con.execute(f"select count(*) from read_parquet('{file}')").fetchone() == \
                con.execute(f"select count(*) from {table}").fetchone()
            # the same rows, column for column (names and values)
            assert con.execute(
                f"select count(*) from (select * from {table} except all "
                f"select * from read_parquet('{file}'))"
            ).fetchone() == (0,)
            assert [c[0] for c in con.execute(f"describe select * from '{file}'").fetchall()] \
                == [c[0] for c in con.execute(f"describe {table}").fetchall()]
    assert scalar(
        f"select count(*) from '{folder}/office.parquet' where \"AggregationLevel\" = 'Year'"
    ) == 24


@pytest.fixture(scope="module")
def dbt_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One target folder for this module's dbt runs, so the project is parsed once."""
    return tmp_path_factory.mktemp("dbt_target")


def dbt_run(workdir: Path, target: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DUCKDB_PATH=str(workdir / "warehouse.duckdb"),
               PARQUET_DIR=str(workdir / "bi"))
    return subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), *args, "--profiles-dir", str(ROOT),
         "--project-dir", str(ROOT), "--target-path", str(target / "target"),
         "--log-path", str(workdir / "logs")],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )


def test_a_failed_publish_leaves_the_previous_file(demo_build, tmp_path, dbt_target):
    shutil.copy(demo_build / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    folder = tmp_path / "bi"  # PARQUET_DIR: the plugin creates it
    first = dbt_run(tmp_path, dbt_target, "run", "--select", "office_user_entity")
    assert first.returncode == 0, first.stdout[-3000:]
    before = {p.name: digest(p) for p in folder.glob("*.parquet")}
    assert set(before) == {f"{t}.parquet" for t in CONTRACT}

    # DuckDB writes tmp_office.parquet first: a folder of that name makes the write fail
    (folder / "tmp_office.parquet").mkdir()
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("delete from office where \"AggregationLevel\" = 'Week'")
    failed = dbt_run(tmp_path, dbt_target, "run", "--select", "office_user_entity")
    assert failed.returncode != 0
    assert "tmp_office.parquet" in failed.stdout
    assert digest(folder / "office.parquet") == before["office.parquet"]
    assert scalar(
        f"select count(*) from '{folder}/office.parquet' where \"AggregationLevel\" = 'Week'"
    ) > 0

    (folder / "tmp_office.parquet").rmdir()
    again = dbt_run(tmp_path, dbt_target, "run", "--select", "office_user_entity")
    assert again.returncode == 0, again.stdout[-3000:]
    assert sorted(p.name for p in folder.iterdir()) == sorted(before)  # no temp file left
    assert scalar(
        f"select count(*) from '{folder}/office.parquet' where \"AggregationLevel\" = 'Week'"
    ) == 0


def test_seed_and_test_do_not_publish(demo_build, tmp_path, dbt_target):
    shutil.copy(demo_build / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    result = dbt_run(tmp_path, dbt_target, "test", "--select", "office_user_entity")
    assert result.returncode == 0, result.stdout[-3000:]
    assert list((tmp_path / "bi").iterdir()) == []


def test_dbt_while_another_process_holds_the_warehouse_says_so_in_a_sentence(
        demo_build, tmp_path, dbt_target):
    shutil.copy(demo_build / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    holder = subprocess.Popen(  # as a loader would: the warehouse open for writing
        [sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
         "print('open', flush=True); sys.stdin.read()", str(tmp_path / "warehouse.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        result = dbt_run(tmp_path, dbt_target, "run", "--select", "office_user_entity")
    finally:
        holder.communicate("")
    assert result.returncode != 0
    assert (f"The warehouse {tmp_path / 'warehouse.duckdb'} is in use by "
            in result.stdout) and f"(PID {holder.pid})" in result.stdout
    assert f"BI tools should read the Parquet copies in {tmp_path / 'bi'}" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    said = next(line for line in result.stdout.splitlines() if "is in use by" in line)
    assert said.rstrip().endswith("instead.") and said.count(". ") == 0  # one sentence


def test_the_engine_replaces_a_file_whole_or_not_at_all(tmp_path):
    """What the hook relies on: `copy ... (use_tmp_file true)` over an existing file. A write
    that fails half-way leaves the old file; readers during rewrites see whole files only."""
    target = tmp_path / "office.parquet"
    options = "(format parquet, compression zstd, use_tmp_file true)"
    con = duckdb.connect()
    con.execute(f"copy (select range as i from range(1000)) to '{target}' {options}")
    old = digest(target)
    with pytest.raises(duckdb.Error, match="boom"):
        con.execute(
            "copy (select case when range = 1500000 then error('boom') else range end as i "
            f"from range(3000000)) to '{target}' {options}"
        )
    assert digest(target) == old and [p.name for p in tmp_path.iterdir()] == [target.name]

    sizes = (2_000_000, 1000, 2_000_000, 1000)
    stop = threading.Event()
    seen: set[int] = set()
    errors: list[Exception] = []

    def read() -> None:
        reader = duckdb.connect()
        while not stop.is_set():
            try:
                seen.add(reader.execute(f"select count(*) from '{target}'").fetchone()[0])
            except duckdb.Error as error:  # a half-written file would fail here
                errors.append(error)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for rows in sizes:
            con.execute(f"copy (select range as i, range * 2 as j from range({rows})) "
                        f"to '{target}' {options}")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert errors == []
    assert seen <= {1000, 2_000_000} and seen
