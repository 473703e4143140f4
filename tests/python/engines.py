"""Builds of one DuckDB warehouse's raw data on DuckDB, on PostgreSQL and on Spark, for the
tests that compare them: `dbt build` in a process of its own, the export to the other engine
as a user runs it, and the tables read back cell by cell."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
# the BI contract (docs/metrics.md)
OUTPUTS = ("office", "office_user_entity", "stale_accounts", "leadspace", "enrichment_status")


WARNING = re.compile(r"warn|deprecat|ignoring", re.IGNORECASE)
CLEAN_SUMMARY = re.compile(r"Done\. PASS=\d+ WARN=0 |Completed with .* 0 warnings")


def run_dbt(workdir: Path, env: dict[str, str], as_of: date, *args: str,
            expect_success: bool = True) -> str:
    """`dbt build [ARGS] --vars '{as_of_date: ...}'` as the README writes it, run from the
    project root (its profiles.yml), unit tests and data tests included, in a process of its
    own (dbt-duckdb keeps the file open in the process that ran it); its output. The build's
    target/ and logs/ go to `workdir` through dbt's environment variables, not flags. A
    successful build prints no warning."""
    dbt = Path(sys.executable).parent / "dbt"
    command = [str(dbt), "build", *args, "--vars", f'{{as_of_date: "{as_of.isoformat()}"}}']
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, **env, "DBT_TARGET_PATH": str(workdir / "target"),
             "DBT_LOG_PATH": str(workdir / "logs")})
    assert (result.returncode == 0) == expect_success, (
        f"{' '.join(command[1:])} exited {result.returncode}:\n{result.stdout}")
    if expect_success:
        warnings = [line for line in result.stdout.splitlines()
                    if WARNING.search(line) and not CLEAN_SUMMARY.search(line)]
        assert not warnings, f"{' '.join(command[1:])} warned:\n" + "\n".join(warnings)
    return result.stdout


class DuckDBBuilds:
    """The incremental build in the warehouse itself; the full refresh in a copy of it."""

    def __init__(self, workdir: Path, warehouse: Path) -> None:
        self.workdir, self.warehouse = workdir, warehouse
        self.full = workdir / "full_refresh.duckdb"

    def build(self, as_of: date, *args: str, expect_success: bool = True) -> str:
        return run_dbt(self.workdir, {"DUCKDB_PATH": str(self.warehouse),
                                      "PARQUET_DIR": str(self.workdir / "parquet")},
                       as_of, *args, expect_success=expect_success)

    def full_refresh(self, as_of: date) -> None:
        shutil.copy(self.warehouse, self.full)
        run_dbt(self.workdir, {"DUCKDB_PATH": str(self.full),
                               "PARQUET_DIR": str(self.workdir / "parquet_full")},
                as_of, "--full-refresh")

    def query(self, sql: str, full_refresh: bool = False) -> tuple[list[str], list[tuple]]:
        """`sql` (its tables named `main.<model>`): column names and rows."""
        path = self.full if full_refresh else self.warehouse
        with duckdb.connect(str(path), read_only=True) as con:
            cursor = con.execute(sql)
            return [column[0] for column in cursor.description], cursor.fetchall()


class PostgresBuilds:
    """The raw tables exported to a database of its own (`python -m loaders export --target
    postgres`); the incremental build in schema `incremental`, the full refresh in
    `full_refresh`."""

    def __init__(self, workdir: Path, warehouse: Path, server, database: str) -> None:
        self.workdir, self.warehouse, self.server = workdir, warehouse, server
        self.database = server.create_database(database)

    def env(self, schema: str) -> dict[str, str]:
        return {**self.server.env(), "POSTGRES_DB": self.database, "POSTGRES_SCHEMA": schema}

    def export(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "loaders", "export", "--target", "postgres"],
            cwd=ROOT, env={**os.environ, **self.env("incremental"),
                           "DUCKDB_PATH": str(self.warehouse)},
            capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr

    def build(self, as_of: date, *args: str, expect_success: bool = True) -> str:
        self.export()
        return run_dbt(self.workdir, self.env("incremental"), as_of, "--target", "postgres",
                       *args, expect_success=expect_success)

    def full_refresh(self, as_of: date) -> None:
        self.export()
        run_dbt(self.workdir, self.env("full_refresh"), as_of, "--target", "postgres",
                "--full-refresh")

    def query(self, sql: str, full_refresh: bool = False) -> tuple[list[str], list[tuple]]:
        """`sql` (its tables named `main.<model>`): column names and rows."""
        schema = "full_refresh." if full_refresh else "incremental."
        with self.server.connect(self.database) as con, con.cursor() as cursor:
            cursor.execute(sql.replace("main.", schema))
            return [column[0] for column in cursor.description], cursor.fetchall()


def table(builds, name: str, full_refresh: bool = False, where: str = "true",
          ) -> tuple[list[str], list[tuple]]:
    """Every column of a table but `built_at` (when the build that wrote the row started: an
    incremental build and a full refresh write the same rows at different times), of the rows
    `where` holds."""
    columns, rows = builds.query(f"select * from main.{name} where {where}",
                                 full_refresh=full_refresh)
    kept = [i for i, column in enumerate(columns) if column != "built_at"]
    return [columns[i] for i in kept], [tuple(row[i] for i in kept) for row in rows]


def differences(left: tuple[list[str], list[tuple]], right: tuple[list[str], list[tuple]],
                ) -> list[str]:
    """The cells in which two tables differ, as sentences; [] when they are equal. Rows are
    matched on their non-float cells, and every cell must be equal exactly: the averages, the
    only floating-point figures, are one division of exact sums (exact_mean), the same bits
    on every engine and in every build."""
    (left_columns, left_rows), (right_columns, right_rows) = left, right
    if left_columns != right_columns:
        return [f"columns {left_columns} != {right_columns}"]
    if len(left_rows) != len(right_rows):
        return [f"{len(left_rows)} rows != {len(right_rows)} rows"]

    def key(row: tuple) -> tuple:
        return tuple("" if isinstance(v, float) else repr(v) for v in row)

    found = []
    for left_row, right_row in zip(sorted(left_rows, key=key), sorted(right_rows, key=key),
                                   strict=True):
        for column, left_value, right_value in zip(left_columns, left_row, right_row,
                                                   strict=True):
            if left_value != right_value:
                found.append(f"{column}: {left_value!r} != {right_value!r} in {left_row}")
    return found


class SparkBuilds:
    """The raw tables written as Parquet under this test's folder and registered on the
    session's Spark Thrift server (`python -m loaders export --target spark`); the builds in
    database `incremental`. The outputs are read as a BI tool reads them: from the Parquet
    folders each build publishes, with DuckDB."""

    def __init__(self, workdir: Path, warehouse: Path, server) -> None:
        self.workdir, self.warehouse, self.server = workdir, warehouse, server

    def env(self, schema: str) -> dict[str, str]:
        return {**self.server.env(), "SPARK_SCHEMA": schema, "DUCKDB_PATH": str(self.warehouse),
                "SPARK_RAW_PATH": str(self.workdir / "raw"),
                "PARQUET_DIR": str(self.workdir / f"parquet_{schema}")}

    def export(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "loaders", "export", "--target", "spark"],
            cwd=ROOT, env={**os.environ, **self.env("incremental")},
            capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr

    def _run_dbt(self, schema: str, as_of: date, *args: str) -> str:
        """run_dbt on Spark; once more when the only trouble was the local server failing to
        close a session (Hive 2.3's session close now and then loads an LLAP class that the
        pyspark wheel does not ship: `NoClassDefFoundError: .../LlapSigner$Signable` in a
        TCloseSessionResp, which dbt reports as the model's error). The build is the same
        build again: the days it already rebuilt have nothing new to rebuild."""
        try:
            return run_dbt(self.workdir, self.env(schema), as_of, "--target", "spark", *args)
        except AssertionError as error:
            if "TCloseSessionResp" not in str(error):
                raise
            return run_dbt(self.workdir, self.env(schema), as_of, "--target", "spark", *args)

    def build(self, as_of: date, *args: str) -> str:
        self.export()
        return self._run_dbt("incremental", as_of, *args)

    def query(self, sql: str, full_refresh: bool = False) -> tuple[list[str], list[tuple]]:
        """`sql` over the published outputs (named `main.<table>`): column names and rows."""
        assert not full_refresh, "the Spark tests build no full refresh: compare with DuckDB's"
        folder = self.workdir / "parquet_incremental"
        sql = re.sub(r"\bmain\.(\w+)",
                     lambda m: f"read_parquet('{folder / m.group(1)}/*.parquet')", sql)
        with duckdb.connect() as con:
            cursor = con.execute(sql)
            return [column[0] for column in cursor.description], cursor.fetchall()

    def spark_query(self, sql: str) -> list[tuple]:
        """`sql` on Spark, over the incremental build's tables (named `main.<table>`)."""
        return self.server.query(sql.replace("main.", "incremental."))
