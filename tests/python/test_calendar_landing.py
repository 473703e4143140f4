"""Calendars wait in the writer until SNAPSHOT_BATCH_BYTES of them have come, or the load
ends (loaders/graph/landing.py): a calendar stream's end is recorded only once its calendar has
landed, with the calendar's counts, and other streams' ends are not held back by it."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from loaders.graph import landing
from loaders.graph.landing import Lander, SnapshotItem, StreamEnd
from loaders.warehouse import connect

WINDOW_START = datetime(2025, 7, 1)


def calendar(*ids: str) -> list[bytes]:
    """A calendar view of one page holding the events `ids`."""
    return [orjson.dumps({"value": [{
        "id": event_id, "iCalUId": f"ical-{event_id}", "type": "singleInstance",
        "isCancelled": False, "isAllDay": False,
        "start": {"dateTime": "2026-06-01T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-06-01T09:30:00.0000000", "timeZone": "UTC"},
        "organizer": {"emailAddress": {"name": "O", "address": "o@x.com"}},
        "attendees": [],
    } for event_id in ids]})]


@pytest.mark.parametrize("snapshot_batch_bytes", [landing.SNAPSHOT_BATCH_BYTES, 1],
                         ids=["with-the-load-end", "at-once"])
def test_a_calendar_stream_ends_once_its_calendar_has_landed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snapshot_batch_bytes: int
) -> None:
    monkeypatch.setattr(landing, "SNAPSHOT_BATCH_BYTES", snapshot_batch_bytes)
    landed = threading.Event()
    con = connect(tmp_path / "w.duckdb")
    lander = Lander(con, "run1", on_landed=lambda _: landed.set())
    # queued before the writer starts, so that it takes them all in its first round
    lander.put(SnapshotItem("u1", "events", calendar("e1"), WINDOW_START))
    lander.put(StreamEnd("u1", "events"))
    lander.put(StreamEnd("u1", "messages:f1"))
    lander.put(SnapshotItem("u2", "events", calendar("e2", "e3"), WINDOW_START))
    lander.put(StreamEnd("u2", "events"))
    lander.start()
    if snapshot_batch_bytes == 1:  # the calendars land in that round, before the load ends
        assert landed.wait(timeout=30)
    lander.close()
    assert con.execute(
        "select mailbox_id, stream, status, pages, records from raw_loader.load_runs order by all"
    ).fetchall() == [("u1", "events", "succeeded", 1, 1),
                     ("u1", "messages:f1", "succeeded", 0, 0),
                     ("u2", "events", "succeeded", 1, 2)]
    assert con.execute(
        "select _mailbox_id, id from raw_graph.events order by all"
    ).fetchall() == [("u1", "e1"), ("u2", "e2"), ("u2", "e3")]
