"""The Dataverse job: `account` and `contact` into raw_dataverse, kept up to date by change
tracking.

Per table, one read at a time:
- the first run (or after an expired delta token) reads the table whole, `$select` of the
  landed columns only, with `Prefer: odata.track-changes`: its pages land in
  raw_loader.dataverse_full_<table>, and the last page (which carries the `@odata.deltaLink`)
  replaces raw_dataverse.<table> with them in the same transaction as the deltaLink is stored;
- later runs read the stored deltaLink: rows created or changed replace theirs by key, and
  `$deletedEntity` entries remove theirs; the new deltaLink is stored with the last page.
Each page is one transaction with the table's `_sync_state` row (the nextLink still to read):
a run killed at any point resumes from the page after the last one committed, and a full read
killed half-way leaves raw_dataverse.<table> as it was.

The run has its rows in raw_loader.load_runs (source `dataverse`): one per table and one for
the whole run (loaders/runs.py); a run found still `running` died, and is marked `interrupted`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import quote

import duckdb

from loaders.dataverse.client import PAGE_SIZE, DataverseClient, DeltaExpired
from loaders.errors import LoadFailed
from loaders.progress import progress_bar, say
from loaders.runs import RUN_STREAM, Run, record_runs, run_row
from loaders.schema import DATAVERSE_DDL, DATAVERSE_SCHEMA, DATAVERSE_TABLES, LOADER_SCHEMA
from loaders.settings import DataverseSettings
from loaders.warehouse import insert_rows, transaction, utc_now

SOURCE = "dataverse"
STATE = f"{DATAVERSE_SCHEMA}._sync_state"
LOOKUP = "_parentcustomerid_value"
LOOKUP_TYPE = f"{LOOKUP}@Microsoft.Dynamics.CRM.lookuplogicalname"


@dataclass(frozen=True)
class Table:
    name: str  # logical name: raw_dataverse.<name>
    entity_set: str  # the Web API's collection
    key: str
    select: tuple[str, ...]  # the Web API's names of the landed columns

    @property
    def landed(self) -> str:
        return f"{DATAVERSE_SCHEMA}.{self.name}"

    @property
    def full(self) -> str:
        return f"{LOADER_SCHEMA}.dataverse_full_{self.name}"

    @property
    def first_url(self) -> str:
        return f"{self.entity_set}?$select={quote(','.join(self.select), safe=',')}"


TABLES = (
    Table("account", "accounts", "accountid",
          ("accountid", "name", "websiteurl", "address1_city", "address1_country",
           "statecode")),
    Table("contact", "contacts", "contactid",
          ("contactid", "emailaddress1", "emailaddress2", "emailaddress3", LOOKUP,
           "statecode")),
)


@dataclass
class TableResult:
    table: str
    mode: str = "delta"  # how it ended: 'full' (read whole) or 'delta'
    pages: int = 0
    records: int = 0
    removed: int = 0


@dataclass
class DataverseLoadResult:
    run_id: str
    tables: list[TableResult] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0


def _is_deleted(table: Table, record: dict) -> bool:
    """A `$deletedEntity` entry of a delta page (OData's deleted-entity: its context, or an
    `id` and a `reason` in place of the row's key)."""
    context = record.get("@odata.context")
    return (isinstance(context, str) and context.endswith("$deletedEntity")) or (
        "reason" in record and "id" in record and table.key not in record)


def landed_row(table: Table, record: dict) -> list:
    """The row `record` lands as: the table's columns in raw_dataverse's order."""
    values = dict(record)
    if table.name == "contact":
        values["parentcustomerid"] = record.get(LOOKUP)
        values["parentcustomeridtype"] = record.get(LOOKUP_TYPE)
    state = values.get("statecode")
    values["statecode"] = int(state) if state is not None else None
    return [values.get(column) for column in DATAVERSE_TABLES[table.name]]


def _close_interrupted(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""update {LOADER_SCHEMA}.load_runs set status = 'interrupted',
            error = 'the run stopped without finishing (killed or crashed); the next run '
                || 'resumed where it stopped'
        where source = ? and stream = ? and status = 'running'""",
        [SOURCE, RUN_STREAM],
    )


def load(con: duckdb.DuckDBPyConnection, settings: DataverseSettings,
         show_progress: bool = True, page_size: int = PAGE_SIZE,
         client: DataverseClient | None = None) -> DataverseLoadResult:
    client = client or DataverseClient(settings)
    client.check_credentials()  # a refused sign-in says so before anything is written
    for statement in DATAVERSE_DDL:
        con.execute(statement)
    _close_interrupted(con)
    run = Run(con, SOURCE)
    run.mark_running()
    result = DataverseLoadResult(run.id)
    started = time.monotonic()
    status, error = "failed", None
    try:
        with progress_bar(show_progress) as bar:
            for table in TABLES:
                task = bar.add_task(table.name, total=None)
                table_started = utc_now()
                outcome = TableResult(table.name)
                try:
                    _load_table(con, client, table, run.id, page_size, outcome,
                                lambda n, t=task: bar.advance(t, n))
                except Exception as exc:
                    record_runs(con, [run_row(run.id, SOURCE, None, table.name, "failed",
                                              table_started, outcome.pages, outcome.records,
                                              outcome.removed, error=str(exc))])
                    raise
                record_runs(con, [run_row(run.id, SOURCE, None, table.name, "succeeded",
                                          table_started, outcome.pages, outcome.records,
                                          outcome.removed)])
                result.tables.append(outcome)
        status = "succeeded"
    except KeyboardInterrupt:
        status, error = "cancelled", "interrupted (Ctrl+C)"
        raise
    except Exception as exc:
        error = str(exc)
        raise
    finally:
        run.finish(status, error)
        result.requests, result.retries = client.requests_made, client.retries_made
        result.seconds = time.monotonic() - started
    return result


def _state(con: duckdb.DuckDBPyConnection, table: Table) -> tuple[str | None, str | None,
                                                                   str | None]:
    row = con.execute(f"select delta_link, next_link, reading from {STATE} "
                      "where table_name = ?", [table.name]).fetchone()
    return row if row else (None, None, None)


def _set_state(con: duckdb.DuckDBPyConnection, table: Table, delta_link: str | None,
               next_link: str | None, reading: str | None) -> None:
    con.execute(f"delete from {STATE} where table_name = ?", [table.name])
    con.execute(f"insert into {STATE} values (?, ?, ?, ?, ?)",
                [table.name, delta_link, next_link, reading, utc_now()])


def _load_table(con: duckdb.DuckDBPyConnection, client: DataverseClient, table: Table,
                run_id: str, page_size: int, outcome: TableResult, advance) -> None:
    delta_link, next_link, reading = _state(con, table)
    if next_link and reading in {"full", "delta"}:
        url, mode = next_link, reading  # a read killed half-way: its next page
    elif delta_link:
        url, mode = delta_link, "delta"
    else:
        url, mode = table.first_url, "full"
        con.execute(f"delete from {table.full}")
    while True:
        try:
            page = client.get(url, page_size, track_changes=mode == "full")
        except DeltaExpired:
            if mode != "delta":
                raise
            say(f"the change-tracking token of {table.name} has expired (Dataverse keeps "
                "changes 7 days by default): reading the whole table once instead, then "
                "changes again from the next run.")
            url, mode, delta_link = table.first_url, "full", None
            with transaction(con):
                con.execute(f"delete from {table.full}")
                _set_state(con, table, None, None, None)
            continue
        upserts: dict[str, list] = {}
        deleted: set[str] = set()
        for record in page["value"]:
            if not isinstance(record, dict):
                continue
            if _is_deleted(table, record):
                key = str(record.get("id"))
                upserts.pop(key, None)
                deleted.add(key)
            else:
                row = landed_row(table, record)
                if row[0] is None:
                    raise LoadFailed(f"Dataverse sent a {table.name} without its {table.key}")
                upserts[row[0]] = row
                deleted.discard(row[0])
        loaded_at = utc_now()
        rows = [[*row, run_id, loaded_at] for row in upserts.values()]
        next_link = page.get("@odata.nextLink")
        new_delta = page.get("@odata.deltaLink")
        with transaction(con):
            if mode == "full":
                insert_rows(con, table.full, rows)
            else:
                keys = list(upserts) + sorted(deleted)
                if keys:
                    con.execute(f"delete from {table.landed} where {table.key} in "
                                "(select unnest(?::varchar[]))", [keys])
                insert_rows(con, table.landed, rows)
            if next_link:
                _set_state(con, table, delta_link, next_link, mode)
            else:
                if mode == "full":
                    con.execute(f"delete from {table.landed}")
                    con.execute(
                        f"insert into {table.landed} select * from {table.full} "
                        f"qualify row_number() over (partition by {table.key} "
                        "order by _loaded_at desc) = 1")
                    con.execute(f"delete from {table.full}")
                _set_state(con, table, new_delta, None, None)
        outcome.pages += 1
        outcome.records += len(rows)
        outcome.removed += len(deleted)
        outcome.mode = mode
        advance(len(rows) + len(deleted))
        if not next_link:
            if not new_delta:
                say(f"Dataverse sent no change-tracking link for {table.name}: switch on "
                    "'Track changes' for the table (Power Apps, Tables > the table > "
                    "Properties > Advanced options); until then each run reads it whole.")
            return
        url = next_link
