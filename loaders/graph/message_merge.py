"""Message pages into `raw_graph.messages`: in one transaction per batch, the rows of the same
keys are replaced, `@removed` ones flagged, and each stream's checkpoint (next or delta link)
stored with them, so landing a page twice changes nothing and a run killed between two batches
resumes from the last stored checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import duckdb

from loaders.graph import sync_state
from loaders.graph.spool import PageReader, land_malformed
from loaders.runs import StreamTally
from loaders.schema import GRAPH_SCHEMA, MESSAGE_FIELDS
from loaders.warehouse import transaction, utc_now

MESSAGE_COLUMNS = ", ".join(f'"{name}"' for name in MESSAGE_FIELDS)
# Stored message copies a load replaces or flags removed between two checkpoints. DuckDB keeps
# the part of the table around each deleted row in memory until the next checkpoint: in a
# 75 M-copy warehouse, one delete of 8,000 copies scattered over the year needs more than the
# loader's 256MB, and 20,000 replaced in small batches (a daily run of many mailboxes: read
# flags, moves, deletions) ran out of memory with a checkpoint every 2,000, not every 1,000
# (bench/replacing.py). A batch that would replace more is landed in halves.
REPLACED_PER_CHECKPOINT = 1_000

if TYPE_CHECKING:  # the writer's queue items; landing imports this module
    from loaders.graph.landing import PageItem


class MessageMerge:
    """Lands batches of message pages for the writer thread (`landing.Lander`)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        run_id: str,
        reader: PageReader,
        tally: StreamTally,
        on_landed: Callable[[int], None],
    ) -> None:
        self._con = con
        self._run_id = run_id
        self._reader = reader
        self._tally = tally
        self._on_landed = on_landed
        self._replaced = 0  # stored copies replaced or flagged removed since the last checkpoint

    def land(self, batch: list[PageItem]) -> None:
        if not batch:
            return
        now = utc_now()
        con = self._con
        # parsing happens outside the transaction: a record DuckDB cannot type must not
        # abort it (its page is then read without that record)
        bad = self._reader.read("messages", [item.raw for item in batch], "incoming",
                                [(item.mailbox_id, item.folder_id) for item in batch])
        counts = con.execute(
            """select p, count(id), count("@removed"),
                count(*) filter (where "@removed" is null and id is not null and (
                    "from" is null or internetMessageId is null or sentDateTime is null))
            from incoming group by p"""
        ).fetchall()
        replacing = self._find_stored()
        if replacing > REPLACED_PER_CHECKPOINT and len(batch) > 1:
            self._checkpoint()
            half = len(batch) // 2
            self.land(batch[:half])
            self.land(batch[half:])
            return
        if self._replaced + replacing > REPLACED_PER_CHECKPOINT and self._checkpoint():
            self._find_stored()  # a checkpoint may move rows: their row ids again
        with transaction(con):
            con.execute(
                f"""update {GRAPH_SCHEMA}.messages set _removed = true, _run_id = ?, _loaded_at = ?
                where rowid in (select row_id from stored where is_removal)""",
                [self._run_id, now],
            )
            con.execute(
                f"""delete from {GRAPH_SCHEMA}.messages
                where rowid in (select row_id from stored where not is_removal)"""
            )
            con.execute(
                f"""insert into {GRAPH_SCHEMA}.messages
                select {MESSAGE_COLUMNS}, _mailbox_id, _folder_id, false, null, ?, ?
                from incoming where "@removed" is null and id is not null""",
                [self._run_id, now],
            )
            land_malformed(
                con, self._run_id,
                [(batch[p].mailbox_id, batch[p].stream, rec, why) for p, rec, why in bad], now,
            )
            sync_state.save_checkpoints(con, batch, now)
        self._replaced += replacing
        for item in batch:
            self._tally.of(item.mailbox_id, item.stream).pages += 1
        landed = 0
        for p, records, removed, malformed in counts:
            stats = self._tally.of(batch[p].mailbox_id, batch[p].stream)
            stats.records += records - removed
            stats.removed += removed
            stats.malformed += malformed
            landed += records
        for p, _, _ in bad:
            self._tally.of(batch[p].mailbox_id, batch[p].stream).malformed += 1
        self._on_landed(landed)

    def _find_stored(self) -> int:
        """Into temp table `stored`: the row ids of the stored copies that the records of temp
        table `incoming` replace (a new version) or flag removed (one scan); their number."""
        self._con.execute(
            f"""create or replace temp table stored as
            select distinct t.rowid as row_id, i."@removed" is not null as is_removal
            from {GRAPH_SCHEMA}.messages as t
            join incoming as i on t._mailbox_id = i._mailbox_id and t.id = i.id"""
        )
        return self._con.execute("select count(distinct row_id) from stored").fetchone()[0]

    def _checkpoint(self) -> bool:
        """Write what the load changed so far into the file (releasing the memory DuckDB holds
        for the rows replaced since the last checkpoint); whether there was any to write."""
        if not self._replaced:
            return False
        self._con.execute("checkpoint")
        self._replaced = 0
        return True
