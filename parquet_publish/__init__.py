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
from pathlib import Path
from typing import Any

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


class Plugin(BasePlugin):  # type: ignore[misc,valid-type]
    """dbt-duckdb plugin: creates the Parquet folder when dbt connects to the warehouse."""

    def configure_connection(self, conn: Any) -> None:
        warehouse = getattr(self.creds, "path", None) if self.creds is not None else None
        if warehouse in (None, "", ":memory:"):
            return
        parquet_dir(warehouse).mkdir(parents=True, exist_ok=True)
