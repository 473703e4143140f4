"""Landing Graph pages into DuckDB: one writer thread, bulk SQL, idempotent.

Fetching threads hand over pages as Graph sent them (bytes). The writer spools the records
of a batch of pages to disk, a record per line as Graph sent it (a page is split, its records
are not decoded), and lets DuckDB's own JSON reader parse and type them in one statement
(`read_json` with the raw tables' column types), then, in one transaction, replaces the rows
of the same keys, marks `@removed` ones, and stores each stream's checkpoint (next link or
delta link). Landing a page twice therefore changes nothing, and a run killed between two
batches resumes from the last stored checkpoint.

A record DuckDB cannot type (say `toRecipients: "oops"`) is kept whole in
`raw_graph.malformed_records` with the reason, and counted; the rest of its page lands.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import msgspec
import orjson

from loaders.schema import (
    EVENT_FIELDS,
    GRAPH_SCHEMA,
    LOADER_SCHEMA,
    MESSAGE_FIELDS,
    RAW_DDL,
    REMOVED,
)
from loaders.warehouse import insert_rows, record_runs, run_row, transaction, utc_now

log = logging.getLogger(__name__)

MESSAGE_COLUMNS = ", ".join(f'"{name}"' for name in MESSAGE_FIELDS)
EVENT_COLUMNS = ", ".join(f'"{name}"' for name in EVENT_FIELDS)
# the write-ahead log a load lets grow before DuckDB checkpoints (start())
CHECKPOINT_THRESHOLD = "256MB"
# Stored message copies a load replaces or flags removed between two checkpoints. DuckDB keeps
# the part of the table around each deleted row in memory until the next checkpoint: in a
# 75 M-copy warehouse, one delete of 8,000 copies scattered over the year needs more than the
# loader's 256MB, and 20,000 replaced in small batches (a daily run of many mailboxes: read
# flags, moves, deletions) ran out of memory with a checkpoint every 2,000, not every 1,000
# (bench/replacing.py). A batch that would replace more is landed in halves.
REPLACED_PER_CHECKPOINT = 1_000
# Calendars wait until this much of them has come (or the load ends), then land together: a
# landing's dozen statements cost about as much for one mailbox's calendar as for twenty
# (50 mailboxes: 0.5 s of the writer's time in 8 landings, 0.2 s in one).
SNAPSHOT_BATCH_BYTES = 4 << 20


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


@dataclass
class StreamStats:
    started_at: datetime = field(default_factory=utc_now)
    pages: int = 0
    records: int = 0
    removed: int = 0
    malformed: int = 0


@dataclass
class PageItem:
    """One Graph page of a stream; `checkpoint` is where the stream stands once it has landed."""

    kind: str  # "messages" | "events"
    mailbox_id: str
    stream: str
    raw: bytes
    folder_id: str | None = None
    checkpoint: dict | None = None  # {"window_start", "next_link", "delta_link"}


@dataclass
class SnapshotItem:
    """All pages of a mailbox's calendar view: rows not in it are marked removed."""

    mailbox_id: str
    stream: str
    raws: list[bytes]
    window_start: datetime


@dataclass
class StreamEnd:
    mailbox_id: str
    stream: str
    status: str = "succeeded"
    error: str | None = None


@dataclass
class FolderList:
    """A mailbox's mail folders as listed in this run: they replace the stored ones. Each row:
    the FOLDER_FIELDS values, then why the folder is left out of the load (or None)."""

    mailbox_id: str
    rows: list[list]


_STOP = object()


class Lander:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        run_id: str,
        batch_bytes: int = 64 << 20,
        on_landed: Callable[[int], None] | None = None,
    ) -> None:
        self._con = con
        self.run_id = run_id
        self._batch_bytes = batch_bytes
        self._on_landed = on_landed or (lambda n: None)
        # room for about two batches of ~1 MB pages: fetching runs ahead of the writer by a
        # batch, and waits (memory stays flat) when the writer falls further behind
        self._queue: queue.Queue = queue.Queue(maxsize=2 * max(1, batch_bytes >> 20))
        self._thread = threading.Thread(target=self._run, name="lander", daemon=True)
        _sweep_spools()
        self._spool_dir = Path(tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-"))
        self._seq = 0
        self._replaced = 0  # stored copies replaced or flagged removed since the last checkpoint
        # calendars not landed yet, and the ends of their streams (recorded once they have)
        self._snapshots: list[SnapshotItem] = []
        self._snapshot_ends: list[StreamEnd] = []
        self.stats: dict[tuple[str, str], StreamStats] = {}
        self.error: BaseException | None = None

    # ---------------------------------------------------------------- producer side
    def start(self) -> None:
        # DuckDB checkpoints whenever its write-ahead log passes 16 MB: every few batches of
        # a load, each time rewriting the row groups the last one wrote (measured at 50
        # mailboxes: a third of the writer's time). The load checkpoints once, at its end
        # (warehouse.compact); a killed load replays its log at the next start.
        self._con.execute(f"set checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        # While pages come in, the fetching threads need a core (one interpreter: at most one)
        # and DuckDB the others, not all of them. On two cores, one DuckDB thread instead of two
        # did the writer's work in ~0.5 CPU-s less per 50 mailboxes, and the load ended ~0.3 s
        # sooner. Once fetching is over (close), the last batch and the load's final checkpoint
        # (warehouse.compact) have them all.
        cores = int(self._con.execute("select current_setting('threads')").fetchone()[0])
        self._con.execute(f"set threads = {max(1, cores - 1)}")
        self._thread.start()

    def put(self, item: object) -> None:
        while True:
            if self.error is not None:
                raise RuntimeError("the writer stopped") from self.error
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Land what is queued, stop the writer, and re-raise its failure if any."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        with contextlib.suppress(duckdb.Error):
            self._con.execute("reset checkpoint_threshold")
            self._con.execute("reset threads")
        shutil.rmtree(self._spool_dir, ignore_errors=True)
        if self.error is not None:
            raise self.error

    # ---------------------------------------------------------------- writer side
    def _run(self) -> None:
        stopping = False
        try:
            while not stopping:
                # The writer takes what has queued while it was busy, up to `batch_bytes` of
                # pages; with nothing queued it waits for the next item. Other items (a
                # stream's end, a calendar, a folder list) wait for the pages they follow.
                batch: list[PageItem] = []
                deferred: list[object] = []
                size = 0
                item = self._queue.get()
                while True:
                    if item is _STOP:
                        stopping = True
                        # nothing is fetched any more: what is left lands on every core
                        self._con.execute("reset threads")
                        break
                    if isinstance(item, PageItem):
                        batch.append(item)
                        size += len(item.raw)
                    else:
                        deferred.append(item)
                    if size >= self._batch_bytes:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                self._land_pages(batch)
                # the folder lists that came with this batch in one transaction; the calendars
                # once SNAPSHOT_BATCH_BYTES of them have come; then the ends of the streams
                # whose records have all landed
                self._land_folder_lists([i for i in deferred if isinstance(i, FolderList)])
                self._snapshots += [i for i in deferred if isinstance(i, SnapshotItem)]
                waiting = {(i.mailbox_id, i.stream) for i in self._snapshots}
                ended = []
                for item in deferred:
                    if isinstance(item, StreamEnd):
                        if (item.mailbox_id, item.stream) in waiting:
                            self._snapshot_ends.append(item)
                        else:
                            ended.append(self._run_row(item))
                    elif not isinstance(item, SnapshotItem | FolderList):
                        raise TypeError(f"unexpected item {type(item).__name__}")
                if stopping or sum(
                    len(raw) for i in self._snapshots for raw in i.raws
                ) >= SNAPSHOT_BATCH_BYTES:
                    self._land_snapshots(self._snapshots)
                    ended += [self._run_row(i) for i in self._snapshot_ends]
                    self._snapshots, self._snapshot_ends = [], []
                record_runs(self._con, ended)
        except BaseException as exc:  # noqa: BLE001 - handed to the producer side
            self.error = exc
            if stopping:  # close()'s stop came with the failed batch: it waits for this thread
                return
            # keep draining so producers blocked on put() notice the error and stop
            while True:
                try:
                    if self._queue.get(timeout=0.5) is _STOP:
                        return
                except queue.Empty:
                    if not threading.main_thread().is_alive():
                        return

    def _run_row(self, item: StreamEnd) -> list:
        stats = self.stats.pop((item.mailbox_id, item.stream), StreamStats())
        return run_row(
            self.run_id, "graph", item.mailbox_id, item.stream, item.status,
            stats.started_at, stats.pages, stats.records, stats.removed, stats.malformed,
            item.error,
        )

    def _stats(self, mailbox_id: str, stream: str) -> StreamStats:
        return self.stats.setdefault((mailbox_id, stream), StreamStats())

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

    def _read_pages(
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

    def _land_pages(self, batch: list[PageItem]) -> None:
        if not batch:
            return
        now = utc_now()
        con = self._con
        # parsing happens outside the transaction: a record DuckDB cannot type must not
        # abort it (its page is then read without that record)
        bad = self._read_pages("messages", [item.raw for item in batch], "incoming",
                               [(item.mailbox_id, item.folder_id) for item in batch])
        counts = con.execute(
            """select p, count(id), count("@removed"),
                count(*) filter (where "@removed" is null and id is not null and (
                    "from" is null or internetMessageId is null or sentDateTime is null))
            from incoming group by p"""
        ).fetchall()
        replacing = self._find_stored()
        if replacing > REPLACED_PER_CHECKPOINT and len(batch) > 1:
            self._checkpoint()
            half = len(batch) // 2
            self._land_pages(batch[:half])
            self._land_pages(batch[half:])
            return
        if self._replaced + replacing > REPLACED_PER_CHECKPOINT and self._checkpoint():
            self._find_stored()  # a checkpoint may move rows: their row ids again
        with transaction(con):
            con.execute(
                f"""update {GRAPH_SCHEMA}.messages set _removed = true, _run_id = ?, _loaded_at = ?
                where rowid in (select row_id from stored where is_removal)""",
                [self.run_id, now],
            )
            con.execute(
                f"""delete from {GRAPH_SCHEMA}.messages
                where rowid in (select row_id from stored where not is_removal)"""
            )
            con.execute(
                f"""insert into {GRAPH_SCHEMA}.messages
                select {MESSAGE_COLUMNS}, _mailbox_id, _folder_id, false, null, ?, ?
                from incoming where "@removed" is null and id is not null""",
                [self.run_id, now],
            )
            self._land_malformed(
                [(batch[p].mailbox_id, batch[p].stream, rec, why) for p, rec, why in bad], now
            )
            self._save_checkpoints(batch, now)
        self._replaced += replacing
        for item in batch:
            self._stats(item.mailbox_id, item.stream).pages += 1
        landed = 0
        for p, records, removed, malformed in counts:
            stats = self._stats(batch[p].mailbox_id, batch[p].stream)
            stats.records += records - removed
            stats.removed += removed
            stats.malformed += malformed
            landed += records
        for p, _, _ in bad:
            self._stats(batch[p].mailbox_id, batch[p].stream).malformed += 1
        self._on_landed(landed)

    def _find_stored(self) -> int:
        """Into temp table `stored`: the row ids of the stored copies that the records of temp
        table `incoming` replace (a new version) or flag removed (one scan); their number."""
        self._con.execute(
            f"""create or replace temp table stored as
            select distinct t.rowid as row_id, i."@removed" is not null as is_removal
            from {GRAPH_SCHEMA}.messages as t
            join incoming as i on t._mailbox_id = i._mailbox_id and t.id = i.id"""
        )
        return self._con.execute("select count(distinct row_id) from stored").fetchone()[0]

    def _checkpoint(self) -> bool:
        """Write what the load changed so far into the file (releasing the memory DuckDB holds
        for the rows replaced since the last checkpoint); whether there was any to write."""
        if not self._replaced:
            return False
        self._con.execute("checkpoint")
        self._replaced = 0
        return True

    def _land_snapshots(self, items: list[SnapshotItem]) -> None:
        """Replace the calendar of each mailbox in `items` with its snapshot: new and changed
        events (by the hash of the record) replace the stored ones, events missing from the
        snapshot are marked removed. One transaction for them all."""
        if not items:
            return
        now = utc_now()
        con = self._con
        mailboxes = [item.mailbox_id for item in items]
        pages = [(item.mailbox_id, item.stream, raw) for item in items for raw in item.raws]
        if pages:
            bad = self._read_pages("events", [raw for _, _, raw in pages], "incoming_events",
                                   [(mailbox_id, None) for mailbox_id, _, _ in pages])
        else:
            bad = []
            con.execute(
                f"create or replace temp table incoming_events as select _mailbox_id, "
                f"{EVENT_COLUMNS} from {GRAPH_SCHEMA}.events where false"
            )
        con.execute(
            f"""create or replace temp table incoming_hashed as
            select _mailbox_id, {EVENT_COLUMNS},
                md5(cast(to_json(struct_pack({EVENT_COLUMNS})) as varchar)) as _record_hash
            from incoming_events where id is not null"""
        )
        con.execute("create or replace temp table snapshot_mailboxes (_mailbox_id varchar)")
        insert_rows(con, "snapshot_mailboxes", [[mailbox_id] for mailbox_id in mailboxes])
        with transaction(con):
            changed = dict(con.execute(
                f"""select i._mailbox_id, count(*) from incoming_hashed as i
                where not exists (select 1 from {GRAPH_SCHEMA}.events as t
                    where t._mailbox_id = i._mailbox_id and t.id = i.id
                      and t._record_hash = i._record_hash and not t._removed)
                group by i._mailbox_id"""
            ).fetchall())
            con.execute(
                f"""delete from {GRAPH_SCHEMA}.events as t
                using incoming_hashed as i
                where t._mailbox_id = i._mailbox_id and t.id = i.id
                  and (t._record_hash is distinct from i._record_hash or t._removed)"""
            )
            con.execute(
                f"""insert into {GRAPH_SCHEMA}.events
                select {EVENT_COLUMNS}, _mailbox_id, false, _record_hash, ?, ?
                from incoming_hashed as i
                where not exists (select 1 from {GRAPH_SCHEMA}.events as t
                    where t._mailbox_id = i._mailbox_id and t.id = i.id)""",
                [self.run_id, now],
            )
            gone = f"""from {GRAPH_SCHEMA}.events as t
                where t._mailbox_id in (select _mailbox_id from snapshot_mailboxes)
                  and not t._removed
                  and not exists (select 1 from incoming_hashed as i
                      where i._mailbox_id = t._mailbox_id and i.id = t.id)"""
            removed = dict(con.execute(
                f"select t._mailbox_id, count(*) {gone} group by t._mailbox_id"
            ).fetchall())
            con.execute(
                f"""update {GRAPH_SCHEMA}.events as u set _removed = true, _run_id = ?,
                    _loaded_at = ?
                where exists (select 1 {gone} and t._mailbox_id = u._mailbox_id
                    and t.id = u.id)""",
                [self.run_id, now],
            )
            malformed = dict(con.execute(
                """select _mailbox_id, count(*) from incoming_hashed
                where organizer is null or start is null or "end" is null or iCalUId is null
                group by _mailbox_id"""
            ).fetchall())
            self._land_malformed(
                [(pages[p][0], pages[p][1], rec, why) for p, rec, why in bad], now
            )
            self._save_states([[item.mailbox_id, item.stream, item.window_start, None, None, now]
                               for item in items])
        for p, _, _ in bad:
            malformed[pages[p][0]] = malformed.get(pages[p][0], 0) + 1
        for item in items:
            stats = self._stats(item.mailbox_id, item.stream)
            stats.pages += len(item.raws)
            stats.records += changed.get(item.mailbox_id, 0)
            stats.removed += removed.get(item.mailbox_id, 0)
            stats.malformed += malformed.get(item.mailbox_id, 0)
        self._on_landed(sum(changed.values()))

    def _land_folder_lists(self, items: list[FolderList]) -> None:
        """Replace the stored folders of each mailbox in `items`, in one transaction (at 50
        mailboxes, one commit per mailbox took ~0.3 s of the writer's time)."""
        if not items:
            return
        latest = {item.mailbox_id: item.rows for item in items}  # one list per mailbox
        now = utc_now()
        with transaction(self._con):
            self._con.execute(
                f"delete from {GRAPH_SCHEMA}.mail_folders where _mailbox_id in (select unnest(?))",
                [list(latest)],
            )
            insert_rows(
                self._con, f"{GRAPH_SCHEMA}.mail_folders",
                [[*row[:-1], mailbox_id, row[-1], self.run_id, now]
                 for mailbox_id, rows in latest.items() for row in rows],
            )

    def _land_malformed(self, rows: list[tuple[str, str, str, str]], now: datetime) -> None:
        insert_rows(
            self._con, f"{GRAPH_SCHEMA}.malformed_records",
            [[*row, self.run_id, now] for row in rows],
        )

    def _save_checkpoints(self, batch: list[PageItem], now: datetime) -> None:
        latest: dict[tuple[str, str], dict] = {}
        for item in batch:
            if item.checkpoint is not None:
                latest[(item.mailbox_id, item.stream)] = item.checkpoint
        self._save_states(
            [[mailbox_id, stream, point["window_start"], point.get("next_link"),
              point.get("delta_link"), now] for (mailbox_id, stream), point in latest.items()]
        )

    def _save_state(
        self,
        mailbox_id: str,
        stream: str,
        window_start: datetime,
        next_link: str | None,
        delta_link: str | None,
        now: datetime,
    ) -> None:
        self._save_states([[mailbox_id, stream, window_start, next_link, delta_link, now]])

    def _save_states(self, rows: list[list]) -> None:
        if not rows:
            return
        self._con.execute(
            f"""delete from {LOADER_SCHEMA}.graph_sync_state
            where (mailbox_id, stream) in (select unnest(?), unnest(?))""",
            [[r[0] for r in rows], [r[1] for r in rows]],
        )
        insert_rows(self._con, f"{LOADER_SCHEMA}.graph_sync_state", rows)


SPOOL_PREFIX = "graph-spool-"  # + the writing process's id + "-": tempfile.gettempdir()


def remove_graph(con: duckdb.DuckDBPyConnection) -> None:
    """`python -m loaders remove graph`: every landed Graph record, the sync state (the next
    load starts again from a full year) and the Graph runs, in one transaction."""
    with transaction(con):
        # dropped and created empty, not emptied row by row: DuckDB holds memory for deleted rows
        # until a checkpoint (a year of 2,500 mailboxes: gigabytes, past the loader's limit)
        for table in ("users", "mail_folders", "messages", "events", "malformed_records"):
            con.execute(f"drop table {GRAPH_SCHEMA}.{table}")
        for statement in RAW_DDL:
            con.execute(statement)
        con.execute(f"delete from {LOADER_SCHEMA}.graph_sync_state")
        con.execute(f"delete from {LOADER_SCHEMA}.load_runs where source = 'graph'")


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
