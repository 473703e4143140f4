"""Run bookkeeping: a loader run's id and its rows in `raw_loader.load_runs`.

A Graph run writes one row per mailbox and stream (`StreamTally`, as each stream ends) and one
row for the whole run (stream `run`): `running` from its start (`Run.mark_running`); at its
end `succeeded`, `failed` or `cancelled` with the sums of its streams (`Run.finish`); a run
that died without ending (SIGKILL, a crash) is found `running` by the next run, which marks it
`interrupted` with how far it got (`close_interrupted_runs`). A Leadspace run writes one row,
at its end (`Run.record`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from loaders.schema import GRAPH_SCHEMA, LOADER_SCHEMA
from loaders.warehouse import insert_rows, utc_now

# the `stream` of a run's own row, beside one row per mailbox and stream
RUN_STREAM = "run"


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def run_row(
    run_id: str,
    source: str,
    mailbox_id: str | None,
    stream: str,
    status: str,
    started_at: datetime,
    pages: int = 0,
    records: int = 0,
    removed: int = 0,
    malformed: int = 0,
    error: str | None = None,
) -> list:
    """One `load_runs` row, finished now."""
    finished_at = utc_now()
    duration = (finished_at - started_at).total_seconds()
    return [run_id, source, mailbox_id, stream, status, started_at, finished_at, duration,
            pages, records, removed, malformed, error]


def record_runs(con: duckdb.DuckDBPyConnection, rows: list[list]) -> None:
    insert_rows(con, f"{LOADER_SCHEMA}.load_runs", rows)


@dataclass(frozen=True)
class Run:
    """One run of a loader: the warehouse it writes, what it loads (`source`), when it
    started and its id (made when the run is, so after what it checked first)."""

    con: duckdb.DuckDBPyConnection
    source: str  # "graph" | "leadspace"
    started_at: datetime = field(default_factory=utc_now)
    id: str = field(default_factory=new_run_id)

    def record(
        self, stream: str, status: str, *, pages: int = 0, records: int = 0,
        malformed: int = 0,
    ) -> None:
        """The run's one row, finished now (a Leadspace run: `stream` is its dataset)."""
        record_runs(self.con, [run_row(self.id, self.source, None, stream, status,
                                       self.started_at, pages=pages, records=records,
                                       malformed=malformed)])

    def mark_running(self) -> None:
        """The row of the whole run, `running` until `finish` (or the next run) ends it."""
        record_runs(self.con, [[self.id, self.source, None, RUN_STREAM, "running",
                                self.started_at, None, None, 0, 0, 0, 0, None]])

    def stream_counts(self) -> tuple[int, int]:
        """How many streams the run recorded, and how many of them did not succeed."""
        return self.con.execute(
            f"select count(*), count(*) filter (where status <> 'succeeded') "
            f"from {LOADER_SCHEMA}.load_runs where run_id = ? and stream <> ?",
            [self.id, RUN_STREAM],
        ).fetchone()

    def finish(self, status: str, error: str | None) -> None:
        """End the row of the whole run: its status, and the sums of its streams' rows."""
        self.con.execute(
            f"""update {LOADER_SCHEMA}.load_runs as r set
                status = ?, error = ?, finished_at = ?,
                duration_seconds = date_diff('millisecond', r.started_at, ?) / 1000,
                pages = s.pages, records = s.records, removed = s.removed,
                malformed = s.malformed
            from (select coalesce(sum(pages), 0) as pages, coalesce(sum(records), 0) as records,
                         coalesce(sum(removed), 0) as removed,
                         coalesce(sum(malformed), 0) as malformed
                  from {LOADER_SCHEMA}.load_runs where run_id = ? and stream <> ?) as s
            where r.run_id = ? and r.stream = ?""",
            [status, error, utc_now(), utc_now(), self.id, RUN_STREAM, self.id, RUN_STREAM],
        )


def close_interrupted_runs(con: duckdb.DuckDBPyConnection) -> None:
    """Mark `interrupted` the Graph runs still `running`: none can be (DuckDB lets one process
    write), so they died. Their records are what they landed; the error says how far."""
    con.execute(
        f"""update {LOADER_SCHEMA}.load_runs as r set
            status = 'interrupted',
            records = s.records,
            pages = s.pages,
            error = 'the run stopped without finishing (killed or crashed) after '
                || s.streams || ' finished stream(s) and ' || s.records
                || ' landed record(s); the next run resumed where it stopped'
        from (select w.run_id,
                     (select count(*) from {LOADER_SCHEMA}.load_runs as f
                      where f.run_id = w.run_id and f.stream <> ?) as streams,
                     (select count(*) from {GRAPH_SCHEMA}.messages as m
                      where m._run_id = w.run_id)
                     + (select count(*) from {GRAPH_SCHEMA}.events as e
                        where e._run_id = w.run_id) as records,
                     (select coalesce(sum(f.pages), 0) from {LOADER_SCHEMA}.load_runs as f
                      where f.run_id = w.run_id and f.stream <> ?) as pages
              from {LOADER_SCHEMA}.load_runs as w
              where w.source = 'graph' and w.stream = ? and w.status = 'running') as s
        where r.run_id = s.run_id and r.stream = ?""",
        [RUN_STREAM, RUN_STREAM, RUN_STREAM, RUN_STREAM],
    )


@dataclass
class StreamStats:
    started_at: datetime = field(default_factory=utc_now)
    pages: int = 0
    records: int = 0
    removed: int = 0
    malformed: int = 0


class StreamTally:
    """What each stream of a run has landed so far, by (mailbox id, stream), until its end
    makes it a `load_runs` row. Only the writer thread touches it."""

    def __init__(self, run_id: str, source: str) -> None:
        self.run_id = run_id
        self.source = source
        self.stats: dict[tuple[str, str], StreamStats] = {}

    def of(self, mailbox_id: str, stream: str) -> StreamStats:
        return self.stats.setdefault((mailbox_id, stream), StreamStats())

    def end_row(self, mailbox_id: str, stream: str, status: str, error: str | None) -> list:
        """The stream's row, finished now; the stream leaves the tally."""
        stats = self.stats.pop((mailbox_id, stream), StreamStats())
        return run_row(
            self.run_id, self.source, mailbox_id, stream, status, stats.started_at,
            stats.pages, stats.records, stats.removed, stats.malformed, error,
        )
