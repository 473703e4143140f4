"""`python -m loaders graph`: land a year of the selected mailboxes' mail and calendar metadata.

Streams, per mailbox:
- `messages:<folder id>` for every mail folder that holds real mail. Read with the per-folder
  message delta query (`$select`ed metadata only, `receivedDateTime ge <window start>`,
  `Prefer: odata.maxpagesize=1000`). Each landed page stores its `@odata.nextLink`, so a run
  killed mid-way resumes there; the final `@odata.deltaLink` is stored, so the next run
  fetches only what was added, changed or deleted (`@removed`) since.
- `events`: the calendar view of the window (occurrences of recurring series expanded),
  `$select`ed, times in UTC (`Prefer: outlook.timezone="UTC"`). It is read whole each run (a
  few hundred occurrences per mailbox) and reconciled: only new or changed occurrences are
  written (by content hash), and occurrences gone from the view are marked `_removed`.
"""

from __future__ import annotations

import gc
import logging
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import duckdb

from loaders.errors import BadInput, LoadFailed
from loaders.graph import mailboxes as mailbox_selection
from loaders.graph import sync_state
from loaders.graph.landing import FolderList, Lander, PageItem, SnapshotItem, StreamEnd
from loaders.graph.mailboxes import Mailbox
from loaders.graph.transport import PER_MAILBOX_LIMIT, GraphClient, GraphNotFound, SyncStateExpired
from loaders.progress import progress_bar
from loaders.runs import Run, close_interrupted_runs
from loaders.schema import EVENT_FIELDS, FOLDER_FIELDS, GRAPH_SCHEMA, MESSAGE_FIELDS, USER_FIELDS
from loaders.settings import GraphSettings, window_days
from loaders.warehouse import insert_rows, transaction, utc_now

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # Graph's maximum page size for messages and events
# Mailboxes loaded in parallel: at 300 ms per request, 8 take twice as long as 32 on a 2-core
# machine, and past 32 it is the CPU that binds
# (`make bench`, bench/README.md, 'Loader benchmark')
DEFAULT_WORKERS = 32
# Well-known folders that hold no real mail (Drafts are unsent; the rest are system folders).
EXCLUDED_FOLDERS = ("drafts", "outbox", "conversationhistory", "syncissues", "junkemail")
MESSAGE_SELECT = ",".join(MESSAGE_FIELDS)
EVENT_SELECT = ",".join(EVENT_FIELDS)
FOLDER_SELECT = ",".join([*FOLDER_FIELDS, "childFolderCount"])


@dataclass(frozen=True)
class Window:
    """The `window_days()` days (dbt_project.yml, 365 as shipped) ending on `as_of`
    (inclusive), as UTC instants [start, end)."""

    as_of: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.as_of - timedelta(days=window_days() - 1), time(0))

    @property
    def end(self) -> datetime:
        return datetime.combine(self.as_of + timedelta(days=1), time(0))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Counter:
    """Records landed so far: the writer adds, the run's result reads."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.value += n


@dataclass(frozen=True)
class GraphRun:
    """What every part of a Graph load shares: the run (warehouse connection, id, start), the
    client, the selected mailboxes, the window, how many mailboxes load in parallel, whether
    the progress bar shows, and the records landed so far."""

    run: Run
    client: GraphClient
    mailboxes: list[Mailbox]
    window: Window
    workers: int = DEFAULT_WORKERS
    show_progress: bool = True
    landed: _Counter = field(default_factory=_Counter)


@dataclass
class GraphLoadResult:
    run_id: str
    mailboxes: int
    streams: int
    failed_streams: int
    records: int
    requests: int
    seconds: float
    retries: int = 0  # of those requests, how many urllib3 sent again


def load(
    con: duckdb.DuckDBPyConnection,
    settings: GraphSettings,
    mailboxes: list[str],
    groups: list[str],
    as_of: date,
    workers: int = DEFAULT_WORKERS,
    show_progress: bool = True,
) -> GraphLoadResult:
    mailbox_selection.validate_selection(mailboxes, groups)
    if workers < 1:
        raise BadInput("--workers must be at least 1.")
    started = utc_now()
    client = GraphClient(settings)
    client.check_credentials()
    selected = mailbox_selection.resolve(client, mailboxes, groups)
    graph_run = GraphRun(Run(con, "graph", started), client, selected, Window(as_of), workers,
                         show_progress)
    run = graph_run.run
    close_interrupted_runs(con)
    _land_users(graph_run)
    run.mark_running()
    log.info(
        "run %s: %d mailboxes, window %s..%s", run.id, len(selected),
        graph_run.window.start.date(), as_of,
    )
    try:
        _load_streams(graph_run)
    except KeyboardInterrupt:
        run.finish("cancelled", "stopped by the user (Ctrl+C)")
        raise
    except BaseException as exc:
        run.finish("failed", str(exc)[:500])
        raise
    seconds = (utc_now() - started).total_seconds()
    streams, failed = run.stream_counts()
    run.finish("failed" if failed else "succeeded",
               f"{failed} stream(s) failed" if failed else None)
    return GraphLoadResult(
        run.id, len(selected), streams, failed, graph_run.landed.value, client.requests_made,
        seconds, client.retries_made,
    )


def _load_streams(graph_run: GraphRun) -> None:
    """Every stream of every selected mailbox, `workers` mailboxes at a time, through one
    writer; the first stream error stops the others and is raised."""
    selected = graph_run.mailboxes
    with progress_bar(graph_run.show_progress) as progress:
        boxes = progress.add_task("mailboxes", total=len(selected))
        records = progress.add_task("records landed", total=None)

        def on_landed(n: int) -> None:
            progress.advance(records, n)
            graph_run.landed.add(n)

        lander = Lander(graph_run.run.con, graph_run.run.id, on_landed=on_landed)
        lander.start()
        sync = _MailboxSync(graph_run, lander, sync_state.stored(graph_run.run.con))
        # What exists now (modules, the client, msal's and rich's objects) outlives the load:
        # frozen, the collector's full passes, which stop every thread, walk only what the
        # load allocates (at 50 mailboxes: 0.02 s of collection instead of 0.25 s)
        gc.freeze()
        try:
            with ThreadPoolExecutor(
                max_workers=graph_run.workers, thread_name_prefix="graph"
            ) as pool:
                futures = [pool.submit(sync.run, mailbox) for mailbox in selected]
                for future in futures:
                    future.add_done_callback(lambda _: progress.advance(boxes))
                try:
                    done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                except KeyboardInterrupt:
                    # Ctrl+C: the streams stop at their next page and say so; what landed
                    # stays and the next run resumes from each stream's stored link
                    sync.cancel()
                    for future in futures:
                        future.cancel()
                    raise
                errors = [f.exception() for f in done if f.exception() is not None]
                if errors:
                    sync.cancel()
                    for future in futures:
                        future.cancel()
        finally:
            gc.unfreeze()
            lander.close()
    if errors:
        raise errors[0]


def _land_users(graph_run: GraphRun) -> None:
    con, now = graph_run.run.con, utc_now()
    with transaction(con):
        con.execute(f"delete from {GRAPH_SCHEMA}.users")
        insert_rows(
            con, f"{GRAPH_SCHEMA}.users",
            [[*(getattr(m, f) for f in USER_FIELDS), m.selected_by, graph_run.run.id, now]
             for m in graph_run.mailboxes],
        )


class _MailboxSync:
    def __init__(self, graph_run: GraphRun, lander: Lander, state: dict) -> None:
        self._client = graph_run.client
        self._lander = lander
        self._window = graph_run.window
        self._state = state
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def run(self, mailbox: Mailbox) -> None:
        """Load one mailbox: its streams run side by side, within the per-mailbox limit."""
        with ThreadPoolExecutor(
            max_workers=PER_MAILBOX_LIMIT, thread_name_prefix="stream"
        ) as streams:
            folders = self._folders(mailbox, streams)
            futures = [
                streams.submit(
                    self._stream, mailbox, f"messages:{folder['id']}", self._messages, folder["id"]
                )
                for folder in folders
                if folder["_excluded_reason"] is None
            ]
            futures.append(streams.submit(self._stream, mailbox, "events", self._events, None))
            for future in futures:
                future.result()

    def _stream(self, mailbox: Mailbox, stream: str, fn, folder_id: str | None) -> None:
        if self._cancelled.is_set():
            return
        try:
            fn(mailbox, stream, folder_id)
        except BadInput:
            raise
        except Exception as exc:
            self._lander.put(StreamEnd(mailbox.id, stream, "failed", str(exc)[:500]))
            raise
        if self._cancelled.is_set():  # stopped before its end: not a success
            self._lander.put(StreamEnd(mailbox.id, stream, "cancelled"))
            return
        self._lander.put(StreamEnd(mailbox.id, stream))

    # ------------------------------------------------------------------ folders
    def _well_known_id(self, mailbox: Mailbox, name: str) -> str | None:
        try:
            page = self._client.get(
                f"users/{mailbox.id}/mailFolders/{name}", params={"$select": "id"},
                mailbox=mailbox.id,
            )
        except GraphNotFound:
            return None
        return page.body.get("id")

    def _folders(self, mailbox: Mailbox, pool: ThreadPoolExecutor) -> list[dict]:
        excluded: dict[str, str] = {}
        ids = pool.map(lambda name: self._well_known_id(mailbox, name), EXCLUDED_FOLDERS)
        for name, folder_id in zip(EXCLUDED_FOLDERS, ids, strict=True):
            if folder_id:
                excluded[folder_id] = name
        folders: list[dict] = []
        pending = [f"users/{mailbox.id}/mailFolders"]
        while pending:
            url = pending.pop()
            for page in self._client.pages(
                url, params={"$select": FOLDER_SELECT, "$top": "250"}, mailbox=mailbox.id
            ):
                for folder in page.value:
                    parent_reason = excluded.get(folder.get("parentFolderId"))
                    reason = excluded.get(folder["id"]) or parent_reason
                    if reason:
                        excluded[folder["id"]] = reason
                    folders.append({**folder, "_excluded_reason": reason})
                    if folder.get("childFolderCount"):
                        pending.append(f"users/{mailbox.id}/mailFolders/{folder['id']}/childFolders")
        rows = [[*(f.get(k) for k in FOLDER_FIELDS), f["_excluded_reason"]] for f in folders]
        self._lander.put(FolderList(mailbox.id, rows))
        return folders

    # ------------------------------------------------------------------ messages
    def _messages(self, mailbox: Mailbox, stream: str, folder_id: str) -> None:
        window_start = self._window.start
        state = self._state.get((mailbox.id, stream))
        url, params = self._message_start(mailbox, folder_id, state, window_start)
        if state and state["window_start"] <= window_start:
            window_start = state["window_start"]  # the stored sync covers more: keep it
        try:
            self._follow(mailbox, stream, folder_id, url, params, window_start)
        except SyncStateExpired:
            log.info("%s %s: sync state expired, starting over", mailbox.mail, stream)
            url, params = self._message_start(mailbox, folder_id, None, self._window.start)
            self._follow(mailbox, stream, folder_id, url, params, self._window.start)

    def _message_start(
        self, mailbox: Mailbox, folder_id: str, state: dict | None, window_start: datetime
    ) -> tuple[str, dict | None]:
        if state and state["window_start"] <= window_start:
            link = state["next_link"] or state["delta_link"]
            if link and link.startswith(f"{self._client.base_url}/"):
                return link, None
            if link:  # stored against another GRAPH_API_URL: its links lead nowhere here
                log.warning("%s: the stored sync link is not under %s; reading the folder "
                            "again (nothing is duplicated)", mailbox.mail, self._client.base_url)
        return (
            f"users/{mailbox.id}/mailFolders/{folder_id}/messages/delta",
            {"$select": MESSAGE_SELECT, "$filter": f"receivedDateTime ge {iso(window_start)}"},
        )

    def _follow(
        self,
        mailbox: Mailbox,
        stream: str,
        folder_id: str,
        url: str,
        params: dict | None,
        window_start: datetime,
    ) -> None:
        headers = {"Prefer": f"odata.maxpagesize={PAGE_SIZE}"}
        for page in self._client.pages(url, params=params, headers=headers, mailbox=mailbox.id):
            if self._cancelled.is_set():
                return
            if not (page.next_link or page.delta_link):
                raise LoadFailed(
                    f"Graph ended the message delta of {mailbox.mail} without a next or delta link"
                )
            checkpoint = {
                "window_start": window_start,
                "next_link": page.next_link,
                "delta_link": page.delta_link,
            }
            self._lander.put(
                PageItem("messages", mailbox.id, stream, page.raw, folder_id, checkpoint)
            )

    # ------------------------------------------------------------------ events
    def _events(self, mailbox: Mailbox, stream: str, _: None) -> None:
        params = {
            "startDateTime": iso(self._window.start),
            "endDateTime": iso(self._window.end),
            "$select": EVENT_SELECT,
            "$top": str(PAGE_SIZE),
        }
        headers = {"Prefer": 'outlook.timezone="UTC"'}
        raws = [
            page.raw
            for page in self._client.pages(
                f"users/{mailbox.id}/calendarView", params=params, headers=headers,
                mailbox=mailbox.id,
            )
        ]
        if not self._cancelled.is_set():
            self._lander.put(SnapshotItem(mailbox.id, stream, raws, self._window.start))


def default_as_of() -> date:
    return datetime.now(UTC).date()
