"""`raw_loader.graph_sync_state`: where each mailbox's stream stands (the window it covers, the
next link of a run that stopped mid-way, the delta link of the next run). Read once when a load
starts; written by the writer in the same transaction as the records it follows."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from loaders.schema import LOADER_SCHEMA
from loaders.warehouse import insert_rows

if TYPE_CHECKING:  # the writer's queue items; landing imports this module
    from loaders.graph.landing import PageItem


def stored(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], dict]:
    """Each stored (mailbox id, stream): its window start, next link and delta link."""
    rows = con.execute(
        f"select mailbox_id, stream, window_start, next_link, delta_link "
        f"from {LOADER_SCHEMA}.graph_sync_state"
    ).fetchall()
    return {
        (mailbox_id, stream): {"window_start": ws, "next_link": nl, "delta_link": dl}
        for mailbox_id, stream, ws, nl, dl in rows
    }


def save_checkpoints(
    con: duckdb.DuckDBPyConnection, batch: list[PageItem], now: datetime
) -> None:
    """The last checkpoint of each stream in a batch of pages."""
    latest: dict[tuple[str, str], dict] = {}
    for item in batch:
        if item.checkpoint is not None:
            latest[(item.mailbox_id, item.stream)] = item.checkpoint
    save(
        con,
        [[mailbox_id, stream, point["window_start"], point.get("next_link"),
          point.get("delta_link"), now] for (mailbox_id, stream), point in latest.items()],
    )


def save(con: duckdb.DuckDBPyConnection, rows: list[list]) -> None:
    """Rows of (mailbox id, stream, window start, next link, delta link, now) replace the
    stored ones of their streams."""
    if not rows:
        return
    con.execute(
        f"""delete from {LOADER_SCHEMA}.graph_sync_state
        where (mailbox_id, stream) in (select unnest(?), unnest(?))""",
        [[r[0] for r in rows], [r[1] for r in rows]],
    )
    insert_rows(con, f"{LOADER_SCHEMA}.graph_sync_state", rows)
