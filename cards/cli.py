"""`python -m cards [--out DIR] [--warehouse FILE]`: builds the customer cards.

Reads the warehouse read-only (run it after `dbt build`, not during) and writes a static site
that works offline: DIR/index.html (every account, sortable by engagement score, searchable,
the stale segment marked) and DIR/accounts/<AccountId>.html (one card per account).

Exit status: 0 done; 2 bad input or state (no warehouse, no `office` table, warehouse busy,
DIR not a cards folder), with a sentence saying what to do.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from cards.data import CardsError, read_site
from cards.site import write_site

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FOLDER = "customer_cards"


def default_warehouse() -> Path:
    return Path(os.environ.get("DUCKDB_PATH") or PROJECT_ROOT / "warehouse.duckdb")


def main(argv: list[str] | None = None, prog: str = "python -m cards") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="the DuckDB file (default: $DUCKDB_PATH, else warehouse.duckdb)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"the site's folder (default: {DEFAULT_FOLDER}/ beside the "
                             "warehouse); replaced whole on every build")
    args = parser.parse_args(argv)
    warehouse = (args.warehouse or default_warehouse()).resolve()
    out = args.out or warehouse.parent / DEFAULT_FOLDER
    started = time.monotonic()
    try:
        site = read_site(warehouse)
        written = write_site(site, out)
    except CardsError as error:
        print(f"cards: {error}", file=sys.stderr)
        return 2
    print(f"Customer cards: {written.cards:,} account cards and the index in "
          f"{time.monotonic() - started:.1f}s\n  open {written.index.as_uri()}")
    return 0
