"""The changes of a tracked raw table into its Postgres copy (changes.py says which
tables and when), inside the export's one transaction.

The record: `loaders_export.raw_table_state` holds, per tracked table, the watermark (the
latest `_loaded_at` copied), the rows the copy holds and the signature of what was copied. It
is written in the transaction that writes the copy, so it always describes the committed
copy; the export locks it first, so two exports run one after the other.

The changes: the keys of the rows stamped after the watermark are copied into a temporary
table; the copy's rows with those keys are deleted (through an index on the key, built after
each whole copy) and the warehouse's rows with those keys inserted: a new row, a new version
of a row and a removed flag are all a key's rows replaced. The check: the copy must then hold
as many rows as the warehouse. Every warehouse row of another key is older than the
watermark, so it was copied before and is there unchanged; a count that differs means a row
left the warehouse without a new version (a table replaced, a row deleted by hand), and the
table is then copied whole, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import duckdb

from loaders.export.changes import (
    Incremental,
    Previous,
    Stamps,
    full_reason,
    signature,
    spec_for,
    stamps,
)
from loaders.export.postgres import _existing_columns, _replace_table
from loaders.export.tables import Column, ExportResult, RawTable, quote_ident

SCHEMA = "loaders_export"
STATE = f"{quote_ident(SCHEMA)}.raw_table_state"

# copies `query`'s rows into the Postgres table named by the second argument, with these
# columns, counted on the progress bar or not; returns the rows copied (export._Copier)
CopyRows = Callable[[str, str, tuple[Column, ...], bool], int]


def read_state(cur) -> dict[str, Previous]:
    """The record of the previous export, locked until this export commits."""
    cur.execute(f"create schema if not exists {quote_ident(SCHEMA)}")
    cur.execute(f"""create table if not exists {STATE} (
        table_name text primary key, signature text not null, watermark timestamp,
        row_count bigint not null, exported_at timestamp with time zone not null)""")
    cur.execute(f"lock table {STATE} in share row exclusive mode")
    cur.execute(f"select table_name, signature, watermark, row_count from {STATE}")
    return {name: Previous(sig, watermark, rows) for name, sig, watermark, rows in cur.fetchall()}


def save_state(cur, table: RawTable, spec: Incremental, watermark: datetime | None) -> None:
    cur.execute(
        f"""insert into {STATE} values (%s, %s, %s, %s, now())
            on conflict (table_name) do update set signature = excluded.signature,
                watermark = excluded.watermark, row_count = excluded.row_count,
                exported_at = excluded.exported_at""",
        [table.qualified, signature(table, spec), watermark, table.rows],
    )


def forget_state(cur, names: list[str]) -> None:
    """Tables copied whole without tracking: an older record of them no longer holds."""
    if names:
        cur.execute(f"delete from {STATE} where table_name = any(%s)", [names])


def _indexes(table: RawTable, spec: Incremental) -> dict[str, tuple[str, ...]]:
    """The tracked table's indexes by name: its key (the changes' deletes find the old rows
    through it) and its stamp (a daily `dbt build` reads the rows landed since its last build
    through it: macros/since_last_build.sql)."""
    return {f"{table.name}_export_key": spec.key, f"{table.name}_export_stamp": (spec.stamp,)}


def drop_key_index(cur, table: RawTable, spec: Incremental) -> None:
    """Before a whole copy: an index is built faster once than row by row."""
    for name in _indexes(table, spec):
        cur.execute(f"drop index if exists {quote_ident(table.schema)}.{quote_ident(name)}")


def create_key_index(cur, table: RawTable, spec: Incremental) -> None:
    for name, columns in _indexes(table, spec).items():
        cur.execute(
            f"create index if not exists {quote_ident(name)} on "
            f"{table.pg_name} ({', '.join(quote_ident(c) for c in columns)})"
        )


def copy_changes(cur, reading: duckdb.DuckDBPyConnection, table: RawTable,
                 spec: Incremental, previous: Previous, copy_rows: CopyRows,
                 number: int) -> int | None:
    """Replace the rows of the keys stamped after the watermark; the rows copied, or None when
    the copy would not hold the warehouse's rows (the caller then copies the table whole)."""
    assert previous.watermark is not None
    source = f"{quote_ident(table.schema)}.{quote_ident(table.name)}"
    key_columns = tuple(c for c in table.columns if c.name in spec.key)
    keys = ", ".join(quote_ident(c.name) for c in key_columns)
    reading.execute(
        f"""create or replace temp table export_keys as
            select distinct {keys} from {source} where {quote_ident(spec.stamp)} > ?""",
        [previous.watermark],
    )
    temp = f"export_keys_{number}"
    cur.execute(
        f"create temp table {temp} ("
        + ", ".join(f"{quote_ident(c.name)} {c.pg_type}" for c in key_columns)
        + ") on commit drop"
    )
    copy_rows(f"select {', '.join(c.select for c in key_columns)} from export_keys",
              temp, key_columns, False)
    cur.execute(f"analyze {temp}")
    match = " and ".join(f"t.{quote_ident(k)} = k.{quote_ident(k)}" for k in spec.key)
    cur.execute(f"delete from {table.pg_name} as t using {temp} as k where {match}")
    replaced = cur.rowcount
    copied = copy_rows(
        f"""select {', '.join(c.select for c in table.columns)} from {source} as t
            where exists (select 1 from export_keys as k where {match})""",
        table.pg_name, table.columns, True,
    )
    cur.execute(f"drop table {temp}")
    if previous.rows - replaced + copied != table.rows:
        return None
    # the planner's statistics include the new rows: without them it takes the rows landed
    # since a build for none and joins them by nested loops (a day build's staging test: 12 s
    # instead of 1 s at 100 mailboxes); autovacuum would wait for 10 % of the table to change
    cur.execute(f"analyze {table.pg_name}")
    return copied


@dataclass
class Plan:
    """How one raw table is copied: whole, or (tracked, `whole` None) its changes."""

    table: RawTable
    spec: Incremental | None = None
    stamps: Stamps | None = None
    previous: Previous | None = None
    whole: str | None = None  # why a tracked table is copied whole

    @property
    def rows(self) -> int:
        """The rows it is expected to copy."""
        if self.stamps is not None and self.whole is None:
            return self.stamps.changed
        return self.table.rows


def plan(duck: duckdb.DuckDBPyConnection, cur, table: RawTable,
         previous: dict[str, Previous], full: bool) -> Plan:
    spec = spec_for(table)
    if spec is None:
        return Plan(table)
    before = previous.get(table.qualified)
    now = stamps(duck, table, spec, before.watermark if before else None)
    whole = full_reason(table, spec, before, now, full)
    if whole is None and _existing_columns(cur, table) != [
            (c.name, c.pg_type) for c in table.columns]:
        whole = "its copy in Postgres is missing or has other columns"
    return Plan(table, spec, now, before, whole)


def copy_whole(cur, table: RawTable, spec: Incremental | None, copy_rows: CopyRows,
               result: ExportResult) -> int:
    """Empty (or recreate) the copy and fill it; a tracked table's key index is built after."""
    if spec is not None:
        drop_key_index(cur, table, spec)
    _replace_table(cur, table, result)
    rows = copy_rows(f"select {', '.join(c.select for c in table.columns)} from "
                     f"{quote_ident(table.schema)}.{quote_ident(table.name)}",
                     table.pg_name, table.columns, True)
    if spec is not None:
        create_key_index(cur, table, spec)
    cur.execute(f"analyze {table.pg_name}")
    return rows
