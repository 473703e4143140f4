"""Calendar snapshots into `raw_graph.events`: a mailbox's calendar view is read whole each run
and reconciled with what is stored, by content hash, so only new or changed occurrences are
written and those gone from the view are flagged `_removed`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import duckdb

from loaders.graph import sync_state
from loaders.graph.spool import PageReader, land_malformed
from loaders.runs import StreamTally
from loaders.schema import EVENT_FIELDS, GRAPH_SCHEMA
from loaders.warehouse import insert_rows, transaction, utc_now

EVENT_COLUMNS = ", ".join(f'"{name}"' for name in EVENT_FIELDS)

if TYPE_CHECKING:  # the writer's queue items; landing imports this module
    from loaders.graph.landing import SnapshotItem


class CalendarReconcile:
    """Lands batches of calendar snapshots for the writer thread (`landing.Lander`)."""

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

    def land(self, items: list[SnapshotItem]) -> None:
        """Replace the calendar of each mailbox in `items` with its snapshot: new and changed
        events (by the hash of the record) replace the stored ones, events missing from the
        snapshot are marked removed. One transaction for them all."""
        if not items:
            return
        now = utc_now()
        con = self._con
        mailboxes = [item.mailbox_id for item in items]
        pages = [(item.mailbox_id, item.stream, raw) for item in items for raw in item.raws]
        if pages:
            bad = self._reader.read("events", [raw for _, _, raw in pages], "incoming_events",
                                    [(mailbox_id, None) for mailbox_id, _, _ in pages])
        else:
            bad = []
            con.execute(
                f"create or replace temp table incoming_events as select _mailbox_id, "
                f"{EVENT_COLUMNS} from {GRAPH_SCHEMA}.events where false"
            )
        con.execute(
            f"""create or replace temp table incoming_hashed as
            select _mailbox_id, {EVENT_COLUMNS},
                md5(cast(to_json(struct_pack({EVENT_COLUMNS})) as varchar)) as _record_hash
            from incoming_events where id is not null"""
        )
        con.execute("create or replace temp table snapshot_mailboxes (_mailbox_id varchar)")
        insert_rows(con, "snapshot_mailboxes", [[mailbox_id] for mailbox_id in mailboxes])
        with transaction(con):
            changed = dict(con.execute(
                f"""select i._mailbox_id, count(*) from incoming_hashed as i
                where not exists (select 1 from {GRAPH_SCHEMA}.events as t
                    where t._mailbox_id = i._mailbox_id and t.id = i.id
                      and t._record_hash = i._record_hash and not t._removed)
                group by i._mailbox_id"""
            ).fetchall())
            con.execute(
                f"""delete from {GRAPH_SCHEMA}.events as t
                using incoming_hashed as i
                where t._mailbox_id = i._mailbox_id and t.id = i.id
                  and (t._record_hash is distinct from i._record_hash or t._removed)"""
            )
            con.execute(
                f"""insert into {GRAPH_SCHEMA}.events
                select {EVENT_COLUMNS}, _mailbox_id, false, _record_hash, ?, ?
                from incoming_hashed as i
                where not exists (select 1 from {GRAPH_SCHEMA}.events as t
                    where t._mailbox_id = i._mailbox_id and t.id = i.id)""",
                [self._run_id, now],
            )
            gone = f"""from {GRAPH_SCHEMA}.events as t
                where t._mailbox_id in (select _mailbox_id from snapshot_mailboxes)
                  and not t._removed
                  and not exists (select 1 from incoming_hashed as i
                      where i._mailbox_id = t._mailbox_id and i.id = t.id)"""
            removed = dict(con.execute(
                f"select t._mailbox_id, count(*) {gone} group by t._mailbox_id"
            ).fetchall())
            con.execute(
                f"""update {GRAPH_SCHEMA}.events as u set _removed = true, _run_id = ?,
                    _loaded_at = ?
                where exists (select 1 {gone} and t._mailbox_id = u._mailbox_id
                    and t.id = u.id)""",
                [self._run_id, now],
            )
            malformed = dict(con.execute(
                """select _mailbox_id, count(*) from incoming_hashed
                where organizer is null or start is null or "end" is null or iCalUId is null
                group by _mailbox_id"""
            ).fetchall())
            land_malformed(
                con, self._run_id,
                [(pages[p][0], pages[p][1], rec, why) for p, rec, why in bad], now,
            )
            sync_state.save(con, [[item.mailbox_id, item.stream, item.window_start, None, None,
                                   now] for item in items])
        for p, _, _ in bad:
            malformed[pages[p][0]] = malformed.get(pages[p][0], 0) + 1
        for item in items:
            stats = self._tally.of(item.mailbox_id, item.stream)
            stats.pages += len(item.raws)
            stats.records += changed.get(item.mailbox_id, 0)
            stats.removed += removed.get(item.mailbox_id, 0)
            stats.malformed += malformed.get(item.mailbox_id, 0)
        self._on_landed(sum(changed.values()))
