"""A tracked raw table on Spark (changes.py says which, and when it is written whole):
Parquet files cut by the day (or month) of a date column, of which an export rewrites only
those holding a row landed, changed or removed since the previous export.

The folder `<SPARK_RAW_PATH>/<schema>/<table>/` holds one file per day (`part-2026-01-05-0.parquet`;
per month, `part-2026-01-0.parquet`, while the table is under DAY_FILES_FROM_ROWS rows; rows
without a valid date in `part-other-0.parquet`) and `_export_state.json`, the record of the
export that wrote it: the watermark, the rows of each file, the signature. Spark skips files
whose names start with `_` or `.`, so the table's columns are those of the files, as when it
was one file; no partition column is added, and the staging models read the same columns.

A day's file is written again when the warehouse holds a row of that day stamped after the
watermark, or when its rows are not the number the file holds: every other row of that day is
older than the watermark, so it was in the file and still is, and a count that differs means
rows left the day without a new version there (a message removed, an occurrence moved to
another day, `remove graph`). A day that no longer has rows loses its file. The cut needs no
column that never changes: where the row goes is read from the row itself.

Writing: DuckDB writes the days to rewrite in one statement (`partition_by`); a fresh folder
beside the table's receives them, hard links to the files of the other days (copies where
the file system has no links) and the record, and is swapped in by renaming, as a whole
table: a reader sees the old files or the new ones, never half of either.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from loaders.export.changes import (
    Incremental,
    Previous,
    Stamps,
    full_reason,
    signature,
    stamps,
)
from loaders.export.tables import RawTable, quote_ident

STATE_FILE = "_export_state.json"
# a tracked table is cut by day from this size on (by month below: a small table in 400 files
# of a few rows would cost Spark more to open than to read); a table cut one way keeps it
# until it is 2 x larger or 4 x smaller, then is written whole the other way
DAY_FILES_FROM_ROWS = 1_000_000
OTHER = "other"  # the cut of rows without a valid date
_CUT_COLUMN = "__export_cut"


@dataclass
class Part:
    rows: int
    files: list[str]


@dataclass
class FolderState:
    signature: str
    watermark: datetime | None
    rows: int
    granularity: str  # "day" | "month"
    parts: dict[str, Part] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({
            "signature": self.signature,
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "rows": self.rows, "granularity": self.granularity,
            "parts": {cut: {"rows": p.rows, "files": p.files} for cut, p in self.parts.items()},
        }, indent=1, sort_keys=True)


def read_state(folder: Path) -> FolderState | None:
    """The record of the export that wrote `folder`, or None (none, or unreadable: the table is
    then written whole)."""
    try:
        data = json.loads((folder / STATE_FILE).read_text())
        state = FolderState(
            str(data["signature"]),
            datetime.fromisoformat(data["watermark"]) if data["watermark"] else None,
            int(data["rows"]), str(data["granularity"]),
            {str(cut): Part(int(p["rows"]), [str(f) for f in p["files"]])
             for cut, p in data["parts"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if state.granularity not in ("day", "month"):
        return None
    return state


def granularity(rows: int, stored: str | None = None) -> str:
    if stored == "day" and rows >= DAY_FILES_FROM_ROWS // 4:
        return "day"
    if stored == "month" and rows < DAY_FILES_FROM_ROWS * 2:
        return "month"
    return "day" if rows >= DAY_FILES_FROM_ROWS else "month"


_PATTERNS = {"day": (10, re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")),
             "month": (7, re.compile(r"[0-9]{4}-[0-9]{2}"))}


def date_sql(spec: Incremental, by: str) -> str:
    """The first 10 (7) characters of the row's date: its day (month) when they are one."""
    column = ".".join(quote_ident(name) for name in spec.date_path)
    return f"left(cast({column} as varchar), {_PATTERNS[by][0]})"


def cut_of(value: str | None, by: str) -> str:
    """The file a row goes to: the day (month) of its date, or OTHER."""
    return value if value is not None and _PATTERNS[by][1].fullmatch(value) else OTHER


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _after(prefix: str) -> str:
    """The least string above every string that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass
class Plan:
    """What the export writes of a tracked table: `cuts` (all when `whole`)."""

    table: RawTable
    spec: Incremental
    folder: Path
    stamps: Stamps
    by: str
    counts: dict[str, tuple[int, int]]  # cut -> rows, rows stamped after the watermark
    days: list[str]  # the cuts that are days (months): every other date goes to OTHER
    previous: FolderState | None
    whole: str | None  # why it is written whole
    cuts: list[str] = field(default_factory=list)  # the cuts written

    @property
    def rows(self) -> int:
        return sum(self.counts[cut][0] for cut in self.cuts)


def plan(duck: duckdb.DuckDBPyConnection, table: RawTable, spec: Incremental, root: Path,
         full: bool) -> Plan:
    folder = root / table.schema / table.name
    state = read_state(folder)
    previous = (Previous(state.signature, state.watermark, state.rows) if state else None)
    now = stamps(duck, table, spec, state.watermark if state else None)
    whole = full_reason(table, spec, previous, now, full)
    by = granularity(table.rows, state.granularity if state else None)
    if whole is None and state is not None and by != state.granularity:
        whole = f"{table.rows:,} rows: cut by {by} from now on"
    if whole is None and state is not None and any(
            not (folder / name).is_file() for p in state.parts.values() for name in p.files):
        whole = "files of its folder are missing"
    source = f"{quote_ident(table.schema)}.{quote_ident(table.name)}"
    counts: dict[str, tuple[int, int]] = {}
    days: set[str] = set()  # the dates that are days (months)
    for value, rows, changed in duck.execute(
            f"""select {date_sql(spec, by)} as v, count(*),
                       count(*) filter (where {quote_ident(spec.stamp)} > ?)
                from {source} group by v""",
            [state.watermark if state else None]).fetchall():
        cut = cut_of(value, by)
        if cut != OTHER:
            days.add(cut)
        before = counts.get(cut, (0, 0))
        counts[cut] = (before[0] + rows, before[1] + changed)
    result = Plan(table, spec, folder, now, by, counts, sorted(days), state, whole)
    if whole is not None or state is None:
        result.cuts = sorted(counts)
    else:
        result.cuts = sorted(
            cut for cut, (rows, changed) in counts.items()
            if changed or cut not in state.parts or state.parts[cut].rows != rows
        )
    return result


def write(duck: duckdb.DuckDBPyConnection, plan: Plan, select_sql: str) -> Path:
    """Write `plan`'s cuts of the rows of `select_sql`, link the others, record, swap in."""
    final = plan.folder
    final.parent.mkdir(parents=True, exist_ok=True)
    fresh = final.parent / f".{final.name}.new-{os.getpid()}"
    written = final.parent / f".{final.name}.cuts-{os.getpid()}"
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    for leftover in (fresh, written, old):
        shutil.rmtree(leftover, ignore_errors=True)
    fresh.mkdir()
    parts: dict[str, Part] = {}
    try:
        if not plan.counts:  # no rows: one empty file, so that Spark finds the columns
            target = str(fresh / "part-0.parquet").replace("'", "''")
            duck.execute(f"copy ({select_sql}) to '{target}' (format parquet, compression zstd)")
        elif plan.cuts:
            date = date_sql(plan.spec, plan.by)
            cut = (f"case when {date} in ({', '.join(map(_literal, plan.days))}) then {date} "
                   f"else '{OTHER}' end" if plan.days else f"'{OTHER}'")
            where = ""
            if len(plan.cuts) < len(plan.counts):
                where = f"where {_CUT_COLUMN} in ({', '.join(map(_literal, plan.cuts))})"
                if OTHER not in plan.cuts:  # on the column: DuckDB skips row groups out of it
                    column = ".".join(quote_ident(name) for name in plan.spec.date_path)
                    where += (f" and {column} >= {_literal(plan.cuts[0])}"
                              f" and {column} < {_literal(_after(plan.cuts[-1]))}")
            target = str(written).replace("'", "''")
            duck.execute(
                f"""copy (select * from (select *, {cut} as {_CUT_COLUMN}
                          from ({select_sql})) {where})
                    to '{target}' (format parquet, compression zstd,
                                   partition_by ({_CUT_COLUMN}))"""
            )
            for cut in plan.cuts:
                files = sorted((written / f"{_CUT_COLUMN}={cut}").glob("*.parquet"))
                names = [f"part-{cut}-{i}.parquet" for i in range(len(files))]
                for file, name in zip(files, names, strict=True):
                    file.rename(fresh / name)
                parts[cut] = Part(plan.counts[cut][0], names)
        if plan.whole is None and plan.previous is not None:
            for cut, part in plan.previous.parts.items():
                if cut in plan.counts and cut not in parts:  # unchanged: the same files
                    for name in part.files:
                        _link(final / name, fresh / name)
                    parts[cut] = part
        state = FolderState(signature(plan.table, plan.spec), plan.stamps.latest,
                            plan.table.rows, plan.by, parts)
        (fresh / STATE_FILE).write_text(state.to_json())
        if final.exists():
            final.rename(old)
        fresh.rename(final)
    finally:
        for leftover in (fresh, written, old):
            shutil.rmtree(leftover, ignore_errors=True)
    return final


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        with contextlib.suppress(shutil.SameFileError):
            shutil.copy2(source, target)
