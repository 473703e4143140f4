"""The command line: `python -m loaders COMMAND` (INTERFACE.md).

Exit status: 0 done; 2 bad input or settings (the message says what is wrong and how to fix
it); 1 any other failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path

from loaders import crm, graph
from loaders.errors import BadInput, LoadFailed
from loaders.schema import GRAPH_SCHEMA, LOADER_SCHEMA
from loaders.settings import GraphSettings, duckdb_path
from loaders.warehouse import connect

log = logging.getLogger("loaders")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit status is 2 already
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


def _as_of(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-11-23") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m loaders", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    crm_cmd = commands.add_parser("crm", help="land the CRM snapshot (accounts and contacts)")
    crm_cmd.add_argument("--accounts", type=Path, required=True, help="CSV or Parquet file")
    crm_cmd.add_argument("--contacts", type=Path, required=True, help="CSV or Parquet file")
    crm_cmd.add_argument(
        "--email-column", default="email", help="the contacts column holding the email address"
    )

    graph_cmd = commands.add_parser("graph", help="land mail and calendar metadata from Graph")
    graph_cmd.add_argument("--mailbox", action="append", default=[], metavar="ADDRESS")
    graph_cmd.add_argument("--group", action="append", default=[], metavar="ADDRESS_OR_ID")
    graph_cmd.add_argument(
        "--as-of", type=_as_of, default=None, help="last day of the one-year window (UTC)"
    )
    graph_cmd.add_argument(
        "--workers", type=int, default=8, help="streams loaded in parallel (default 8)"
    )
    graph_cmd.add_argument("--no-progress", action="store_true", help="no progress bar")

    remove_cmd = commands.add_parser("remove", help="delete an enrichment's landed data")
    remove_cmd.add_argument("enrichment", choices=["graph"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return _dispatch(args)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LoadFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: what was landed stays; run again to resume.", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "graph":  # settings first: no warehouse lock held while they are wrong
        settings = GraphSettings.from_env()
    path = duckdb_path()
    con = connect(path)
    try:
        if args.command == "crm":
            result = crm.load(con, args.accounts, args.contacts, args.email_column)
            print(f"landed {result.accounts:,} accounts and {result.contacts:,} contacts in {path}")
        elif args.command == "graph":
            as_of = args.as_of or graph.default_as_of()
            result = graph.load(
                con, settings, args.mailbox, args.group, as_of, args.workers,
                show_progress=not args.no_progress,
            )
            print(
                f"run {result.run_id}: {result.mailboxes} mailboxes, {result.streams} streams "
                f"({result.failed_streams} failed), {result.records:,} records landed, "
                f"{result.requests:,} requests in {result.seconds:.1f}s, into {path}"
            )
            if result.failed_streams:
                return 1
        elif args.command == "remove":
            _remove_graph(con)
            print(f"removed the landed Graph data from {path}; run dbt build to empty the outputs")
    finally:
        con.close()
    return 0


def _remove_graph(con) -> None:
    con.execute("begin transaction")
    for table in ("users", "mail_folders", "messages", "events", "malformed_records"):
        con.execute(f"delete from {GRAPH_SCHEMA}.{table}")
    con.execute(f"delete from {LOADER_SCHEMA}.graph_sync_state")
    con.execute(f"delete from {LOADER_SCHEMA}.load_runs where source = 'graph'")
    con.execute("commit")
