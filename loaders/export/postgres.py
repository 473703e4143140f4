"""`python -m loaders export --target postgres`: copy every raw table of the DuckDB warehouse
into PostgreSQL, for the `postgres` dbt target (docs/engines.md, 'The export (`export
--target postgres`)').

What is copied: every table of the warehouse's schemas whose names start with `raw_`
(raw_crm, raw_graph, raw_leadspace, raw_loader, and any raw table added later), found in
DuckDB's information_schema, into the Postgres schemas and tables of the same names.

How: DuckDB reads each table (read-only: loads and dbt runs are never blocked for long by an
export, but a writer holding the file blocks the export) and streams it as Arrow batches,
every value already rendered as text in Postgres' input syntax (nested values as DuckDB's
`to_json()`); pyarrow writes each batch as CSV, and psycopg2 feeds the stream to one
`COPY ... FROM STDIN WITH (FORMAT csv, HEADER true)` per table. Only a batch (20,000 rows) is
in memory at a time, whatever the table's size.

Replacing: the whole copy is one Postgres transaction. A table whose columns are unchanged is
truncated and refilled (views on it, such as dbt's staging views, stay valid); a table whose
columns changed is dropped (with the views on it: the next `dbt build --target postgres`
recreates them) and created again. Until the commit, readers see the previous copy (or wait
for the new one); after it, the new one; never half of either. A failure rolls everything
back. Running the export twice gives identical tables.

Incremental: raw_graph.messages and raw_graph.events (the big tables) copy only the rows
landed, changed or removed since the previous export, in the same transaction, with the
record of that export kept in Postgres (`loaders_export.raw_table_state`); a first export, a
changed schema, a replaced table or `--full` copies them whole (changes.py,
postgres_changes.py). The result is the same copy as a whole export's.

Types: VARCHAR -> text, BOOLEAN -> boolean, integers -> smallint / integer / bigint (HUGEINT
and unsigned 64-bit -> numeric), DOUBLE -> double precision, FLOAT -> real, DECIMAL(p,s) ->
numeric(p,s), DATE -> date, TIMESTAMP -> timestamp, TIMESTAMPTZ -> timestamptz, INTERVAL ->
interval, UUID -> uuid, BLOB -> bytea; STRUCT, LIST, ARRAY, MAP, UNION and JSON -> jsonb
holding the JSON of DuckDB's to_json() (field names kept; a list of structs is a JSON array;
SQL null stays SQL null); anything else -> text.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv

from loaders.errors import BadInput, LoadFailed
from loaders.export.tables import Column, ExportResult, RawTable, quote_ident, raw_tables
from loaders.progress import progress_bar
from loaders.settings import PostgresSettings
from loaders.warehouse import connect_read_only

BATCH_ROWS = 20_000
COPY_CHUNK = 1 << 20  # bytes psycopg2 asks the stream for at a time


class CsvStream:
    """A read-only file over a DuckDB query: the header line, then each Arrow batch written
    as CSV (strings quoted, SQL null as an empty unquoted field), one batch in memory."""

    def __init__(self, batches: Iterator[pa.RecordBatch], header: list[str],
                 on_rows: Callable[[int], None]) -> None:
        self._batches = batches
        self._on_rows = on_rows
        self._chunk = (",".join(quote_ident(name) for name in header) + "\n").encode()
        self._pos = 0
        self._options = pa_csv.WriteOptions(include_header=False)
        self.rows = 0
        self.error: BaseException | None = None  # what broke the stream (psycopg2 wraps it)

    def read(self, size: int = -1) -> bytes:
        try:
            while self._pos >= len(self._chunk):
                batch = next(self._batches, None)
                if batch is None:
                    return b""
                if batch.num_rows == 0:
                    continue
                sink = pa.BufferOutputStream()
                pa_csv.write_csv(batch, sink, self._options)
                self._chunk, self._pos = sink.getvalue().to_pybytes(), 0
                self.rows += batch.num_rows
                self._on_rows(batch.num_rows)
        except BaseException as exc:
            self.error = exc
            raise
        end = len(self._chunk) if size is None or size < 0 else self._pos + size
        piece = self._chunk[self._pos:end]
        self._pos += len(piece)
        return piece


# ---------------------------------------------------------------------------- Postgres
def _psycopg2():
    try:
        import psycopg2
        import psycopg2.errors  # noqa: F401  (psycopg2.errors.InsufficientPrivilege)
    except ImportError:
        raise BadInput(
            "the Postgres driver is not installed: install the postgres extra "
            "(pip install -e '.[postgres]') and run again."
        ) from None
    return psycopg2


def _scrub(text: str, settings: PostgresSettings) -> str:
    first = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    if settings.password:
        first = first.replace(settings.password, "***")
    return first


_UNREACHABLE = (
    "connection refused", "could not connect", "timeout expired", "timed out",
    "could not translate host name", "no route to host", "network is unreachable",
    "name or service not known", "temporary failure in name resolution",
    "server closed the connection", "connection reset",
)
_LOGIN_REFUSED = (
    "password authentication failed", "authentication failed",
    "pg_hba.conf", "role \"",
)


def _pg_unreachable(exc: BaseException, settings: PostgresSettings):
    """Why `exc` of psycopg2.connect says the server was not reached (None: it answered)."""
    from loaders.reach import Failure

    text = str(exc)
    lower = text.lower()
    if ("no password supplied" in lower or any(m in lower for m in _LOGIN_REFUSED)
            or ("database" in lower and "does not exist" in lower)
            or not any(marker in lower for marker in _UNREACHABLE)):
        return None
    reason = _scrub(text.split("failed:", 1)[-1].strip().splitlines()[0].rstrip("."), settings)
    return Failure(reason[:1].lower() + reason[1:], before_sending=True)


def connect_postgres(settings: PostgresSettings):
    """A psycopg2 connection, or BadInput saying which setting to check. A server that cannot
    be reached is tried again, each retry announced on a line, and given up within the
    give-up budget (LOADERS_CONNECT_GIVE_UP_SECONDS; loaders/reach.py)."""
    import math

    from loaders.reach import FirstContact

    psycopg2 = _psycopg2()
    contact = FirstContact(
        settings.address, "Postgres", "POSTGRES_HOST and POSTGRES_PORT, and that the server is "
        "running and accepts TCP connections there", settings.give_up_seconds,
        classify=lambda exc: _pg_unreachable(exc, settings),
    )
    try:
        con = contact.call(lambda timeouts: psycopg2.connect(
            host=settings.host, port=settings.port, user=settings.user,
            password=settings.password or None, dbname=settings.dbname,
            # libpq waits whole seconds, 2 at least
            connect_timeout=max(2, math.ceil(timeouts[0])) if timeouts else 10,
            application_name="account_engagement export",
        ))
    except psycopg2.OperationalError as exc:
        text = str(exc)
        lower = text.lower()
        if "no password supplied" in lower:
            raise BadInput(
                f"Postgres at {settings.address} wants a password for user "
                f"{settings.user!r}: set POSTGRES_PASSWORD."
            ) from None
        if any(marker in lower for marker in _LOGIN_REFUSED):
            raise BadInput(
                f"Postgres at {settings.address} refused the login of user "
                f"{settings.user!r}: check POSTGRES_USER and POSTGRES_PASSWORD."
            ) from None
        if "database" in lower and "does not exist" in lower:
            raise BadInput(
                f"Postgres at {settings.address} has no database {settings.dbname!r}: create "
                "it (createdb) or set POSTGRES_DB to an existing one."
            ) from None
        # (a server not reached was tried again and given up by the FirstContact above)
        raise BadInput(
            f"cannot connect to Postgres at {settings.address} as {settings.user!r} "
            f"(database {settings.dbname!r}): {_scrub(text, settings)}; check the POSTGRES_* "
            "settings."
        ) from None
    con.set_client_encoding("UTF8")
    return con


def _existing_columns(cur, table: RawTable) -> list[tuple[str, str]] | None:
    cur.execute(
        """select a.attname, format_type(a.atttypid, a.atttypmod)
           from pg_attribute a
           where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped
           order by a.attnum""",
        [table.pg_name],
    )
    columns = cur.fetchall()
    return [tuple(c) for c in columns] or None


def _replace_table(cur, table: RawTable, result: ExportResult) -> None:
    """Empty `table` in Postgres, or (re)create it when its columns differ."""
    wanted = [(c.name, c.pg_type) for c in table.columns]
    existing = _existing_columns(cur, table)
    if existing == wanted:
        cur.execute(f"truncate table {table.pg_name}")
        return
    if existing is not None:
        cur.execute(f"drop table {table.pg_name} cascade")
        result.recreated.append(table.qualified)
    cur.execute(
        f"create table {table.pg_name} ("
        + ", ".join(f"{quote_ident(c.name)} {c.pg_type}" for c in table.columns)
        + ")"
    )


class _Copier:
    """`copy ... from stdin` of a DuckDB query's rows (rendered as CSV by CsvStream) into a
    Postgres table; the rows of the raw tables count on the progress bar."""

    def __init__(self, cur, reading: duckdb.DuckDBPyConnection, batch_rows: int,
                 advance: Callable[[int], None]) -> None:
        self._cur, self._reading, self._batch_rows = cur, reading, batch_rows
        self._advance = advance
        self.stream: CsvStream | None = None  # the last one (its error, when reading failed)

    def __call__(self, query: str, pg_name: str, columns: tuple[Column, ...],
                 counted: bool) -> int:
        reader = self._reading.sql(query).to_arrow_reader(self._batch_rows)
        self.stream = stream = CsvStream(iter(reader), [c.name for c in columns],
                                         self._advance if counted else lambda n: None)
        names = ", ".join(quote_ident(c.name) for c in columns)
        self._cur.copy_expert(
            f"copy {pg_name} ({names}) from stdin with (format csv, header true)",
            stream, size=COPY_CHUNK,
        )
        if self._cur.rowcount not in (-1, stream.rows):
            raise LoadFailed(
                f"Postgres took {self._cur.rowcount:,} rows of {pg_name} but {stream.rows:,} "
                "were sent; nothing was changed in Postgres."
            )
        return stream.rows


def export_postgres(path: Path, settings: PostgresSettings, show_progress: bool = True,
                    batch_rows: int = BATCH_ROWS, full: bool = False) -> ExportResult:
    """Copy the raw tables of the warehouse at `path` into Postgres, in one transaction: the
    tracked ones' changes since the previous export (all of them with `full`), the others
    whole (changes.py)."""
    from loaders.export import postgres_changes as pg_changes  # it imports this module

    started = time.perf_counter()
    result = ExportResult()
    psycopg2 = _psycopg2()
    duck = connect_read_only(path)
    try:
        with contextlib.suppress(duckdb.Error):  # timestamptz rendered with +00
            duck.execute("set TimeZone = 'UTC'")
        tables = raw_tables(duck, path)
        pg = connect_postgres(settings)
        current = None
        copy: _Copier | None = None
        try:
            with pg.cursor() as cur, duck.cursor() as reading, \
                    progress_bar(show_progress) as progress:
                for schema in sorted({t.schema for t in tables}):
                    cur.execute(f"create schema if not exists {quote_ident(schema)}")
                previous = pg_changes.read_state(cur)
                plans = [pg_changes.plan(duck, cur, table, previous, full) for table in tables]
                total = sum(plan.rows for plan in plans)
                task = progress.add_task("rows copied", total=total)
                copy = _Copier(cur, reading, batch_rows, lambda n: progress.advance(task, n))
                for number, plan in enumerate(plans):
                    table = current = plan.table
                    progress.update(task, description=table.qualified)
                    rows = None
                    if plan.spec is not None and plan.whole is None:
                        assert plan.previous is not None
                        rows = pg_changes.copy_changes(cur, reading, table, plan.spec,
                                                       plan.previous, copy, number)
                        if rows is None:
                            plan.whole = ("rows left the warehouse without a new version since "
                                          "the last export")
                            total += table.rows
                            progress.update(task, total=total)
                    if rows is None:
                        rows = pg_changes.copy_whole(cur, table, plan.spec, copy, result)
                    if plan.spec is not None and plan.stamps is not None:
                        pg_changes.save_state(cur, table, plan.spec, plan.stamps.latest)
                    result.modes[table.qualified] = (
                        "whole" if plan.spec is None else f"whole: {plan.whole}" if plan.whole
                        else "changes since the last export")
                    result.tables.append((table.qualified, rows))
                pg_changes.forget_state(cur, [p.table.qualified for p in plans if not p.spec])
                progress.update(task, description="committing")
                pg.commit()
        except psycopg2.Error as exc:
            _rollback(pg)
            raise _failure(psycopg2, exc, copy.stream if copy else None, current,
                           settings) from None
        except duckdb.Error as exc:  # a query on the warehouse, outside a copy's stream
            _rollback(pg)
            where = f" {current.qualified}" if current else ""
            raise LoadFailed(
                f"reading{where} from the warehouse failed ({_scrub(str(exc), settings)}); "
                "nothing was changed in Postgres."
            ) from None
        except BaseException:
            _rollback(pg)
            raise
        finally:
            pg.close()
    finally:
        duck.close()
    result.seconds = time.perf_counter() - started
    return result


def _rollback(pg) -> None:
    # the connection may be gone: the server then rolls back on its own
    with contextlib.suppress(Exception):
        pg.rollback()


def _failure(psycopg2, exc, stream: CsvStream | None, table: RawTable | None,
             settings: PostgresSettings) -> Exception:
    """One sentence for a failure during the copy (nothing was committed)."""
    where = f" {table.qualified}" if table else ""
    if stream is not None and isinstance(stream.error, duckdb.Error):
        return LoadFailed(
            f"reading{where} from the warehouse failed ({_scrub(str(stream.error), settings)});"
            " nothing was changed in Postgres."
        )
    if isinstance(exc, psycopg2.errors.InsufficientPrivilege):
        return BadInput(
            f"user {settings.user!r} may not create or replace the raw tables in database "
            f"{settings.dbname!r} ({_scrub(str(exc), settings)}): grant it CREATE on the "
            "database, or ownership of the raw schemas and tables; nothing was changed in "
            "Postgres."
        )
    if isinstance(exc, psycopg2.OperationalError) and exc.pgcode is None:
        return LoadFailed(
            f"the connection to Postgres at {settings.address} was lost while copying{where} "
            f"({_scrub(str(exc), settings)}); nothing was changed in Postgres."
        )
    return LoadFailed(
        f"copying{where} to Postgres failed ({_scrub(str(exc), settings)}); nothing was "
        "changed in Postgres."
    )
