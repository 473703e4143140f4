"""What an export copies of each raw table: the rows landed, changed or removed since the
previous export (the big Graph tables), or the table whole (docs/engines.md, the
'The export' of each engine).

Which tables: raw_graph.messages and raw_graph.events, unique on (`_mailbox_id`, `id`). The
loaders stamp every row they insert, replace or flag `_removed` with `_loaded_at` (the time of
its landing, loaders/graph/message_merge.py), and delete a row only to insert its new version with
the same key in the same transaction, or drop the whole table (`remove graph`). An export reads the
warehouse read-only, so no load runs during it: every row stamped after the latest
`_loaded_at` an export saw (its watermark) landed after that export. The small tables (users,
folders, CRM, Leadspace, the loader's runs and states) are copied whole every time.

When a table is copied whole instead (the reason is printed): `--full`; no record of an
earlier export on the target (its first export, or the copy was removed); its columns, the
way it is copied (LAYOUT) or DuckDB's version changed; a row without `_loaded_at`; the
warehouse's latest `_loaded_at` before the watermark (the table was replaced, or the clock set
back); no row left from before the watermark while the copy holds some (`remove graph`, a
table replaced whole); more than half of the rows new (whole is then as cheap). What a
target does with the changes, and how it checks afterwards that no row was removed without a
new version (which would also make it copy the table whole), is in postgres_changes.py
and spark_parts.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb

from loaders.export.tables import RawTable, quote_ident

# Changes whenever what an incremental export writes changes (columns' rendering, the Spark
# files' layout): a copy made under another layout is replaced whole by the next export.
LAYOUT = 1


@dataclass(frozen=True)
class Incremental:
    """How a raw table is tracked: its key, its landing stamp (a TIMESTAMP), and the VARCHAR
    holding an ISO date-time (a column, or a struct field's path) whose day or month cuts
    its Spark files."""

    key: tuple[str, ...]
    date_path: tuple[str, ...]
    stamp: str = "_loaded_at"


INCREMENTAL: dict[str, Incremental] = {
    # a message keeps the receivedDateTime it arrived with (a removal keeps the row's values)
    "raw_graph.messages": Incremental(("_mailbox_id", "id"), ("receivedDateTime",)),
    # an occurrence may be moved to another day: its file is then rewritten too (below)
    "raw_graph.events": Incremental(("_mailbox_id", "id"), ("start", "dateTime")),
}


def spec_for(table: RawTable) -> Incremental | None:
    """How `table` is tracked, or None when it is copied whole (not a tracked table, or one
    lacking the columns tracking needs)."""
    spec = INCREMENTAL.get(table.qualified)
    if spec is None:
        return None
    types = {c.name: c.duckdb_type.strip().upper() for c in table.columns}
    needed = (*spec.key, spec.date_path[0])
    if types.get(spec.stamp) != "TIMESTAMP" or any(name not in types for name in needed):
        return None
    return spec


def signature(table: RawTable, spec: Incremental) -> str:
    """What an export's record of a table must match for the next export to copy only the
    changes: the columns and their types, the tracking, the layout, DuckDB's version."""
    return json.dumps({
        "layout": LAYOUT, "duckdb": duckdb.__version__,
        "columns": [[c.name, c.duckdb_type] for c in table.columns],
        "key": list(spec.key), "stamp": spec.stamp, "date": list(spec.date_path),
    }, separators=(",", ":"))


@dataclass(frozen=True)
class Stamps:
    """A table's `_loaded_at` against the previous export's watermark."""

    latest: datetime | None  # the latest `_loaded_at` now: the next watermark
    changed: int  # rows stamped after the watermark
    unchanged: int  # rows stamped at or before it
    unstamped: int  # rows without `_loaded_at`


def stamps(duck: duckdb.DuckDBPyConnection, table: RawTable, spec: Incremental,
           watermark: datetime | None) -> Stamps:
    stamp = quote_ident(spec.stamp)
    latest, changed, unchanged, unstamped = duck.execute(
        f"""select max({stamp}), count(*) filter (where {stamp} > ?),
                   count(*) filter (where {stamp} <= ?), count(*) filter (where {stamp} is null)
            from {quote_ident(table.schema)}.{quote_ident(table.name)}""",
        [watermark, watermark],
    ).fetchone()
    return Stamps(latest, changed, unchanged, unstamped)


@dataclass(frozen=True)
class Previous:
    """The target's record of the previous export of a table."""

    signature: str
    watermark: datetime | None
    rows: int


def full_reason(table: RawTable, spec: Incremental, previous: Previous | None, now: Stamps,
                forced: bool) -> str | None:
    """Why `table` must be copied whole, or None when its changes are enough."""
    if forced:
        return "--full"
    if previous is None:
        return "first export (no record of an earlier one on the target)"
    if previous.signature != signature(table, spec):
        return "its columns or the export's layout changed"
    if table.rows == 0 or previous.watermark is None or previous.rows == 0:
        return "empty before or now"
    if now.unstamped:
        return f"{now.unstamped:,} rows without {spec.stamp}"
    if now.latest is None or now.latest < previous.watermark:
        return f"replaced since the last export (its latest {spec.stamp} is older)"
    if now.unchanged == 0:
        return "replaced since the last export (no row of the copy left)"
    if now.unchanged > previous.rows:
        return "replaced since the last export (more old rows than the copy holds)"
    if now.changed * 2 > table.rows:
        return "most rows changed"
    return None
