"""Graph pages into a temp table of typed records: how the writer parses what it lands.

The records of a batch of pages are spooled to disk, a record per line as Graph sent it (a page
is split, its records are not decoded), and DuckDB's own JSON reader parses and types them in
one statement (`read_json` with the raw tables' column types). A record DuckDB cannot type
(say `toRecipients: "oops"`), or a page that is not JSON, is set aside with the reason, for
`raw_graph.malformed_records`; the rest of its page is read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import duckdb
import msgspec
import orjson

from loaders.schema import EVENT_FIELDS, GRAPH_SCHEMA, MESSAGE_FIELDS, REMOVED
from loaders.warehouse import insert_rows

SPOOL_PREFIX = "graph-spool-"  # + the writing process's id + "-": tempfile.gettempdir()

# the columns `read_json` types each spooled record into: its page's index in the batch, the
# landed properties, and the `@removed` annotation of a delta
READ_COLUMNS = {
    kind: {"_page": "BIGINT", **fields, "@removed": REMOVED}
    for kind, fields in (("messages", MESSAGE_FIELDS), ("events", EVENT_FIELDS))
}


class _Records(msgspec.Struct):
    """A collection page's `value`: each record as the bytes Graph sent, not decoded."""

    value: list[msgspec.Raw] = []


_RECORDS = msgspec.json.Decoder(_Records)


class _Unsplittable(ValueError):
    """A page that is not JSON, or whose `value` is not a list of objects."""


class PageReader:
    """Reads batches of pages into temp tables through spool files in a folder of its own
    (removed by `close`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        _sweep_spools()
        self._spool_dir = Path(tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-"))
        self._seq = 0

    def close(self) -> None:
        shutil.rmtree(self._spool_dir, ignore_errors=True)

    def read(
        self, kind: str, raws: list[bytes], table: str, owners: list[tuple[str, str | None]]
    ) -> list[tuple[int, str, str]]:
        """Parse pages into temp `table`, in one statement: each record's page index `p`, the
        page's mailbox and folder (`owners`, by page) and the typed columns.

        Returns the records DuckDB could not type as (page index, record json, problem); the
        rest of their pages is read without them.
        """
        try:
            self._create_incoming(kind, raws, table, owners)
            return []
        except (duckdb.Error, _Unsplittable):
            pass
        bad: list[tuple[int, str, str]] = []
        cleaned = list(raws)
        for index, raw in enumerate(raws):
            try:
                self._create_incoming(kind, [raw], "probe")
                continue
            except (duckdb.Error, _Unsplittable):
                pass
            try:  # the transport reads a page's links only: the rest may turn out broken
                page = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                page, problem = None, f"the page is not JSON: {exc}"
            else:
                problem = "the page holds no list of records (`value`)"
            if not isinstance(page, dict) or not isinstance(page.get("value", []), list):
                bad.append((index, raw.decode("utf-8", "replace"), problem))
                cleaned[index] = b'{"value": []}'
                continue
            good = []
            for record in page.get("value") or []:
                try:
                    self._create_incoming(kind, [orjson.dumps({"value": [record]})], "probe")
                    good.append(record)
                except (duckdb.Error, _Unsplittable) as exc:
                    bad.append((index, orjson.dumps(record).decode(), str(exc).splitlines()[0]))
            page["value"] = good
            cleaned[index] = orjson.dumps(page)
        self._create_incoming(kind, cleaned, table, owners)
        return bad

    def _create_incoming(
        self, kind: str, raws: list[bytes], table: str,
        owners: list[tuple[str, str | None]] | None = None,
    ) -> None:
        """Typed records of `raws` into temp `table`, with their pages' `owners` if given."""
        path = self._spool(raws)
        owner = "o._mailbox_id, o._folder_id," if owners else ""
        join = """join (select unnest(?) as p, unnest(?) as _mailbox_id,
                        unnest(?) as _folder_id) as o
                  on o.p = r._page""" if owners else ""
        pages = [list(range(len(owners))), *map(list, zip(*owners, strict=True))] if owners else []
        try:
            self._con.execute(
                f"""create or replace temp table {table} as
                select r._page as p, {owner} r.* exclude (_page)
                from read_json(?, columns = {READ_COLUMNS[kind]!r},
                               format = 'newline_delimited') as r
                {join}""",
                [path, *pages],
            )
        finally:
            Path(path).unlink(missing_ok=True)

    def _spool(self, raws: list[bytes]) -> str:
        """Write the records of the pages into one file, a record per line, its members as Graph
        sent them after the index of its page: `{"_page": i, "id": ...}` (JSON strings hold no
        raw line break, so line breaks are whitespace and become spaces). Flat lines are what
        DuckDB's reader parses fastest, in parallel (twice as fast as a page per line). A record
        past the reader's 16 MB per object (metadata comes nowhere near) is set aside as
        malformed, as one it cannot type.
        """
        self._seq += 1
        path = self._spool_dir / f"{self._seq:09d}.json"
        with path.open("wb") as out:
            for index, raw in enumerate(raws):
                try:
                    records = _RECORDS.decode(raw.replace(b"\n", b" ").replace(b"\r", b" ")).value
                except msgspec.DecodeError as exc:
                    raise _Unsplittable(f"the page is not a JSON collection page: {exc}") from exc
                head = b'{"_page":%d,' % index
                lines = []
                for record in records:
                    view = memoryview(record)
                    if view[0] != ord("{"):
                        raise _Unsplittable("the record is not a JSON object")
                    if len(view) < 16 and not bytes(view[1:-1]).strip():  # {}: no members
                        lines.append(head[:-1])
                    else:
                        lines.append(head)
                    lines.append(view[1:])
                    lines.append(b"\n")
                out.write(b"".join(lines))
        return str(path)


def land_malformed(
    con: duckdb.DuckDBPyConnection, run_id: str, rows: list[tuple[str, str, str, str]],
    now: datetime,
) -> None:
    """Keep what `PageReader.read` set aside, as (mailbox id, stream, record, problem)."""
    insert_rows(
        con, f"{GRAPH_SCHEMA}.malformed_records",
        [[*row, run_id, now] for row in rows],
    )


def _sweep_spools() -> None:
    """Remove the spool folders of loads that died without cleaning up (SIGKILL, a crash):
    those whose process is gone."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SPOOL_PREFIX}*-*"):
        pid = folder.name[len(SPOOL_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # alive, another user's
            continue
