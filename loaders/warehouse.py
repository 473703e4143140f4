"""The DuckDB warehouse: opening it (one writer at a time), the raw tables, transactions,
compaction and bulk inserts (a run's own bookkeeping: loaders/runs.py)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from loaders.errors import BadInput
from loaders.schema import LOADER_SCHEMA, RAW_DDL

_LOCK_PID = re.compile(r"PID (\d+)")

# DuckDB's memory_limit while a loader writes (DUCKDB_MEMORY_LIMIT, dbt's setting, wins).
# A Graph load's memory is the pages waiting for the writer (bounded by the workers and the
# writer's queue, not by the mailboxes: ~150 MiB of Python heap with the interpreter) plus
# what DuckDB holds, and DuckDB fills its limit as the warehouse grows: the rows committed
# since the last checkpoint, the cached blocks of the raw tables that each batch's delete
# scans, and the row groups a checkpoint rewrites. So the limit sets the peak. Max RSS at 50 /
# 200 / 400 mailboxes (`make bench`'s org): 537 / 663 / 710 MiB at 512MB; 427 / 508 / 530
# MiB at 256MB, as fast (DuckDB spills to its temp folder what does not fit). At 192MB the
# JSON reader ran out of memory: keep the headroom.
LOADER_MEMORY_LIMIT = "256MB"


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for writing, creating the raw tables if needed.

    DuckDB allows one writing process per file and blocks it while any other process holds
    the file open (a dbt run, a BI tool, a duckdb shell): say so instead of a stack trace.
    """
    if not path.parent.exists():
        raise BadInput(f"DUCKDB_PATH points into {path.parent}, which does not exist.")
    try:  # DuckDB writes its log beside the file: a folder it cannot write fails the first commit
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise BadInput(
            f"cannot write in {path.parent} ({exc.strerror}), where the warehouse and its .wal "
            "log live: make the folder writable for this user, or set DUCKDB_PATH to a file in "
            "a folder you can write."
        ) from None
    con = _open(path, read_only=False)
    con.execute("set memory_limit = ?",
                [os.environ.get("DUCKDB_MEMORY_LIMIT") or LOADER_MEMORY_LIMIT])
    # The loader reports its own progress (loaders/progress.py); DuckDB's bar would cut in.
    con.execute("set enable_progress_bar = false")
    for statement in RAW_DDL:
        con.execute(statement)
    return con


def connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """Open an existing warehouse for reading (an export): other readers may hold it too, a
    writer (a load, a dbt run) may not."""
    if not path.is_file():
        raise BadInput(
            f"there is no warehouse at {path}: set DUCKDB_PATH to the warehouse file, or land "
            "data first (python -m loaders crm / graph)."
        )
    con = _open(path, read_only=True)
    con.execute("set enable_progress_bar = false")
    return con


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = _LOCK_PID.search(text)
            holder = f" (process {pid.group(1)})" if pid else ""
            raise BadInput(
                f"the warehouse {path} is open in another process{holder}: close it (a dbt run, "
                "a BI tool or a duckdb shell) and run again; nothing was changed."
            ) from None
        raise BadInput(f"cannot open the warehouse {path}: {text.splitlines()[0]}") from None
    except duckdb.Error as exc:  # not a DuckDB file, a newer storage version, ...
        if not read_only:
            raise
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(f"cannot open the warehouse {path}: {text}") from None


# DuckDB merges adjacent, partly filled row groups when it checkpoints, but at most
# `max_vacuum_tasks` merges each time (100 by default). A load that commits in many batches
# leaves more than that, and each later checkpoint, dbt's included, then spends tens of
# seconds rewriting raw tables it did not change (measured: ~20 s at every checkpoint of a
# dbt build after a year of 2,500 mailboxes was landed).
_COMPACT_VACUUM_TASKS = 1_000_000


def compact(con: duckdb.DuckDBPyConnection) -> None:
    """Merge the row groups a load left partly filled, in one checkpoint, so that the next
    writer (dbt) pays only for its own changes."""
    con.execute(f"set max_vacuum_tasks = {_COMPACT_VACUUM_TASKS}")
    try:
        # DuckDB skips a checkpoint when nothing changed since the last one (a load whose
        # writes were all checkpointed already): a table created and dropped is a change
        con.execute(f"create or replace table {LOADER_SCHEMA}.compaction_marker as select 1 as x")
        con.execute(f"drop table {LOADER_SCHEMA}.compaction_marker")
        con.execute("checkpoint")
    finally:
        con.execute("reset max_vacuum_tasks")


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """The block's writes as one transaction: committed when the block ends, rolled back when
    it raises (Ctrl+C included), so a reader or the next run sees all of them or none."""
    con.execute("begin transaction")
    try:
        yield con
        con.execute("commit")
    except BaseException:
        # a failed commit has already ended the transaction: nothing is left to roll back
        with contextlib.suppress(duckdb.TransactionException):
            con.execute("rollback")
        raise


def _chain(exc: BaseException | None) -> list[BaseException]:
    """`exc` and the errors it was raised from or while handling."""
    chain: list[BaseException] = []
    while exc is not None and all(exc is not seen for seen in chain):
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def disk_full(exc: BaseException | None) -> bool:
    """Whether `exc`, or an error it was raised from or while handling, is a full disk: DuckDB
    writing the warehouse or its log, or the loader writing its spool."""
    return any(
        (isinstance(e, OSError) and e.errno == errno.ENOSPC)
        or (isinstance(e, duckdb.Error) and "No space left on device" in str(e))
        for e in _chain(exc)
    )


def out_of_memory(exc: BaseException | None) -> bool:
    """Whether `exc`, or an error it was raised from or while handling, is DuckDB running out
    of its memory_limit."""
    return any(isinstance(e, duckdb.OutOfMemoryException) for e in _chain(exc))


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
