"""A user's mailbox as the emulator keeps it (`_Mailbox`: folders, messages, events and the
tombstones of what left, read from `graph/mailboxes/<id>/` on first use), the routes under
`/users/{id}/`, and what the admin API shares: finding a mailbox, numbering changes."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from devtools.emulators.graph.events import _Event
from devtools.emulators.graph.mail import _Message
from devtools.emulators.graph.odata import GraphError, _Request

if TYPE_CHECKING:
    from devtools.emulators.graph.paging import _Tombstone

DELTA_SEGMENTS = {"delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()"}


class _Mailbox:
    def __init__(self, user: dict[str, Any], directory: Path) -> None:
        self.user = user
        self.directory = directory
        self.lock = threading.RLock()
        self.loaded = False
        self.folders: dict[str, dict[str, Any]] = {}
        self.well_known: dict[str, str] = {}
        self.messages: dict[str, _Message] = {}
        self.events: dict[str, _Event] = {}
        self.tombstones: list[_Tombstone] = []
        self.version = 0
        self._sorted: tuple[int, list[_Message]] | None = None
        self._counts: tuple[int, dict[str, tuple[int, int]]] | None = None

    def ensure_loaded(self) -> None:
        with self.lock:
            if self.loaded:
                return
            collecting = gc.isenabled()
            gc.disable()  # hundreds of thousands of new objects: skip the collector's churn
            try:
                self._load()
            finally:
                if collecting:
                    gc.enable()
            self.loaded = True

    def _load(self) -> None:
        for folder in orjson.loads((self.directory / "folders.json").read_bytes()):
            self.folders[folder["id"]] = folder
            if folder.get("_wellKnownName"):
                self.well_known[folder["_wellKnownName"].lower()] = folder["id"]
        self._load_ndjson("messages.ndjson", self._add_message_line)
        self._load_ndjson("events.ndjson", self._add_event_line)

    def _load_ndjson(self, name: str, add: Callable[[bytes], None]) -> None:
        path = self.directory / name
        if not path.exists():
            return
        with path.open("rb") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    add(line)

    def _add_message_line(self, line: bytes) -> None:
        msg = _Message(orjson.loads(line))
        self.messages[msg.id] = msg

    def _add_event_line(self, line: bytes) -> None:
        event = _Event(orjson.loads(line))
        self.events[event.id] = event

    def folder_id(self, key: str) -> str | None:
        if key in self.folders:
            return key
        return self.well_known.get(key.lower())

    def sorted_messages(self) -> list[_Message]:
        """All messages, newest received first (cached per mailbox version)."""
        if self._sorted is None or self._sorted[0] != self.version:
            ordered = sorted(self.messages.values(), key=lambda m: (m.ts, m.id), reverse=True)
            self._sorted = (self.version, ordered)
        return self._sorted[1]

    def folder_counts(self) -> dict[str, tuple[int, int]]:
        if self._counts is None or self._counts[0] != self.version:
            counts: dict[str, list[int]] = {}
            for msg in self.messages.values():
                total_unread = counts.setdefault(msg.folder or "", [0, 0])
                total_unread[0] += 1
                total_unread[1] += msg.unread
            self._counts = (self.version, {k: (v[0], v[1]) for k, v in counts.items()})
        return self._counts[1]


class MailboxMixin:
    """The mailboxes of the directory's users."""

    _mailboxes: dict[str, _Mailbox]
    _lock: threading.Lock
    _seq: int

    @property
    def mailbox_ids(self) -> list[str]:
        return list(self._mailboxes)

    def preload(self) -> None:
        """Load every mailbox now (otherwise each loads on its first request), with the orders
        and counts its requests read (cached until the mailbox changes): the first client
        served pays no more than the next (`make bench` times a first load against a later
        fetch-only pass)."""
        for mailbox in self._mailboxes.values():
            mailbox.ensure_loaded()
            mailbox.sorted_messages()
            mailbox.folder_counts()

    def _admin_mailbox(self, user: str) -> _Mailbox:
        record = self._find_user(user, by_mail=True)
        mailbox = self._mailboxes.get(record["id"]) if record else None
        if mailbox is None:
            raise KeyError(f"no mailbox for {user!r}")
        mailbox.ensure_loaded()
        return mailbox

    def _next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def _mailbox_route(self, req: _Request, mailbox: _Mailbox, rest: list[str]) -> bytes:
        low = [s.lower() for s in rest]
        uid = mailbox.user["id"]
        if low == ["mailfolders"]:
            return self._folders(req, mailbox, mailbox.folder_id("msgfolderroot"),
                                 f"users('{uid}')/mailFolders")
        if low and low[0] == "mailfolders" and len(rest) >= 2:
            folder = mailbox.folder_id(rest[1])
            if folder is None:
                raise GraphError(404, "ErrorItemNotFound",
                                 "The specified object was not found in the store.")
            tail = low[2:]
            if not tail:
                return self._folder(req, mailbox, folder)
            if tail == ["childfolders"]:
                return self._folders(req, mailbox, folder,
                                     f"users('{uid}')/mailFolders('{folder}')/childFolders")
            if tail == ["messages"]:
                return self._messages(req, mailbox, folder)
            if len(tail) == 2 and tail[0] == "messages" and tail[1] in DELTA_SEGMENTS:
                return self._message_delta(req, mailbox, folder)
            if len(tail) == 2 and tail[0] == "messages":
                return self._message(req, mailbox, rest[3], folder)
        if low == ["messages"]:
            return self._messages(req, mailbox, None)
        if len(low) == 2 and low[0] == "messages":
            return self._message(req, mailbox, rest[1], None)
        if low == ["calendarview"]:
            return self._calendar_view(req, mailbox)
        if len(low) == 2 and low[0] == "calendarview" and low[1] in DELTA_SEGMENTS:
            return self._calendar_delta(req, mailbox)
        if low == ["events"]:
            return self._events(req, mailbox)
        if len(low) == 2 and low[0] == "events":
            return self._event(req, mailbox, rest[1])
        raise GraphError(400, "BadRequest",
                         f"Resource not found for the segment '{rest[-1] if rest else ''}'.")
