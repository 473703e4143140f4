"""Paging: the server-side state behind a `$skiptoken` (`_Cursor`) and a `$deltatoken`
(`_DeltaState`), the tombstones a delta round reports as `@removed`, and a page with its
`@odata.nextLink` or `@odata.deltaLink` (`Prefer: odata.maxpagesize`, the empty-pages fault).
The rows themselves are rendered by the emulator, which knows every entity (`_render`)."""

from __future__ import annotations

import base64
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from devtools.emulators.graph.faults import Faults
from devtools.emulators.graph.odata import GraphError, _Request

if TYPE_CHECKING:
    from devtools.emulators.graph.mailboxes import _Mailbox

MAX_CURSORS = 20_000
MAX_DELTA_STATES = 100_000


@dataclass
class _Tombstone:
    seq: int
    id: str
    folder: str | None = None
    start: float = 0.0
    end: float = 0.0
    entity: str = "message"


@dataclass
class _Cursor:
    """Server-side state behind one `$skiptoken`."""

    entity: str  # message | event | folder | directory
    rows: list[Any]
    offset: int
    page_size: int
    path: str
    context: str
    select: list[str] | None = None
    tz: str | None = None
    delta: _DeltaState | None = None  # set for delta rounds: the state the deltaLink resumes


@dataclass
class _DeltaState:
    """Server-side state behind one `$deltatoken`."""

    mailbox: _Mailbox
    entity: str  # message | event
    since: int
    folder: str | None = None
    received_after: tuple[str, float] | None = None
    change_type: str | None = None
    window: tuple[float, float] | None = None
    select: list[str] | None = None
    page_size: int = 10
    tz: str | None = None


class PagingMixin:
    """Cursors and delta states kept behind opaque tokens, and the pages served from them."""

    faults: Faults
    base_url: str
    graph_url: str
    _lock: threading.Lock
    _cursors: OrderedDict[str, _Cursor]
    _deltas: OrderedDict[str, _DeltaState]
    _pages: int

    def _delta_page_size(self, req: _Request, default: int) -> int:
        wanted = req.prefer.get("odata.maxpagesize")
        if wanted and wanted.isdigit() and int(wanted) > 0:
            req.applied.append(f"odata.maxpagesize={wanted}")
            return min(int(wanted), 1000)
        return default

    def _delta_state(self, token: str) -> _DeltaState:
        with self._lock:
            state = self._deltas.get(token)
        if state is None:
            raise GraphError(410, "SyncStateNotFound",
                             "The sync state was not found or has expired. Restart the sync "
                             "without a delta token.")
        return state

    def _remember(self, store: OrderedDict[str, Any], value: Any, limit: int) -> str:
        token = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")
        with self._lock:
            store[token] = value
            while len(store) > limit:
                store.popitem(last=False)
        return token

    def _continue(self, req: _Request, delta: bool = False) -> bytes:
        with self._lock:
            cursor = self._cursors.get(req.query["$skiptoken"])
        if cursor is None:
            if delta:
                raise GraphError(410, "SyncStateNotFound",
                                 "The sync state was not found or has expired. Restart the "
                                 "sync without a token.")
            raise GraphError(400, "BadRequest", "The $skiptoken value is invalid or expired.")
        if cursor.delta is not None:
            size = self._delta_page_size(req, cursor.page_size)
        else:
            size = cursor.page_size
        if cursor.entity == "event" and req.prefer.get("outlook.timezone"):
            tz = self._time_zone(req)
        else:
            tz = cursor.tz
        return self._serve_page(req, replace(cursor, page_size=size, tz=tz))

    def _serve_page(self, req: _Request, cursor: _Cursor) -> bytes:
        faults = self.faults
        with self._lock:
            self._pages += 1
            empty = bool(faults.empty_pages_every) and self._pages % faults.empty_pages_every == 0
        base = self.base_url + quote(req.path, safe="/()$.@:,=")
        context = orjson.dumps(f"{self.graph_url}/$metadata#{cursor.context}")
        link = b""
        if empty:
            items: list[bytes] = []
            token = self._remember(self._cursors, cursor, MAX_CURSORS)
            link = b',"@odata.nextLink":' + orjson.dumps(f"{base}?$skiptoken={token}")
        else:
            end = cursor.offset + cursor.page_size
            items = self._render(cursor, cursor.rows[cursor.offset:end])
            if end < len(cursor.rows):
                token = self._remember(self._cursors, replace(cursor, offset=end), MAX_CURSORS)
                link = b',"@odata.nextLink":' + orjson.dumps(f"{base}?$skiptoken={token}")
            elif cursor.delta is not None:
                token = self._remember(self._deltas, cursor.delta, MAX_DELTA_STATES)
                link = b',"@odata.deltaLink":' + orjson.dumps(f"{base}?$deltatoken={token}")
        return (b'{"@odata.context":' + context + b',"value":[' + b",".join(items) + b"]"
                + link + b"}")

    def _render(self, cursor: _Cursor, rows: list[Any]) -> list[bytes]:
        """A page's rows as JSON (`GraphEmulator._render`)."""
        raise NotImplementedError


def _removed(tomb: _Tombstone, entity: str) -> dict[str, Any]:
    return {"@odata.type": f"#microsoft.graph.{entity}", "id": tomb.id,
            "@removed": {"reason": "deleted"}}
