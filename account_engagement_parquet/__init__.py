"""Where the BI contract's Parquet copies live, and the dbt-duckdb plugin that prepares it.

After every `dbt build` / `dbt run`, the `on-run-end` hook `publish_parquet()` (macros/
publish_parquet.sql) copies each output table of the BI contract to `<folder>/<table>.parquet`
with DuckDB's `COPY ... (FORMAT parquet, USE_TMP_FILE true)`: DuckDB writes
`tmp_<table>.parquet` beside the target and renames it over the target only once the file is
complete, so a reader sees the previous file or the new one, never half a file, and a failed
write leaves the previous file in place.

The folder is `$PARQUET_DIR`, else `parquet/` beside the warehouse (`$DUCKDB_PATH`). DuckDB's
COPY does not create folders, so this plugin (loaded through `plugins:` in profiles.yml)
creates it when dbt opens its connection.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import duckdb

try:  # the plugin base class is there when dbt-duckdb is; `parquet_dir()` needs neither
    from dbt.adapters.duckdb.plugins import BasePlugin
except ImportError:  # pragma: no cover - dbt-duckdb is a pinned dependency
    BasePlugin = object  # type: ignore[assignment,misc]

FOLDER_NAME = "parquet"


def parquet_dir(warehouse: str | os.PathLike[str] | None = None) -> Path:
    """The Parquet folder: `$PARQUET_DIR`, else `parquet/` beside the warehouse file."""
    configured = os.environ.get("PARQUET_DIR", "").strip()
    if configured:
        return Path(configured)
    if warehouse is None:
        warehouse = os.environ.get("DUCKDB_PATH") or "warehouse.duckdb"
    return Path(warehouse).parent / FOLDER_NAME


def lock_holder(message: str) -> str | None:
    """From DuckDB's "Could not set lock ... Conflicting lock is held in <program> (PID n)",
    the holder as "<program> (PID n)"; None for any other error."""
    found = re.search(r"Conflicting lock is held in (.+? \(PID \d+\))", message)
    return found.group(1) if found else None


def warehouse_in_use(warehouse: str, holder: str) -> str:
    """The sentence a dbt run gives when another process holds the warehouse."""
    return (
        f"The warehouse {warehouse} is in use by {holder}: a loader or another dbt run writes "
        f"to it, or a tool keeps it open: wait for it to finish or stop it, then run dbt again; "
        f"BI tools should read the Parquet copies in {parquet_dir(warehouse)} instead."
    )


class Plugin(BasePlugin):  # type: ignore[misc,valid-type]
    """dbt-duckdb plugin: creates the Parquet folder when dbt connects to the warehouse, and
    says in one sentence when another process holds the warehouse (dbt-duckdb itself prints
    DuckDB's lock error inside a 25-line traceback)."""

    def update_connection_config(self, creds: Any, config: dict[str, Any]) -> None:
        warehouse = getattr(creds, "path", None)
        if warehouse in (None, "", ":memory:") or not Path(warehouse).exists():
            return
        try:  # the very open dbt-duckdb is about to make
            duckdb.connect(warehouse, read_only=False, config=dict(config)).close()
        except duckdb.IOException as exc:
            holder = lock_holder(str(exc))
            if holder is None:
                raise
            from dbt_common.exceptions import DbtRuntimeError

            raise DbtRuntimeError(warehouse_in_use(warehouse, holder)) from None

    def configure_connection(self, conn: Any) -> None:
        warehouse = getattr(self.creds, "path", None) if self.creds is not None else None
        if warehouse in (None, "", ":memory:"):
            return
        parquet_dir(warehouse).mkdir(parents=True, exist_ok=True)
