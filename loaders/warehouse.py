"""The DuckDB warehouse: opening it (one writer at a time), the raw tables, run bookkeeping."""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from loaders.errors import BadInput
from loaders.schema import LOADER_SCHEMA, RAW_DDL

_LOCK_PID = re.compile(r"PID (\d+)")


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for writing, creating the raw tables if needed.

    DuckDB allows one writing process per file and blocks it while any other process holds
    the file open (a dbt run, a BI tool, a duckdb shell): say so instead of a stack trace.
    """
    if not path.parent.exists():
        raise BadInput(f"DUCKDB_PATH points into {path.parent}, which does not exist.")
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = _LOCK_PID.search(text)
            holder = f" (process {pid.group(1)})" if pid else ""
            raise BadInput(
                f"the warehouse {path} is open in another process{holder}: close it (a dbt run, "
                "a BI tool or a duckdb shell) and run again. Nothing was changed."
            ) from None
        raise BadInput(f"cannot open the warehouse {path}: {text.splitlines()[0]}") from None
    # The loader needs little memory; keep DuckDB's share modest (the same setting as dbt's).
    con.execute("set memory_limit = ?", [os.environ.get("DUCKDB_MEMORY_LIMIT") or "4GB"])
    for statement in RAW_DDL:
        con.execute(statement)
    return con


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def utc_now() -> datetime:
    """Naive UTC timestamp, the convention of every TIMESTAMP column in the raw layer."""
    return datetime.now(UTC).replace(tzinfo=None)


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[list]) -> None:
    """Insert rows in one statement (DuckDB's executemany runs one statement per row)."""
    if not rows:
        return
    columns = [list(column) for column in zip(*rows, strict=True)]
    con.execute(
        f"insert into {table} select {', '.join('unnest(?)' for _ in columns)}", columns
    )


def run_row(
    run_id: str,
    source: str,
    mailbox_id: str | None,
    stream: str,
    status: str,
    started_at: datetime,
    pages: int = 0,
    records: int = 0,
    removed: int = 0,
    malformed: int = 0,
    error: str | None = None,
) -> list:
    """One `load_runs` row, finished now."""
    finished_at = utc_now()
    duration = (finished_at - started_at).total_seconds()
    return [run_id, source, mailbox_id, stream, status, started_at, finished_at, duration,
            pages, records, removed, malformed, error]


def record_runs(con: duckdb.DuckDBPyConnection, rows: list[list]) -> None:
    insert_rows(con, f"{LOADER_SCHEMA}.load_runs", rows)
