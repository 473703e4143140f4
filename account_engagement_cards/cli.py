"""`account-engagement cards [--out DIR] [--warehouse FILE] [--schema NAME]` (or `python -m
account_engagement_cards ...`): builds the customer cards.

Reads the warehouse read-only (run it after `dbt build`, not during) and writes a static site
that works offline: DIR/index.html (every account, sortable by engagement score, searchable,
the stale segment marked) and DIR/accounts/<AccountId>.html (one card per account).

Exit status: 0 done; 2 bad input or state (no warehouse, no `office` table in the schema,
warehouse busy, DIR not a cards folder), with a sentence saying what to do.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from account_engagement_cards.data import CardsError, read_site
from account_engagement_cards.site import write_site

DEFAULT_FOLDER = "customer_cards"
SCHEMA_SETTING = "ACCOUNT_ENGAGEMENT_SCHEMA"
DEFAULT_SCHEMA = "main"


def default_warehouse() -> Path:
    """$DUCKDB_PATH, else warehouse.duckdb in the current folder (as the loaders and dbt)."""
    return Path(os.environ.get("DUCKDB_PATH") or "warehouse.duckdb")


def default_schema() -> str:
    """$ACCOUNT_ENGAGEMENT_SCHEMA, else `main`: where a standalone `dbt build` on DuckDB puts
    the marts (a project that installs this one as a package may build them elsewhere)."""
    return os.environ.get(SCHEMA_SETTING, "").strip() or DEFAULT_SCHEMA


def main(argv: list[str] | None = None, prog: str = "python -m account_engagement_cards",
         ) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="the DuckDB file (default: $DUCKDB_PATH, else warehouse.duckdb "
                             "in the current folder)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"the site's folder (default: {DEFAULT_FOLDER}/ beside the "
                             "warehouse); replaced whole on every build")
    parser.add_argument("--schema", default=None,
                        help=f"the schema holding the marts (default: ${SCHEMA_SETTING}, else "
                             f"{DEFAULT_SCHEMA})")
    args = parser.parse_args(argv)
    warehouse = (args.warehouse or default_warehouse()).resolve()
    out = args.out or warehouse.parent / DEFAULT_FOLDER
    schema = args.schema.strip() if args.schema is not None else default_schema()
    started = time.monotonic()
    try:
        site = read_site(warehouse, schema)
        written = write_site(site, out)
    except CardsError as error:
        print(f"cards: {error}", file=sys.stderr)
        return 2
    print(f"Customer cards: {written.cards:,} account cards and the index in "
          f"{time.monotonic() - started:.1f}s\n  open {written.index.as_uri()}")
    return 0
