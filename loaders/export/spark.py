"""`python -m loaders export --target spark`: every raw table of the DuckDB warehouse as
Parquet under SPARK_RAW_PATH, registered on the Spark Thrift server as the dbt sources, for
the `spark` dbt target (docs/engines.md, 'The export (`export --target spark`)').

What is written: every base table of the warehouse's `raw_*` schemas (as for Postgres,
loaders/export/tables.py), each to `<SPARK_RAW_PATH>/<schema>/<table>/part-0.parquet` by DuckDB's
own Parquet writer (`COPY ... TO ... (FORMAT parquet)`): nested values keep their types
(Graph's recipients and attendees are `array<struct<...>>` on Spark, a struct a struct);
a timestamp (a UTC wall time in DuckDB) is written as that instant, Spark's `timestamp`.
Only DuckDB types Parquet cannot carry as they are (UUID, ENUM, HUGEINT and the like) are
written as their text.

Replacing: each table is written whole into a fresh folder beside its place, then swapped in
by renaming (the old folder renamed aside, the new one into place, the old one removed): a
reader sees the old files or the new ones, never half of either. Then, on Spark, every raw
schema is a database (`create database if not exists raw_graph`) and every table an
external Parquet table over its folder: created (`create table ... using parquet location
'...'`) when Spark does not have it or its columns changed (dropped first), else told that its
files changed (`refresh table`), so Spark reads the new files and their columns, and dbt's
staging views (SQL text on Spark) stay valid. Running the export twice gives identical tables.

Unchanged: a table whose rows are those of the previous export (the same columns, rows and
hash of every row, recorded in the folder's `_export_state.json`; for the tracked tables,
no row landed, changed or removed since) and which Spark has is neither written nor
registered again.

Incremental: raw_graph.messages and raw_graph.events are written as one file per day (per
month while small) of their date, and an export rewrites only the files holding a row landed,
changed or removed since the previous export (the others are linked into the fresh folder,
which is swapped in whole as above); `--full`, a first export or a changed schema writes
them whole (changes.py, spark_parts.py).

The Spark server must read SPARK_RAW_PATH at the same absolute path (the local
`make spark-server` does; on a cluster, a shared mount).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import duckdb

from loaders.errors import BadInput, LoadFailed
from loaders.export.changes import spec_for
from loaders.export.spark_parts import STATE_FILE, Plan, plan, write
from loaders.export.tables import ExportResult, RawTable, quote_ident, raw_tables
from loaders.progress import progress_bar
from loaders.settings import SparkSettings
from loaders.warehouse import connect_read_only

# DuckDB types written as text: Parquet (or Spark reading it) has no type for them
_AS_TEXT = ("UUID", "HUGEINT", "UHUGEINT", "UBIGINT", "BIGNUM", "VARINT", "BIT", "ENUM",
            "UNION", "TIME WITH TIME ZONE", "INTERVAL")


def _select(table: RawTable) -> str:
    columns = []
    for column in table.columns:
        ident = quote_ident(column.name)
        upper = column.duckdb_type.strip().upper()
        if upper.startswith(_AS_TEXT):
            columns.append(f"cast({ident} as varchar) as {ident}")
        elif upper.startswith("TIMESTAMP") and "TIME ZONE" not in upper:
            # a UTC wall time: the instant, so that Spark reads its `timestamp` type
            columns.append(f"timezone('UTC', {ident}) as {ident}")
        else:
            columns.append(ident)
    return (f"select {', '.join(columns)} from {quote_ident(table.schema)}."
            f"{quote_ident(table.name)}")


def _spark_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _spark_unreachable(exc: BaseException):
    """Why `exc` of the Thrift connect says the server was not reached (None: it answered)."""
    from thrift.transport.TTransport import TTransportException

    from loaders.reach import Failure

    if isinstance(exc, TTransportException):
        reasons = {TTransportException.TIMED_OUT: "timed out",
                   TTransportException.NOT_OPEN: "could not connect",
                   TTransportException.END_OF_FILE: "the connection was closed without an answer"}
        inner = getattr(exc, "inner", None)
        reason = reasons.get(exc.type) or (
            inner.strerror.lower() if isinstance(inner, OSError) and inner.strerror
            else str(exc.message or type(exc).__name__).splitlines()[0])
        return Failure(reason, before_sending=True)
    if isinstance(exc, OSError):  # a socket error thrift let through
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        return Failure(reason.lower(), before_sending=True)
    return None


def connect_spark(settings: SparkSettings):
    """A PyHive connection to the Thrift server, or BadInput saying which setting to check. A
    server that cannot be reached (or takes the connection and never answers: the socket has a
    timeout until the session is open) is tried again, each retry announced on a line, and
    given up within the give-up budget (LOADERS_CONNECT_GIVE_UP_SECONDS; loaders/reach.py)."""
    try:
        import thrift_sasl
        from pyhive import hive
        from thrift.transport.TSocket import TSocket
    except ImportError:
        raise BadInput(
            "the Spark client is not installed: install the spark extra "
            "(pip install -e '.[spark]') and run again."
        ) from None
    from loaders.reach import FirstContact, Timeouts

    logging.getLogger("thrift").setLevel(logging.CRITICAL)  # its own "Could not connect" line

    def attempt(timeouts: Timeouts):
        # the transport PyHive builds for hive.connect(host, port, username="dbt") (SASL PLAIN,
        # auth NONE), with a timeout on its socket while the session opens
        sock = TSocket(settings.host, settings.port)
        sock.setTimeout((timeouts or (10.0, 10.0))[0] * 1000)
        transport = thrift_sasl.TSaslClientTransport(
            lambda: hive.get_installed_sasl(host=settings.host, sasl_auth="PLAIN",
                                            username="dbt", password="x"), "PLAIN", sock)
        connection = hive.connect(thrift_transport=transport, username="dbt")
        sock.setTimeout(None)  # statements may take long once the server answers
        return connection

    contact = FirstContact(
        settings.address, "a Spark Thrift server",
        "SPARK_HOST and SPARK_PORT, and that the server is running (make spark-server)",
        settings.give_up_seconds, classify=_spark_unreachable,
    )
    try:
        return contact.call(attempt)
    except BadInput:  # not reached, given up
        raise
    except Exception as exc:  # an answer the session could not be opened with
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(
            f"cannot reach a Spark Thrift server at {settings.address} ({reason}): check "
            "SPARK_HOST and SPARK_PORT, and that the server is running (make spark-server)."
        ) from None


def _whole_state(duck: duckdb.DuckDBPyConnection, table: RawTable) -> dict:
    """What the record of a table written whole holds: its columns, its rows and the sum of
    the hashes of its rows (equal when, and only when, the rows are, but for a collision)."""
    rows, hashes = duck.execute(
        f"select count(*), sum(hash(t)) from {quote_ident(table.schema)}."
        f"{quote_ident(table.name)} as t").fetchone()
    return {"columns": [[c.name, c.duckdb_type] for c in table.columns],
            "duckdb": duckdb.__version__, "rows": rows, "hashes": str(hashes)}


def _read_whole_state(folder: Path) -> dict | None:
    try:
        state = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _write_table(duck: duckdb.DuckDBPyConnection, table: RawTable, root: Path,
                 state: dict) -> Path:
    """The table's Parquet folder, written whole beside its place and swapped in."""
    final = root / table.schema / table.name
    final.parent.mkdir(parents=True, exist_ok=True)
    fresh = final.parent / f".{table.name}.new-{os.getpid()}"
    old = final.parent / f".{table.name}.old-{os.getpid()}"
    for leftover in (fresh, old):
        shutil.rmtree(leftover, ignore_errors=True)
    fresh.mkdir()
    target = str(fresh / "part-0.parquet").replace("'", "''")
    duck.execute(f"copy ({_select(table)}) to '{target}' (format parquet, compression zstd)")
    (fresh / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True))
    if final.exists():
        final.rename(old)
    fresh.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def _registered(cursor, schemas: list[str]) -> set[str]:
    """The tables Spark has in `schemas` (`schema.table`, lower case: the metastore's)."""
    names = set()
    for schema in schemas:
        cursor.execute(f"show tables in {_spark_ident(schema)}")
        names.update(f"{schema}.{row[1]}".lower() for row in cursor.fetchall())
    return names


def _unchanged(tracked: Plan) -> bool:
    """No file of the tracked table to write or to drop since the previous export."""
    previous = tracked.previous
    return (tracked.whole is None and previous is not None and not tracked.cuts
            and set(tracked.counts) == set(previous.parts)
            and tracked.stamps.latest == previous.watermark)


def export_spark(path: Path, settings: SparkSettings, show_progress: bool = True,
                 full: bool = False) -> ExportResult:
    """Write the raw tables of the warehouse at `path` as Parquet and register them on Spark:
    the tracked ones' files holding changes since the previous export (every file with
    `full`; spark_parts.py), the others whole."""
    started = time.perf_counter()
    result = ExportResult()
    duck = connect_read_only(path)
    try:
        tables = raw_tables(duck, path)
        spark = connect_spark(settings)  # before writing anything: unreachable is exit 2
        current: RawTable | None = None
        try:
            cursor = spark.cursor()
            plans: dict[str, Plan] = {}
            states: dict[str, dict] = {}  # the tables written whole: their record now
            for table in tables:
                current = table
                if spec := spec_for(table):
                    plans[table.qualified] = plan(duck, table, spec, settings.raw_path, full)
                else:
                    states[table.qualified] = _whole_state(duck, table)
            current = None
            schemas = sorted({t.schema for t in tables})
            for schema in schemas:
                cursor.execute(f"create database if not exists {_spark_ident(schema)}")
            registered = _registered(cursor, schemas)
            with progress_bar(show_progress) as progress:
                task = progress.add_task("rows written", total=sum(
                    plans[t.qualified].rows if t.qualified in plans else t.rows
                    for t in tables))
                for table in tables:
                    current = table
                    progress.update(task, description=table.qualified)
                    on_spark = table.qualified.lower() in registered
                    final = settings.raw_path / table.schema / table.name
                    if tracked := plans.get(table.qualified):
                        if on_spark and not full and _unchanged(tracked):
                            result.modes[table.qualified] = "unchanged since the last export"
                            result.tables.append((table.qualified, 0))
                            continue
                        folder = write(duck, tracked, _select(table))
                        rows = tracked.rows
                        same_columns = tracked.whole is None
                        result.modes[table.qualified] = (
                            f"whole: {tracked.whole}" if tracked.whole else
                            f"changes since the last export: {len(tracked.cuts):,} of "
                            f"{len(tracked.counts):,} {tracked.by} files rewritten")
                    else:
                        state, before = states[table.qualified], _read_whole_state(final)
                        if (on_spark and not full and before == state
                                and (final / "part-0.parquet").is_file()):
                            result.modes[table.qualified] = "unchanged since the last export"
                            result.tables.append((table.qualified, 0))
                            progress.advance(task, table.rows)
                            continue
                        folder = _write_table(duck, table, settings.raw_path, state)
                        rows = table.rows
                        same_columns = before is not None and (
                            before.get("columns"), before.get("duckdb")) == (
                            state["columns"], state["duckdb"])
                        result.modes[table.qualified] = "whole"
                    name = f"{_spark_ident(table.schema)}.{_spark_ident(table.name)}"
                    if on_spark and same_columns:  # the same columns: Spark reads the new files
                        cursor.execute(f"refresh table {name}")
                    else:
                        location = str(folder).replace("\\", "\\\\").replace("'", "\\'")
                        cursor.execute(f"drop table if exists {name}")
                        cursor.execute(
                            f"create table {name} using parquet location '{location}'")
                    result.tables.append((table.qualified, rows))
                    progress.advance(task, rows)
        except duckdb.Error as exc:
            raise LoadFailed(
                f"writing {current.qualified if current else 'a raw table'} as Parquet failed "
                f"({str(exc).splitlines()[0]}); the tables written before it are replaced."
            ) from None
        except BadInput:
            raise
        except Exception as exc:  # the Thrift server refused a statement or went away
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise LoadFailed(
                f"registering {current.qualified if current else 'the raw tables'} on Spark at "
                f"{settings.address} failed ({reason or type(exc).__name__}); run the export "
                "again."
            ) from None
        finally:
            with contextlib.suppress(Exception):
                spark.close()
    finally:
        duck.close()
    result.seconds = time.perf_counter() - started
    return result
