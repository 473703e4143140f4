"""The calendar: `/users/{id}/calendarView` (occurrences and single instances in a window),
`/calendarView/delta`, `/events[/{id}]`, in the time zone `Prefer: outlook.timezone` asks
for; the events as stored and rendered; the admin API's event changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from devtools.emulators.graph.filters import parse_filter
from devtools.emulators.graph.odata import (
    GraphError,
    _canonical_select,
    _epoch,
    _etag,
    _int_param,
    _nested,
    _new_change_key,
    _new_id,
    _now_stamp,
    _order,
    _Request,
    _top,
)
from devtools.emulators.graph.paging import _Cursor, _DeltaState, _Tombstone

if TYPE_CHECKING:
    from devtools.emulators.graph.mailboxes import _Mailbox

# Windows time-zone names (as Outlook stores them) to IANA names.
WINDOWS_TO_IANA: dict[str, str] = {
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "Pacific Standard Time": "America/Los_Angeles",
    "Mountain Standard Time": "America/Denver",
    "Central Standard Time": "America/Chicago",
    "Eastern Standard Time": "America/New_York",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "E. Europe Standard Time": "Europe/Chisinau",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "Tokyo Standard Time": "Asia/Tokyo",
    "India Standard Time": "Asia/Kolkata",
    "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore",
}
EVENT_PROPERTIES = (
    "allowNewTimeProposals", "attendees", "body", "bodyPreview", "categories", "changeKey",
    "createdDateTime", "end", "hasAttachments", "hideAttendees", "iCalUId", "id", "importance",
    "isAllDay", "isCancelled", "isDraft", "isOnlineMeeting", "isOrganizer", "isReminderOn",
    "lastModifiedDateTime", "location", "locations", "onlineMeeting", "onlineMeetingProvider",
    "onlineMeetingUrl", "organizer", "originalEndTimeZone", "originalStart",
    "originalStartTimeZone", "recurrence", "reminderMinutesBeforeStart", "responseRequested",
    "responseStatus", "sensitivity", "seriesMasterId", "showAs", "start", "subject",
    "transactionId", "type", "webLink",
)


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(WINDOWS_TO_IANA.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _local_epoch(dt_tz: Any) -> float | None:
    """Epoch of a Graph dateTimeTimeZone ({dateTime, timeZone}) value."""
    if not isinstance(dt_tz, dict):
        return None
    naive = _epoch(dt_tz.get("dateTime"))
    if naive is None:
        return None
    zone = _zone(dt_tz.get("timeZone")) or UTC
    local = datetime.fromtimestamp(naive, UTC).replace(tzinfo=zone)
    return local.timestamp()


def _fmt_local(epoch: float, zone: Any) -> str:
    dt = datetime.fromtimestamp(epoch, zone)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0"


class _Event:
    __slots__ = ("record", "id", "start", "end", "type", "change_key", "seq", "cseq")

    def __init__(self, record: dict[str, Any], seq: int = 0) -> None:
        self.record = record
        self.id: str = record["id"]
        self.type: str = record.get("type") or "singleInstance"
        self.start = _local_epoch(record.get("start")) or float("-inf")
        self.end = _local_epoch(record.get("end")) or self.start
        self.change_key: str = record.get("changeKey") or ""
        self.seq = seq
        self.cseq = seq

    def get(self, path: str) -> Any:
        if path == "start/dateTime":
            return self.start
        if path == "end/dateTime":
            return self.end
        return _nested(self.record, path)


class EventsMixin:
    """Calendar views and events of a mailbox, and the admin API's event changes."""

    graph_url: str
    _seq: int

    # ------------------------------------------------------------------ admin API (not Graph)
    def add_event(self, user_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """Add an event (occurrence, exception, singleInstance or seriesMaster)."""
        mailbox = self._admin_mailbox(user_id)
        record = dict(event)
        record.setdefault("id", _new_id("AAMkAGE"))
        record.setdefault("changeKey", _new_change_key())
        record.setdefault("type", "singleInstance")
        record.setdefault("createdDateTime", _now_stamp())
        record.setdefault("lastModifiedDateTime", _now_stamp())
        with mailbox.lock:
            mailbox.events[record["id"]] = _Event(record, self._next_seq())
            mailbox.version += 1
        return record

    def update_event(self, user_id: str, event_id: str,
                     changes: dict[str, Any]) -> dict[str, Any]:
        mailbox = self._admin_mailbox(user_id)
        with mailbox.lock:
            old = mailbox.events[event_id]
            record = {**old.record, **changes, "changeKey": _new_change_key()}
            if "lastModifiedDateTime" not in changes:
                record["lastModifiedDateTime"] = _now_stamp()
            event = _Event(record, self._next_seq())
            event.cseq = old.cseq
            mailbox.events[event_id] = event
            mailbox.version += 1
        return record

    def delete_event(self, user_id: str, event_id: str) -> None:
        mailbox = self._admin_mailbox(user_id)
        with mailbox.lock:
            old = mailbox.events.pop(event_id)
            mailbox.tombstones.append(_Tombstone(self._next_seq(), old.id, start=old.start,
                                                 end=old.end, entity="event"))
            mailbox.version += 1

    # ------------------------------------------------------------------ Graph
    def _time_zone(self, req: _Request) -> str:
        wanted = req.prefer.get("outlook.timezone")
        if wanted and _zone(wanted) is not None:
            req.applied.append(f'outlook.timezone="{wanted}"')
            return wanted
        return "UTC"

    def _window(self, req: _Request) -> tuple[float, float]:
        start, end = req.query.get("startDateTime"), req.query.get("endDateTime")
        if not start or not end:
            raise GraphError(400, "ErrorInvalidParameter",
                             "This request requires a time window specified by the query "
                             "string parameters StartDateTime and EndDateTime.")
        first, last = _epoch(start), _epoch(end)
        if first is None or last is None:
            raise GraphError(400, "ErrorInvalidParameter",
                             "The value of the parameter 'StartDateTime' or 'EndDateTime' is "
                             "invalid.")
        return first, last

    def _calendar_view(self, req: _Request, mailbox: _Mailbox) -> bytes:
        if "$skiptoken" in req.query:
            return self._continue(req)
        first, last = self._window(req)
        select = _canonical_select(req.query.get("$select"), EVENT_PROPERTIES, "event")
        with mailbox.lock:
            rows = [e for e in mailbox.events.values()
                    if e.type != "seriesMaster" and e.start < last and e.end > first]
        if "$filter" in req.query:
            predicate, _ = parse_filter(req.query["$filter"])
            rows = [e for e in rows if predicate(e.get)]
        rows = _order(rows, req.query.get("$orderby"), default_desc=False,
                      default_key="start/dateTime")
        cursor = _Cursor("event", rows, _int_param(req.query, "$skip", 0),
                         _top(req.query, 10, 1000), req.path,
                         f"users('{mailbox.user['id']}')/calendarView", select=select,
                         tz=self._time_zone(req))
        return self._serve_page(req, cursor)

    def _calendar_delta(self, req: _Request, mailbox: _Mailbox) -> bytes:
        if "$skiptoken" in req.query:
            return self._continue(req, delta=True)
        if "$deltatoken" in req.query:
            state = self._delta_state(req.query["$deltatoken"])
        else:
            state = _DeltaState(
                mailbox, "event", since=-1, window=self._window(req),
                select=_canonical_select(req.query.get("$select"), EVENT_PROPERTIES, "event"),
                page_size=_top(req.query, 10, 1000), tz=self._time_zone(req))
        first, last = state.window or (float("-inf"), float("inf"))
        with mailbox.lock:
            upto = self._seq
            rows: list[Any] = sorted(
                (e for e in mailbox.events.values() if e.type != "seriesMaster"
                 and e.seq > state.since and e.start < last and e.end > first),
                key=lambda e: (e.start, e.id))
            if state.since >= 0:
                rows += [t for t in mailbox.tombstones if t.entity == "event"
                         and t.seq > state.since and t.start < last and t.end > first]
        next_state = replace(state, since=upto)
        cursor = _Cursor("event", rows, 0, self._delta_page_size(req, state.page_size),
                         req.path, f"users('{mailbox.user['id']}')/calendarView/delta",
                         select=state.select, tz=state.tz, delta=next_state)
        return self._serve_page(req, cursor)

    def _events(self, req: _Request, mailbox: _Mailbox) -> bytes:
        """`/events`: single instances and series masters (no occurrences), as Graph lists."""
        if "$skiptoken" in req.query:
            return self._continue(req)
        select = _canonical_select(req.query.get("$select"), EVENT_PROPERTIES, "event")
        with mailbox.lock:
            rows = [e for e in mailbox.events.values()
                    if e.type in ("singleInstance", "seriesMaster")]
        if "$filter" in req.query:
            predicate, _ = parse_filter(req.query["$filter"])
            rows = [e for e in rows if predicate(e.get)]
        rows = _order(rows, req.query.get("$orderby"), default_desc=False,
                      default_key="start/dateTime")
        cursor = _Cursor("event", rows, _int_param(req.query, "$skip", 0),
                         _top(req.query, 10, 1000), req.path,
                         f"users('{mailbox.user['id']}')/events", select=select,
                         tz=self._time_zone(req))
        return self._serve_page(req, cursor)

    def _event(self, req: _Request, mailbox: _Mailbox, event_id: str) -> bytes:
        event = mailbox.events.get(event_id)
        if event is None:
            raise GraphError(404, "ErrorItemNotFound",
                             "The specified object was not found in the store.")
        select = _canonical_select(req.query.get("$select"), EVENT_PROPERTIES, "event")
        out = {"@odata.context": f"{self.graph_url}/$metadata#users('{mailbox.user['id']}')"
                                 "/events/$entity"}
        out.update(_render_event(event, select, self._time_zone(req)))
        return orjson.dumps(out)


def _render_event(event: _Event, select: list[str] | None, tz: str) -> dict[str, Any]:
    record = event.record
    zone = _zone(tz) or UTC
    times = {
        "start": {"dateTime": _fmt_local(event.start, zone), "timeZone": tz},
        "end": {"dateTime": _fmt_local(event.end, zone), "timeZone": tz},
    }
    out = {"@odata.etag": _etag(event.change_key), "id": event.id}
    keys = select if select is not None else [k for k in record if not k.startswith(("_", "@"))]
    for key in keys:
        if key in times and isinstance(record.get(key), dict):
            out[key] = times[key]
        elif key in record:
            out[key] = record[key]
    return out
