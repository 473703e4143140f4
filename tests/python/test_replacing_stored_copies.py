"""A load that replaces many stored message copies (a daily run: read flags, moves, deletes)
lands them in several transactions with a checkpoint in between, with the same result as
one transaction (loaders/graph/message_merge.py, REPLACED_PER_CHECKPOINT); `remove graph`
empties the raw Graph tables without deleting row by row.

At scale the bound is what keeps the loader inside its memory limit: DuckDB holds memory for
every deleted row until a checkpoint (in a 75 M-copy warehouse, one delete of 8,000 scattered
copies needs more than 256MB). Here the bound is made small so that a few records cross it.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from loaders.graph import message_merge
from loaders.graph.landing import Lander, PageItem, remove_graph
from loaders.graph.message_merge import MessageMerge
from loaders.warehouse import connect

DELTA = "https://graph.microsoft.com/v1.0/users/u1/mailFolders/f1/messages/delta?$deltatoken=z"


def message(n: int, sent: str) -> dict:
    return {"id": f"m{n}", "internetMessageId": f"<{n}@x>", "sentDateTime": sent,
            "from": {"emailAddress": {"address": "a@x.com"}}}


def page(records: list[dict]) -> PageItem:
    raw = orjson.dumps({"value": records, "@odata.deltaLink": DELTA})
    return PageItem("messages", "u1", "messages:f1", raw, "f1",
                    {"window_start": None, "next_link": None, "delta_link": DELTA})


def land(con, pages: list[PageItem]) -> None:
    lander = Lander(con, "run")
    for item in pages:  # queued before the writer starts: one batch
        lander.put(item)
    lander.start()
    lander.close()


def test_a_batch_replacing_more_than_the_bound_lands_in_parts_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(message_merge, "REPLACED_PER_CHECKPOINT", 4)
    con = connect(tmp_path / "w.duckdb")
    land(con, [page([message(n, "2026-06-01T09:00:00Z") for n in range(k, k + 4)])
               for k in (0, 4, 8)])

    landed_parts, checkpoints = [], []
    land_pages, checkpoint = MessageMerge.land, MessageMerge._checkpoint

    def spy_land(self, batch):
        if batch:  # the writer's last call, at the stop, has no page
            landed_parts.append(len(batch))
        land_pages(self, batch)

    def spy_checkpoint(self):
        if self._replaced:
            checkpoints.append(self._replaced)
        return checkpoint(self)

    monkeypatch.setattr(MessageMerge, "land", spy_land)
    monkeypatch.setattr(MessageMerge, "_checkpoint", spy_checkpoint)
    # m0-m7 change (a new sentDateTime), m8 and m9 are removed, m12 is new: 10 stored copies
    # replaced or flagged in a batch of three pages, the bound is 4
    land(con, [
        page([message(n, "2026-06-02T09:00:00Z") for n in range(0, 4)]),
        page([message(n, "2026-06-02T09:00:00Z") for n in range(4, 8)]),
        page([{"id": "m8", "@removed": {"reason": "deleted"}},
              {"id": "m9", "@removed": {"reason": "deleted"}},
              message(12, "2026-06-02T09:00:00Z")]),
    ])
    # the batch (3 pages), its first page, then the other two, each of them alone
    assert landed_parts == [3, 1, 2, 1, 1]
    # before the second page (4 replaced, 4 more to come), before the third (4, 2 to come)
    assert checkpoints == [4, 4]
    rows = con.execute(
        'select id, "sentDateTime", _removed from raw_graph.messages order by id'
    ).fetchall()
    changed, kept = "2026-06-02T09:00:00Z", "2026-06-01T09:00:00Z"
    assert sorted(rows, key=lambda r: int(r[0][1:])) == (
        [(f"m{n}", changed, False) for n in range(8)]
        + [("m8", kept, True), ("m9", kept, True), ("m10", kept, False), ("m11", kept, False),
           ("m12", changed, False)]
    )


def test_remove_graph_leaves_the_raw_graph_tables_empty_and_usable(tmp_path: Path) -> None:
    con = connect(tmp_path / "w.duckdb")
    land(con, [page([message(n, "2026-06-01T09:00:00Z") for n in range(3)])])
    columns = con.execute("describe raw_graph.messages").fetchall()
    remove_graph(con)
    for table in ("users", "mail_folders", "messages", "events", "malformed_records"):
        assert con.execute(f"select count(*) from raw_graph.{table}").fetchone() == (0,)
    assert con.execute("select count(*) from raw_loader.graph_sync_state").fetchone() == (0,)
    assert con.execute("describe raw_graph.messages").fetchall() == columns
    land(con, [page([message(7, "2026-06-03T09:00:00Z")])])
    assert con.execute("select id from raw_graph.messages").fetchall() == [("m7",)]
