"""The command line: `python -m loaders COMMAND` or `account-engagement COMMAND`.

The console script `account-engagement` (installed with the package) has the same commands,
plus `cards` (docs/configuration.md).

Exit status: 0 done; 2 bad input or settings (the message says what is wrong and how to fix
it); 1 any other failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path

import duckdb

from loaders.crm import files as crm
from loaders.dataverse import load as dataverse
from loaders.errors import BadInput, LoadFailed
from loaders.export import spark as export_spark
from loaders.graph import landing as graph_landing
from loaders.graph import load as graph
from loaders.leadspace import enrich as leadspace
from loaders.leadspace import landing as leadspace_landing
from loaders.leadspace import mapping as leadspace_mapping
from loaders.leadspace.client import LeadspaceClient
from loaders.settings import (
    MAX_WINDOW_DAYS,
    PROJECT_DIR_SETTING,
    WINDOW_SETTING,
    DataverseSettings,
    GraphSettings,
    LeadspaceSettings,
    PostgresSettings,
    SparkSettings,
    duckdb_path,
    parse_window_days,
    resolve_window,
    window_in_use,
)
from loaders.warehouse import (
    LOADER_MEMORY_LIMIT,
    compact,
    connect,
    disk_full,
    out_of_memory,
)

log = logging.getLogger("loaders")

# what a command does with the open warehouse (connection, its path): its exit status
_Landing = Callable[[duckdb.DuckDBPyConnection, Path], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        # one line like every other refusal, without argparse's usage block above it (--help
        # shows it); argparse's own exit status is 2 already
        self.exit(2, f"error: {message}\n")


def _as_of(value: str) -> date:
    try:
        as_of = date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-11-23"
        ) from None
    today = datetime.now(UTC).date()
    if as_of > today:
        # a window that ends after today reads nothing of its last days, yet would be stored
        # as read: the next runs would never fetch them
        raise argparse.ArgumentTypeError(
            f"{value} is in the future; the window ends today ({today}, UTC) at the latest: "
            "leave --as-of out or give a past date"
        )
    return as_of


def _window_days(value: str) -> int:
    days = parse_window_days(value)
    if days is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a whole number of days from 1 to {MAX_WINDOW_DAYS:,}: e.g. 365"
        )
    return days


def _page_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        size = 0
    if not 1 <= size <= dataverse.PAGE_SIZE:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a page size from 1 to {dataverse.PAGE_SIZE:,} (Dataverse's "
            "largest page): e.g. 5000"
        )
    return size


def _project_dir(value: str) -> Path:
    path = Path(value)
    if not (path / "dbt_project.yml").is_file():
        raise argparse.ArgumentTypeError(
            f"{value} has no dbt_project.yml: give the folder of the dbt project whose "
            "vars.window_days the loader should follow"
        )
    return path


def _version() -> str:
    """The installed distribution's version (`pyproject.toml`), or `unknown` when the code
    runs from a folder without being installed."""
    try:
        return metadata.version("account-engagement")
    except metadata.PackageNotFoundError:
        return "unknown"


def _cards(argv: list[str], prog: str) -> int:
    from account_engagement_cards.cli import main as cards_main

    return cards_main(argv, prog=f"{prog} cards")


def build_parser(prog: str = "python -m loaders", with_cards: bool = False,
                 ) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    parser.add_argument("--version", action="version",
                        version=f"account-engagement {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    crm_cmd = commands.add_parser("crm", help="land the CRM snapshot (accounts and contacts)")
    crm_cmd.add_argument("--accounts", type=Path, required=True, help="CSV or Parquet file")
    crm_cmd.add_argument("--contacts", type=Path, required=True, help="CSV or Parquet file")
    crm_cmd.add_argument(
        "--email-column", default="email", help="the contacts column holding the email address"
    )
    crm_cmd.add_argument(
        "--allow-shrink", action="store_true",
        help="land a snapshot with no accounts, or fewer than half of those landed before",
    )
    crm_cmd.set_defaults(handler=_crm)

    graph_cmd = commands.add_parser("graph", help="land mail and calendar metadata from Graph")
    graph_cmd.add_argument("--mailbox", action="append", default=[], metavar="ADDRESS")
    graph_cmd.add_argument("--group", action="append", default=[], metavar="ADDRESS_OR_ID")
    graph_cmd.add_argument(
        "--as-of", type=_as_of, default=None, help="last day of the window (UTC; default today)"
    )
    graph_cmd.add_argument(
        "--window-days", type=_window_days, default=None, metavar="N",
        help=f"days the window reaches back (default: ${WINDOW_SETTING}, else vars.window_days "
             "of the dbt project, else 365); dbt must count the same (its var window_days)",
    )
    graph_cmd.add_argument(
        "--project-dir", type=_project_dir, default=None, metavar="DIR",
        help=f"the dbt project whose vars.window_days is the window (default: "
             f"${PROJECT_DIR_SETTING}, else the current folder)",
    )
    graph_cmd.add_argument(
        "--workers", type=int, default=graph.DEFAULT_WORKERS,
        help=f"mailboxes loaded in parallel, each with at most 4 requests in flight "
             f"(default {graph.DEFAULT_WORKERS})"
    )
    graph_cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    graph_cmd.set_defaults(handler=_graph)

    dv_cmd = commands.add_parser(
        "dataverse",
        help="land Dataverse accounts and contacts (Dynamics 365), then their changes",
    )
    dv_cmd.add_argument(
        "--page-size", type=_page_size, default=dataverse.PAGE_SIZE, metavar="N",
        help=f"rows per page asked of Dataverse (odata.maxpagesize; at most and by default "
             f"{dataverse.PAGE_SIZE:,})",
    )
    dv_cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    dv_cmd.set_defaults(handler=_dataverse)

    ls_cmd = commands.add_parser(
        "leadspace",
        help="send mapped account fields to Leadspace (with consent), land firmographics",
    )
    ls_cmd.add_argument(
        "--consent", action="store_true",
        help="agree that the mapped fields of the dataset's accounts are sent to Leadspace",
    )
    ls_cmd.add_argument(
        "--segment", metavar="NAME", help="only the members of this segment (e.g. stale_accounts)"
    )
    ls_cmd.add_argument(
        "--map", action="append", default=[], metavar="FIELD=COLUMN", dest="maps",
        help="company_name=COLUMN (required); website=COLUMN and location=COLUMN (optional)",
    )
    ls_cmd.add_argument(
        "--refresh-days", type=int, default=leadspace.DEFAULT_REFRESH_DAYS,
        help="send an unchanged account again once its answer is older than this "
        f"(default {leadspace.DEFAULT_REFRESH_DAYS})",
    )
    ls_cmd.add_argument(
        "--batch-size", type=int, default=leadspace.BULK_LIMIT,
        help=f"records per bulk job (at most {leadspace.BULK_LIMIT}, the default)",
    )
    ls_cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    ls_cmd.set_defaults(handler=_leadspace)

    export_cmd = commands.add_parser(
        "export", help="copy every raw table of the warehouse to another engine (replacing it)"
    )
    export_cmd.add_argument("--target", required=True, choices=["postgres", "spark"])
    export_cmd.add_argument(
        "--full", action="store_true",
        help="copy every table whole (by default messages and events copy only what was "
             "landed, changed or removed since the previous export)",
    )
    export_cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    export_cmd.set_defaults(handler=_export)

    remove_cmd = commands.add_parser("remove", help="delete an enrichment's landed data")
    remove_cmd.add_argument("enrichment", choices=["graph", "leadspace"])
    remove_cmd.set_defaults(handler=_remove)

    if with_cards:  # listed here; console() hands its arguments to the cards' own parser
        cards_cmd = commands.add_parser(
            "cards", add_help=False,
            help="build the customer cards from the warehouse (its options: cards --help)",
        )
        cards_cmd.set_defaults(handler=_cards_after_options)
    return parser


def _cards_after_options(args: argparse.Namespace) -> int:
    """`cards` reached through the loaders' parser: an option came before it (`-v cards`)."""
    raise BadInput("write `cards` first, with its own options after it: "
                   "account-engagement cards [--warehouse FILE] [--out DIR] [--schema NAME].")


def console(argv: list[str] | None = None) -> int:
    """The console script `account-engagement` (pyproject.toml): the loaders' commands and
    `cards`, from any folder."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["cards"]:
        return _cards(argv[1:], "account-engagement")
    return main(argv, prog="account-engagement", with_cards=True)


def main(argv: list[str] | None = None, prog: str = "python -m loaders",
         with_cards: bool = False) -> int:
    args = build_parser(prog, with_cards).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # urllib3 warns at each retry of a connection; the loader's own sentence says what
        # failed once retries are spent (-v shows them)
        logging.getLogger("urllib3").setLevel(logging.ERROR)
        # MSAL logs a failed token answer with a traceback; the loader's sentence says it
        logging.getLogger("msal").setLevel(logging.CRITICAL)
    try:
        return args.handler(args)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LoadFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: what was landed stays; run again to resume.", file=sys.stderr)
        return 130
    except Exception as exc:
        if out_of_memory(exc):
            limit = os.environ.get("DUCKDB_MEMORY_LIMIT") or LOADER_MEMORY_LIMIT
            print(
                f"error: DuckDB ran out of memory writing the warehouse {duckdb_path()} "
                f"(memory_limit {limit}): set DUCKDB_MEMORY_LIMIT higher (e.g. 1GB) and run "
                "again; what was landed before stays, and a Graph load resumes where it "
                "stopped.",
                file=sys.stderr,
            )
            return 1
        if not disk_full(exc):
            raise
        # each write is one transaction: the one that did not fit is rolled back whole
        print(
            f"error: the disk is full (writing the warehouse {duckdb_path()}, its .wal beside "
            "it, or the temporary folder): free some space and run again; what was landed "
            "before stays, and a Graph load resumes where it stopped.",
            file=sys.stderr,
        )
        return 1


def _crm(args: argparse.Namespace) -> int:
    # the files first: a missing one leaves no warehouse behind
    crm.check_files(args.accounts, args.contacts)

    def land(con: duckdb.DuckDBPyConnection, path: Path) -> int:
        result = crm.load(con, args.accounts, args.contacts, args.email_column,
                          allow_shrink=args.allow_shrink)
        print(f"landed {result.accounts:,} accounts and {result.contacts:,} contacts in {path}")
        return 0

    return _on_warehouse(land)


def _graph(args: argparse.Namespace) -> int:
    # settings first: no warehouse lock held while they are wrong
    settings = GraphSettings.from_env()
    window = resolve_window(args.window_days, args.project_dir)

    def land(con: duckdb.DuckDBPyConnection, path: Path) -> int:
        as_of = args.as_of or graph.default_as_of()
        with window_in_use(window):
            result = graph.load(
                con, settings, args.mailbox, args.group, as_of, args.workers,
                show_progress=not args.no_progress,
            )
        print(
            f"run {result.run_id}: {result.mailboxes} mailboxes, {result.streams} streams "
            f"({result.failed_streams} failed), {result.records:,} records landed, "
            f"{result.requests:,} requests ({result.retries:,} retried) in "
            f"{result.seconds:.1f}s, into {path}"
        )
        return 1 if result.failed_streams else 0

    print(window.describe(), flush=True)
    return _on_warehouse(land, announce_compaction=True)


def _dataverse(args: argparse.Namespace) -> int:
    # settings first: no warehouse lock held while they are wrong
    settings = DataverseSettings.from_env()

    def land(con: duckdb.DuckDBPyConnection, path: Path) -> int:
        result = dataverse.load(con, settings, show_progress=not args.no_progress,
                                page_size=args.page_size)
        tables = ", ".join(
            f"{t.table} {t.records:,} rows landed, {t.removed:,} removed "
            f"({'read whole' if t.mode == 'full' else 'changes'})" for t in result.tables)
        print(f"run {result.run_id}: {tables}; {result.requests:,} requests "
              f"({result.retries:,} retried) in {result.seconds:.1f}s, into {path}")
        return 0

    return _on_warehouse(land)


def _leadspace(args: argparse.Namespace) -> int:
    leadspace_mapping.parse_mapping(args.maps)
    settings = LeadspaceSettings.from_env()

    def land(con: duckdb.DuckDBPyConnection, path: Path) -> int:
        result = leadspace.load(
            con, LeadspaceClient(settings), args.maps, args.consent, args.segment,
            args.refresh_days, show_progress=not args.no_progress,
            batch_size=args.batch_size,
        )
        print(_leadspace_summary(result, path))
        return 0

    return _on_warehouse(land)


def _remove(args: argparse.Namespace) -> int:
    if args.enrichment == "leadspace":
        return _on_warehouse(_remove_leadspace)
    return _on_warehouse(_remove_graph)


def _remove_leadspace(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    leadspace_landing.remove_leadspace(con)
    print(
        f"removed the landed Leadspace answers and consents from {path}; run dbt build "
        "to empty the outputs"
    )
    return 0


def _remove_graph(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    graph_landing.remove_graph(con)
    print(f"removed the landed Graph data from {path}; run dbt build to empty the outputs")
    return 0


def _on_warehouse(land: _Landing, announce_compaction: bool = False) -> int:
    """Open the warehouse for writing, run `land` on it, then compact it; a failed `land`
    (a status other than 0) returns its status uncompacted."""
    path = duckdb_path()
    con = connect(path)
    try:
        status = land(con, path)
        if status:
            return status
        if announce_compaction:
            print("compacting the raw tables (merging the row groups this load left partly "
                  "filled, so that dbt's next build does not pay for it)...", file=sys.stderr)
        try:
            compact(con)
        except duckdb.InterruptException:
            # Ctrl+C while compacting (DuckDB stops the statement): the load itself is complete
            raise KeyboardInterrupt from None
        except duckdb.Error as exc:
            # what was landed is committed: a failed compaction costs time, not data
            print(
                f"warning: the load is complete, but compacting the warehouse failed "
                f"({str(exc).splitlines()[0]}); the next dbt build will be slower, and the "
                "next load compacts again.",
                file=sys.stderr,
            )
    finally:
        con.close()
    return 0


def _export(args: argparse.Namespace) -> int:
    # reads the warehouse; never opens it for writing
    if args.target == "spark":
        return _export_spark(args)
    settings = PostgresSettings.from_env()
    export_postgres = _export_postgres()
    path = duckdb_path()
    result = export_postgres.export_postgres(path, settings,
                                             show_progress=not args.no_progress,
                                             full=args.full)
    for table, rows in result.tables:
        print(f"{table}: {rows:,} {'row' if rows == 1 else 'rows'} copied "
              f"({result.modes.get(table, 'whole')})")
    for table in result.recreated:
        print(f"{table}: its columns changed, so it was recreated (with the views on it: run "
              "dbt build --target postgres)")
    print(
        f"exported {len(result.tables)} raw tables ({result.rows:,} rows) from {path} to "
        f"Postgres at {settings.address}, database {settings.dbname}, in {result.seconds:.1f}s"
    )
    return 0


def _export_postgres():
    """loaders.export.postgres, which streams through pyarrow: a dependency of the postgres
    extra, not of the default install."""
    try:
        from loaders.export import postgres
    except ImportError as exc:
        if exc.name != "pyarrow":
            raise
        raise BadInput(
            "pyarrow is not installed (the Postgres export streams the tables through it): "
            "install the postgres extra (pip install 'account-engagement[postgres]', in a clone "
            "pip install -e '.[postgres]') and run again."
        ) from None
    return postgres


def _export_spark(args: argparse.Namespace) -> int:
    path = duckdb_path()
    settings = SparkSettings.from_env(path)
    result = export_spark.export_spark(path, settings, show_progress=not args.no_progress,
                                       full=args.full)
    for table, rows in result.tables:
        print(f"{table}: {rows:,} {'row' if rows == 1 else 'rows'} written "
              f"({result.modes.get(table, 'whole')})")
    print(
        f"exported {len(result.tables)} raw tables ({result.rows:,} rows) from {path} to "
        f"{settings.raw_path}, registered on Spark at {settings.address}, in "
        f"{result.seconds:.1f}s"
    )
    return 0


def _leadspace_summary(result: leadspace.LeadspaceLoadResult, path: Path) -> str:
    extra = ""
    if result.resumed:
        extra += f", {result.resumed:,} collected from an earlier run's bulk jobs"
    if result.no_name:
        extra += f", {result.no_name:,} without a company name (not sent)"
    return (
        f"run {result.run_id} ({result.dataset}, {result.accounts:,} accounts): sent "
        f"{result.sent:,}, enriched {result.enriched:,}, not matched {result.not_matched:,}, "
        f"failed {result.failed:,}, skipped unchanged {result.skipped_unchanged:,}{extra}; "
        f"{result.requests:,} requests in {result.seconds:.1f}s, into {path}"
    )
