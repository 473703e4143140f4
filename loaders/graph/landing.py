"""Landing Graph pages into DuckDB: one writer thread, bulk SQL, idempotent.

Fetching threads hand over what they read, as Graph sent it (bytes), to the `Lander`: one
thread, the only one that writes the warehouse during a load. It takes what has queued while it
was busy, in batches, and hands each kind to the module whose job it is: message pages to
`message_merge` (rows of the same keys replaced, `@removed` ones flagged, each stream's
checkpoint stored in the same transaction: landing a page twice changes nothing, and a run
killed between two batches resumes from the last stored checkpoint), calendar snapshots to
`calendar_reconcile`, both parsed through `spool` (DuckDB's own JSON reader types the records;
one it cannot type is kept whole in `raw_graph.malformed_records`). It lands the folder lists
itself, and records each stream's `load_runs` row (`loaders.runs`) once the stream's records
have all landed.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import duckdb

from loaders.graph.calendar_reconcile import CalendarReconcile
from loaders.graph.message_merge import MessageMerge
from loaders.graph.spool import PageReader
from loaders.runs import StreamStats, StreamTally, record_runs
from loaders.schema import GRAPH_SCHEMA, LOADER_SCHEMA, RAW_DDL
from loaders.warehouse import insert_rows, transaction, utc_now

log = logging.getLogger(__name__)

# the write-ahead log a load lets grow before DuckDB checkpoints (start())
CHECKPOINT_THRESHOLD = "256MB"
# Calendars wait until this much of them has come (or the load ends), then land together: a
# landing's dozen statements cost about as much for one mailbox's calendar as for twenty
# (50 mailboxes: 0.5 s of the writer's time in 8 landings, 0.2 s in one).
SNAPSHOT_BATCH_BYTES = 4 << 20


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
    """The writer thread of a Graph load: `put` from any thread, `start`, then `close`."""

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
        on_landed = on_landed or (lambda n: None)
        # room for about two batches of ~1 MB pages: fetching runs ahead of the writer by a
        # batch, and waits (memory stays flat) when the writer falls further behind
        self._queue: queue.Queue = queue.Queue(maxsize=2 * max(1, batch_bytes >> 20))
        self._thread = threading.Thread(target=self._run, name="lander", daemon=True)
        self._reader = PageReader(con)
        self._tally = StreamTally(run_id, "graph")
        self._messages = MessageMerge(con, run_id, self._reader, self._tally, on_landed)
        self._calendars = CalendarReconcile(con, run_id, self._reader, self._tally, on_landed)
        # calendars not landed yet, and the ends of their streams (recorded once they have)
        self._snapshots: list[SnapshotItem] = []
        self._snapshot_ends: list[StreamEnd] = []
        self.error: BaseException | None = None

    @property
    def stats(self) -> dict[tuple[str, str], StreamStats]:
        """What each stream not ended yet has landed, by (mailbox id, stream)."""
        return self._tally.stats

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
        self._reader.close()
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
                            ended.append(self._end_row(item))
                    elif not isinstance(item, SnapshotItem | FolderList):
                        raise TypeError(f"unexpected item {type(item).__name__}")
                if stopping or sum(
                    len(raw) for i in self._snapshots for raw in i.raws
                ) >= SNAPSHOT_BATCH_BYTES:
                    self._land_snapshots(self._snapshots)
                    ended += [self._end_row(i) for i in self._snapshot_ends]
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

    def _end_row(self, item: StreamEnd) -> list:
        return self._tally.end_row(item.mailbox_id, item.stream, item.status, item.error)

    def _land_pages(self, batch: list[PageItem]) -> None:
        self._messages.land(batch)

    def _land_snapshots(self, items: list[SnapshotItem]) -> None:
        self._calendars.land(items)

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
