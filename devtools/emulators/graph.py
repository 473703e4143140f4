"""A Microsoft Graph v1.0 emulator serving a synthetic organisation (see `devtools.synthetic`).

It speaks HTTP on loopback with the shapes, paging, errors and throttling Microsoft documents,
so the Graph loader can be exercised end to end without a tenant. Like Microsoft's, its
identity platform ("login") and Graph are two origins:

- login, always over https (MSAL, the loaders' client, accepts nothing else), with a
  certificate authority made at start-up (`ca_bundle`: what REQUESTS_CA_BUNDLE must name):
  `GET /{tenant}/v2.0/.well-known/openid-configuration` (the OpenID configuration MSAL reads
  first) and `POST /{tenant}/oauth2/v2.0/token` (client credentials, with the client secret or
  a certificate's signed client assertion, checked as Entra checks them: `register_certificate`
  / `--client-certificate` uploads a certificate to the app registration)
- Graph, over http (or https with `tls=True` / `--tls`), with Bearer checks on every call:
  `/v1.0/users`, `/users/{id|userPrincipalName}`, `/groups`, `/groups/{id}`,
  `/groups/{id}/members|transitiveMembers[/microsoft.graph.user|group]`
- `/users/{id}/mailFolders[/{id|well-known name}[/childFolders|/messages[/delta]]]`,
  `/users/{id}/messages[/{id}]`
- `/users/{id}/calendarView[/delta]`, `/users/{id}/events[/{id}]`

Paging links carry opaque tokens mapped to server-side state. Faults (throttling, outages,
mailbox concurrency, access denied, empty pages, token expiry, latency) are switched at run time
through `GraphEmulator.faults`; mailbox changes between two syncs through `add_message`,
`update_message`, `delete_message`, `add_event`, `update_event`, `delete_event`.

CLI: `python -m devtools.emulators.graph --data DIR [--port 0] [--token-ttl 3600]
[--latency-ms 0] [--tls] [--client-certificate PEM ...]` prints `GRAPH_API_URL=...`,
`GRAPH_LOGIN_URL=...`, `GRAPH_TENANT_ID=...`, `GRAPH_CLIENT_ID=...` and
`REQUESTS_CA_BUNDLE=...` and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import gc
import operator
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jwt
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from devtools.emulators.server import EmulatorHandler, LoopbackServer
from devtools.emulators.tls import loopback_tls

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

MESSAGE_PROPERTIES = (
    "bccRecipients", "body", "bodyPreview", "categories", "ccRecipients", "changeKey",
    "conversationId", "conversationIndex", "createdDateTime", "flag", "from", "hasAttachments",
    "id", "importance", "inferenceClassification", "internetMessageHeaders", "internetMessageId",
    "isDeliveryReceiptRequested", "isDraft", "isRead", "isReadReceiptRequested",
    "lastModifiedDateTime", "parentFolderId", "receivedDateTime", "replyTo", "sender",
    "sentDateTime", "subject", "toRecipients", "uniqueBody", "webLink",
)
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
FOLDER_PROPERTIES = (
    "childFolderCount", "displayName", "id", "isHidden", "parentFolderId", "sizeInBytes",
    "totalItemCount", "unreadItemCount",
)

JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)
DELTA_SEGMENTS = {"delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()"}
LOGGED_HEADERS = ("prefer", "client-request-id", "user-agent", "consistencylevel", "content-type")
MAX_CURSORS = 20_000
MAX_DELTA_STATES = 100_000


# ---------------------------------------------------------------------------- public types
@dataclass
class Faults:
    """Fault switches, read on every request (change them while the emulator runs).

    Counters are deterministic: `throttle_every=5` fails requests 5, 10, 15... counted over all
    /v1.0 requests since start."""

    throttle_every: int = 0
    throttle_retry_after: int = 1
    unavailable_every: int = 0
    unavailable_retry_after: int = 1
    gateway_timeout_every: int = 0
    mailbox_concurrency_limit: int = 0
    forbidden_mailboxes: set[str] = field(default_factory=set)
    empty_pages_every: int = 0
    malformed_messages: bool = True
    token_ttl_seconds: int = 3600
    latency_ms: int = 0


class RequestLog:
    """Thread-safe list of the requests served (never the Authorization header or a secret)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []

    def append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._items.append(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def matching(self, path_contains: str = "", status: int | None = None) -> list[dict[str, Any]]:
        return [r for r in self.snapshot() if path_contains in r["path"]
                and (status is None or r["status"] == status)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.snapshot())

    def __getitem__(self, index: int) -> dict[str, Any]:
        with self._lock:
            return self._items[index]


class GraphError(Exception):
    """An error answered in Graph's JSON shape."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class _AadError(Exception):
    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CERT_DOCS = ("Review the documentation at "
             "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .")


class _KeyCredential:
    """A certificate uploaded to the app registration, by its thumbprints (`x5t`: base64url
    of the SHA-1 of its DER, `x5t#S256`: of the SHA-256; unpadded)."""

    def __init__(self, certificate: x509.Certificate) -> None:
        self.certificate = certificate
        sha1 = certificate.fingerprint(hashes.SHA1())  # what `x5t` is (RFC 7515)
        sha256 = certificate.fingerprint(hashes.SHA256())
        self.thumbprint = sha1.hex().upper()
        self.x5t = base64.urlsafe_b64encode(sha1).decode().rstrip("=")
        self.x5t_s256 = base64.urlsafe_b64encode(sha256).decode().rstrip("=")

    @property
    def period(self) -> str:
        """As Entra quotes a key: `Start=06/29/2021 21:13:15, End=06/29/2023 21:13:15`."""
        fmt = "%m/%d/%Y %H:%M:%S"
        return (f"Start={self.certificate.not_valid_before_utc.strftime(fmt)}, "
                f"End={self.certificate.not_valid_after_utc.strftime(fmt)}")


def _tenant_not_found(tenant: str) -> str:
    return (f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.")


def _aad_time(epoch: Any) -> str:
    try:
        moment = datetime.fromtimestamp(float(epoch), UTC)
    except (TypeError, ValueError, OverflowError):
        moment = datetime.fromtimestamp(0, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


# ---------------------------------------------------------------------------- helpers
def _epoch(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        text = value[:-1] + "+00:00" if value.endswith("Z") else value
        if "." in text:  # Graph sends 7 fractional digits; Python parses at most 6
            head, _, tail = text.partition(".")
            digits = re.match(r"\d*", tail).group(0)  # type: ignore[union-attr]
            text = f"{head}.{digits[:6]}{tail[len(digits):]}"
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


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


def _now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(15)).decode()


def _new_id(prefix: str = "AAMkAG") -> str:
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(39)).decode()


def _nested(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _canonical_select(raw: str | None, known: Iterable[str] | None,
                      entity: str) -> list[str] | None:
    """The $select list with Graph's case-insensitive property names; None when absent."""
    if raw is None:
        return None
    names = [p.strip() for p in raw.split(",") if p.strip()]
    if known is None:
        return names
    lookup = {k.lower(): k for k in known}
    out = []
    for name in names:
        if name.lower() not in lookup:
            raise GraphError(400, "RequestBroker--ParseUri",
                             f"Could not find a property named '{name}' on type "
                             f"'microsoft.graph.{entity}'.")
        out.append(lookup[name.lower()])
    return out


# ---------------------------------------------------------------------------- $filter
_TOKEN = re.compile(r"\s*(\(|\)|,|'(?:[^']|'')*'|[^\s(),]+)")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}
Getter = Callable[[str], Any]
Predicate = Callable[[Getter], bool]


class _FilterParser:
    """A small OData $filter parser: comparisons, and/or/not, parentheses, startswith()."""

    def __init__(self, text: str) -> None:
        self.tokens = _TOKEN.findall(text)
        self.pos = 0
        self.clauses: list[tuple[str, str, Any]] = []

    def parse(self) -> Predicate:
        if not self.tokens:
            raise self._error()
        pred = self._or()
        if self.pos != len(self.tokens):
            raise self._error()
        return pred

    def _error(self) -> GraphError:
        return GraphError(400, "BadRequest", "Invalid filter clause")

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise self._error()
        self.pos += 1
        return token

    def _or(self) -> Predicate:
        parts = [self._and()]
        while (self._peek() or "").lower() == "or":
            self.pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda g: any(p(g) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._factor()]
        while (self._peek() or "").lower() == "and":
            self.pos += 1
            parts.append(self._factor())
        return parts[0] if len(parts) == 1 else (lambda g: all(p(g) for p in parts))

    def _factor(self) -> Predicate:
        token = self._take()
        if token.lower() == "not":
            inner = self._factor()
            return lambda g: not inner(g)
        if token == "(":
            inner = self._or()
            if self._take() != ")":
                raise self._error()
            return inner
        if token.lower() in ("startswith", "endswith") and self._peek() == "(":
            return self._function(token.lower())
        op = self._take().lower()
        if op not in _OPS:
            raise self._error()
        literal = _literal(self._take())
        self.clauses.append((token, op, literal))
        return _comparison(token, op, literal)

    def _function(self, name: str) -> Predicate:
        self._take()
        path = self._take()
        if self._take() != ",":
            raise self._error()
        literal = _literal(self._take())
        if self._take() != ")" or not isinstance(literal, str):
            raise self._error()
        needle = literal.lower()

        def pred(get: Getter) -> bool:
            value = get(path)
            if not isinstance(value, str):
                return False
            hay = value.lower()
            return hay.startswith(needle) if name == "startswith" else hay.endswith(needle)

        return pred


class _DateLiteral(float):
    """A DateTimeOffset literal, as epoch seconds."""


def _literal(token: str) -> Any:
    if token.startswith("'") and token.endswith("'") and len(token) >= 2:
        text = token[1:-1].replace("''", "'")
        epoch = _epoch(text) if _DATETIME.match(text) else None
        return _DateLiteral(epoch) if epoch is not None else text
    low = token.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    if _DATETIME.match(token):
        epoch = _epoch(token)
        if epoch is None:
            raise GraphError(400, "BadRequest", f"Invalid filter clause: bad date '{token}'")
        return _DateLiteral(epoch)
    try:
        return float(token) if "." in token else int(token)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid filter clause near '{token}'") from exc


def _compare(value: Any, op: str, literal: Any) -> bool:
    if isinstance(literal, _DateLiteral):
        value = value if isinstance(value, float) else _epoch(value)
    elif isinstance(literal, str) and isinstance(value, str):
        value, literal = value.lower(), literal.lower()
    if op == "eq":
        return value == literal
    if op == "ne":
        return value != literal
    if value is None or literal is None:
        return False
    try:
        if op == "gt":
            return value > literal
        if op == "ge":
            return value >= literal
        if op == "lt":
            return value < literal
        return value <= literal
    except TypeError:
        return False


def _comparison(path: str, op: str, literal: Any) -> Predicate:
    return lambda get: _compare(get(path), op, literal)


def parse_filter(text: str) -> tuple[Predicate, list[tuple[str, str, Any]]]:
    parser = _FilterParser(text)
    return parser.parse(), parser.clauses


# ---------------------------------------------------------------------------- the store
# Messages are kept as pre-serialized `"key":value` fragments: a $select is then a join of
# bytes (fast), and repeated fragments (empty lists, flags, template bodies) are shared.
_INTERNED_KEYS = frozenset((
    "@odata.type", "categories", "hasAttachments", "bodyPreview", "importance", "body",
    "uniqueBody", "isDeliveryReceiptRequested", "isReadReceiptRequested", "isDraft", "isRead",
    "inferenceClassification", "bccRecipients", "ccRecipients", "replyTo", "flag",
))
_INTERN_LIMIT = 200_000
_interned: dict[bytes, bytes] = {}
_key_prefix: dict[str, bytes] = {}
_key_orders: dict[tuple[str, ...], tuple[tuple[str, ...], dict[str, int]]] = {}


def _fragments(record: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, int], tuple[bytes, ...]]:
    keys = tuple(k for k in record if not k.startswith("_"))
    order = _key_orders.get(keys)
    if order is None:
        order = _key_orders.setdefault(keys, (keys, {k: i for i, k in enumerate(keys)}))
    frags = []
    for key in keys:
        prefix = _key_prefix.get(key)
        if prefix is None:
            prefix = _key_prefix.setdefault(key, orjson.dumps(key) + b":")
        frag = prefix + orjson.dumps(record[key])
        if key in _INTERNED_KEYS and len(_interned) < _INTERN_LIMIT:
            frag = _interned.setdefault(frag, frag)
        frags.append(frag)
    return order[0], order[1], tuple(frags)


class _Message:
    __slots__ = ("keys", "index", "frags", "id", "folder", "ts", "unread", "draft", "malformed",
                 "change_key", "etag", "seq", "cseq")

    def __init__(self, record: dict[str, Any], seq: int = 0) -> None:
        self.keys, self.index, self.frags = _fragments(record)
        self.id: str = record["id"]
        self.folder: str | None = record.get("parentFolderId")
        self.ts = _epoch(record.get("receivedDateTime")) or float("-inf")
        self.unread = not record.get("isRead", False)
        self.draft = bool(record.get("isDraft"))
        self.malformed = "from" not in record or record.get("toRecipients") is None
        self.change_key: str = record.get("changeKey") or ""
        self.etag = b'"@odata.etag":' + orjson.dumps(_etag(self.change_key))
        self.seq = seq
        self.cseq = seq

    @property
    def record(self) -> dict[str, Any]:
        return orjson.loads(b"{" + b",".join(self.frags) + b"}")

    def render(self, select: list[str] | None) -> bytes:
        """The message as JSON: all properties, or `@odata.etag`, `id` and the selection."""
        return _Renderer(select)(self)

    def get(self, path: str) -> Any:
        if path == "receivedDateTime":
            return self.ts
        if path == "parentFolderId":
            return self.folder
        if path == "isDraft":
            return self.draft
        return _nested(self.record, path)


class _Renderer:
    """Renders messages as JSON for one `$select` (None: all properties): `@odata.etag`, `id`
    and the selected properties the message has, in the selection's order. The positions of
    those properties are worked out once per property order (messages share a few)."""

    def __init__(self, select: list[str] | None) -> None:
        self._select = select
        self._pickers: dict[int, Callable[[tuple[bytes, ...]], tuple[bytes, ...]]] = {}

    def _picker(self, index: dict[str, int]) -> Callable[[tuple[bytes, ...]], tuple[bytes, ...]]:
        if self._select is None:
            return lambda frags: frags
        positions = [index["id"], *(index[key] for key in self._select
                                    if key in index and key != "id")]
        if len(positions) == 1:
            only = positions[0]
            return lambda frags: (frags[only],)
        return operator.itemgetter(*positions)

    def __call__(self, message: _Message) -> bytes:
        pick = self._pickers.get(id(message.index))
        if pick is None:  # message.index is shared by every message of that property order
            pick = self._pickers[id(message.index)] = self._picker(message.index)
        return b"{" + b",".join((message.etag, *pick(message.frags))) + b"}"


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


@dataclass
class _Tombstone:
    seq: int
    id: str
    folder: str | None = None
    start: float = 0.0
    end: float = 0.0
    entity: str = "message"


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


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    request_id: str
    prefer: dict[str, str] = field(default_factory=dict)
    mailbox: str | None = None
    applied: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- the emulator
class GraphEmulator(LoopbackServer):
    """The Graph emulator over a synthetic organisation directory (see module docstring)."""

    thread_name = "graph-emulator"

    def __init__(self, data_dir: str | Path, host: str = "127.0.0.1", port: int = 0,
                 tenant_id: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, token_ttl_seconds: int = 3600,
                 tls: bool = False,
                 client_certificates: Iterable[str | bytes | Path] = ()) -> None:
        self.data_dir = Path(data_dir)
        self.graph_over_tls = tls
        self._key_credentials: dict[tuple[str, str], _KeyCredential] = {}
        for certificate in client_certificates:
            self.register_certificate(certificate)
        self._tls_dir: Path | None = None
        self._ca_file: Path | None = None
        self._login: _LoginListener | None = None
        manifest_path = self.data_dir / "manifest.json"
        manifest = orjson.loads(manifest_path.read_bytes()) if manifest_path.exists() else {}
        creds = manifest.get("emulator", {})
        self.tenant_id: str = tenant_id or creds.get("tenant_id") or str(uuid.uuid4())
        self.client_id: str = client_id or creds.get("client_id") or "demo-client-id"
        self.client_secret: str = client_secret or creds.get("client_secret") or "demo-secret"
        self.org_domain: str | None = manifest.get("org_domain")
        self.faults = Faults(token_ttl_seconds=token_ttl_seconds)
        self.requests = RequestLog()
        super().__init__(host, port)
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._deltas: OrderedDict[str, _DeltaState] = OrderedDict()
        self._inflight: dict[str, int] = {}
        self._graph_requests = 0
        self._pages = 0
        self._seq = 0
        self._load_directory()

    # ------------------------------------------------------------------ lifecycle
    def _load_directory(self) -> None:
        graph = self.data_dir / "graph"
        self.users: list[dict[str, Any]] = orjson.loads((graph / "users.json").read_bytes())
        self.groups: list[dict[str, Any]] = orjson.loads((graph / "groups.json").read_bytes())
        self._user_keys: dict[str, dict[str, Any]] = {}
        for user in self.users:
            self._user_keys[user["id"].lower()] = user
            if user.get("userPrincipalName"):
                self._user_keys[user["userPrincipalName"].lower()] = user
        self._groups_by_id = {g["id"]: g for g in self.groups}
        self._mailboxes: dict[str, _Mailbox] = {}
        for user in self.users:
            directory = graph / "mailboxes" / user["id"]
            if directory.is_dir():
                self._mailboxes[user["id"]] = _Mailbox(user, directory)

    def start(self) -> GraphEmulator:
        """Make the certificate authority and server certificate, then serve login (https) on
        one port and Graph (http, or https with `tls`) on another."""
        self._tls_dir = Path(tempfile.mkdtemp(prefix="graph-emulator-tls-"))
        # removed by stop(), or when the emulator is garbage-collected or the process exits
        weakref.finalize(self, shutil.rmtree, self._tls_dir, True)
        server_tls = loopback_tls(self._tls_dir, (self._host,))
        self._ca_file = server_tls.ca_file
        self.tls = server_tls.context if self.graph_over_tls else None
        super().start()
        self._login = _LoginListener(self, self._host, server_tls.context).start()
        return self

    def stop(self) -> None:
        if self._login is not None:
            self._login.stop()
            self._login = None
        super().stop()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = self._ca_file = None

    @property
    def login_url(self) -> str:
        """The identity platform's base (GRAPH_LOGIN_URL): always https."""
        if self._login is None:
            raise RuntimeError("the emulator is not running")
        return f"https://{self._host}:{self._login.port}"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self._host}:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def ca_bundle(self) -> str:
        """The PEM file of the certificate authority that signed the emulator's certificate:
        what REQUESTS_CA_BUNDLE must name for a client to trust it (exists while running)."""
        if self._ca_file is None:
            raise RuntimeError("the emulator is not running")
        return str(self._ca_file)

    def environment(self) -> dict[str, str]:
        """The loaders' settings for this emulator, with the client secret
        (docs/configuration.md)."""
        return {"GRAPH_API_URL": self.graph_url, "GRAPH_LOGIN_URL": self.login_url,
                "GRAPH_TENANT_ID": self.tenant_id, "GRAPH_CLIENT_ID": self.client_id,
                "GRAPH_CLIENT_SECRET": self.client_secret, "REQUESTS_CA_BUNDLE": self.ca_bundle}

    def revoke_tokens(self) -> None:
        """Forget every access token issued so far (as a revocation or a signing-key rollover
        does): Graph answers 401 for them, however long they had left."""
        with self._lock:
            self._tokens.clear()

    def register_certificate(self, certificate: str | bytes | Path) -> list[str]:
        """Upload certificates to the app registration (Entra: Certificates & secrets ->
        Certificates -> Upload certificate): a PEM file's path or PEM text; only its
        CERTIFICATE blocks are read (a private key beside them is ignored, as the portal never
        sees it). Returns their SHA-1 thumbprints as the portal shows them."""
        pem = (Path(certificate).read_bytes() if isinstance(certificate, Path)
               else certificate.encode() if isinstance(certificate, str) else certificate)
        thumbprints = []
        for cert in x509.load_pem_x509_certificates(pem):
            key = _KeyCredential(cert)
            self._key_credentials[("x5t", key.x5t)] = key
            self._key_credentials[("x5t#S256", key.x5t_s256)] = key
            thumbprints.append(key.thumbprint)
        return thumbprints

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

    # ------------------------------------------------------------------ admin API (not Graph)
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

    def add_message(self, user_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """Add a message to a mailbox (`parentFolderId` may be a well-known name; default
        Inbox). Missing id/changeKey/timestamps are filled in. Returns the stored message."""
        mailbox = self._admin_mailbox(user_id)
        record = dict(message)
        now = _now_stamp()
        record.setdefault("id", _new_id())
        record.setdefault("changeKey", _new_change_key())
        for key in ("createdDateTime", "lastModifiedDateTime", "receivedDateTime",
                    "sentDateTime"):
            record.setdefault(key, now)
        record.setdefault("isDraft", False)
        record.setdefault("isRead", False)
        with mailbox.lock:
            folder = mailbox.folder_id(record.get("parentFolderId") or "inbox")
            if folder is None:
                raise KeyError(f"unknown folder {record.get('parentFolderId')!r}")
            record["parentFolderId"] = folder
            msg = _Message(record, self._next_seq())
            mailbox.messages[msg.id] = msg
            mailbox.version += 1
        return record

    def update_message(self, user_id: str, message_id: str,
                       changes: dict[str, Any]) -> dict[str, Any]:
        """Change a message (a new `parentFolderId` moves it: a removal in the old folder)."""
        mailbox = self._admin_mailbox(user_id)
        with mailbox.lock:
            old = mailbox.messages[message_id]
            record = old.record
            record.update(changes)
            if "parentFolderId" in changes:
                folder = mailbox.folder_id(changes["parentFolderId"])
                if folder is None:
                    raise KeyError(f"unknown folder {changes['parentFolderId']!r}")
                record["parentFolderId"] = folder
            record["changeKey"] = _new_change_key()
            record.setdefault("lastModifiedDateTime", _now_stamp())
            if "lastModifiedDateTime" not in changes:
                record["lastModifiedDateTime"] = _now_stamp()
            seq = self._next_seq()
            if record["parentFolderId"] != old.folder:
                mailbox.tombstones.append(_Tombstone(seq, old.id, folder=old.folder))
            msg = _Message(record, seq)
            msg.cseq = old.cseq
            mailbox.messages[message_id] = msg
            mailbox.version += 1
        return record

    def delete_message(self, user_id: str, message_id: str) -> None:
        mailbox = self._admin_mailbox(user_id)
        with mailbox.lock:
            old = mailbox.messages.pop(message_id)
            mailbox.tombstones.append(_Tombstone(self._next_seq(), old.id, folder=old.folder))
            mailbox.version += 1

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

    # ------------------------------------------------------------------ HTTP entry point
    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        """A request to the Graph origin."""
        self._serve(handler, method, login=False)

    def _serve(self, handler: BaseHTTPRequestHandler, method: str, login: bool) -> None:
        started = time.perf_counter()
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        url = urlsplit(handler.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        req = _Request(method, unquote(url.path), query, handler.headers, body,
                       str(uuid.uuid4()))
        headers: dict[str, str] = {}
        try:
            discovery = re.fullmatch(r"/([^/]+)/v2\.0/\.well-known/openid-configuration",
                                     req.path)
            if not login and (req.path == "/v1.0" or req.path.startswith("/v1.0/")):
                status, payload, headers = self._graph(req)
                content_type = JSON_TYPE
            elif login and method == "POST" and re.fullmatch(r"/[^/]+/oauth2/v2\.0/token",
                                                             req.path):
                status, payload = self._token(req)
                content_type = "application/json; charset=utf-8"
            elif login and method == "GET" and discovery:
                status, payload = self._openid_configuration(discovery.group(1))
                content_type = "application/json; charset=utf-8"
            else:
                raise GraphError(404, "UnknownError", f"No route for {method} {req.path}")
        except GraphError as exc:
            status, payload, headers = exc.status, self._error_body(exc, req), exc.headers
            content_type = JSON_TYPE
        except Exception as exc:  # noqa: BLE001 - answered as Graph would, never crash a thread
            error = GraphError(500, "generalException", f"An unexpected error occurred: {exc!r}")
            status, payload, headers = 500, self._error_body(error, req), {}
            content_type = JSON_TYPE
        # Logged before the answer leaves, so a client that has its answer finds it logged.
        self._log(req, status, started)
        self._send(handler, req, status, payload, content_type, headers)

    def _send(self, handler: BaseHTTPRequestHandler, req: _Request, status: int, payload: bytes,
              content_type: str, headers: dict[str, str]) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("request-id", req.request_id)
        handler.send_header("client-request-id",
                            req.headers.get("client-request-id") or req.request_id)
        handler.send_header("OData-Version", "4.0")
        if req.applied:
            handler.send_header("Preference-Applied", ", ".join(req.applied))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _log(self, req: _Request, status: int, started: float) -> None:
        headers = {h: req.headers[h] for h in LOGGED_HEADERS if req.headers.get(h)}
        self.requests.append({
            "method": req.method, "path": req.path, "query": dict(req.query),
            "headers": headers, "status": status, "mailbox": req.mailbox,
            "request_id": req.request_id, "started": started,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        })

    def _error_body(self, exc: GraphError, req: _Request) -> bytes:
        return orjson.dumps({"error": {
            "code": exc.code, "message": exc.message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": req.request_id,
                "client-request-id": req.headers.get("client-request-id") or req.request_id,
            },
        }})

    # ------------------------------------------------------------------ token endpoint
    def _token(self, req: _Request) -> tuple[int, bytes]:
        tenant = req.path.split("/")[1]
        form = dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            self._check_token_request(tenant, form, req)
        except _AadError as exc:
            return exc.status, self._aad_error(exc)
        token = secrets.token_urlsafe(48)
        ttl = int(self.faults.token_ttl_seconds)
        with self._lock:
            self._tokens[token] = time.monotonic()
        return 200, orjson.dumps({"token_type": "Bearer", "expires_in": ttl,
                                  "ext_expires_in": ttl, "access_token": token})

    def _check_token_request(self, tenant: str, form: dict[str, str], req: _Request) -> None:
        basic = req.headers.get("Authorization") or ""
        if basic.lower().startswith("basic "):  # client_secret_basic
            try:
                decoded = base64.b64decode(basic[6:]).decode("utf-8", "replace")
            except ValueError:
                decoded = ""
            form.setdefault("client_id", unquote(decoded.partition(":")[0]))
            form.setdefault("client_secret", unquote(decoded.partition(":")[2]))
        if not self._known_tenant(tenant):
            raise _AadError(400, "invalid_request", 90002, _tenant_not_found(tenant))
        if form.get("grant_type") != "client_credentials":
            raise _AadError(400, "unsupported_grant_type", 70003,
                            "The app requested an unsupported grant type "
                            f"'{form.get('grant_type', '')}'.")
        if "scope" not in form:
            raise _AadError(400, "invalid_request", 900144,
                            "The request body must contain the following parameter: 'scope'.")
        if not form["scope"].endswith("/.default"):
            raise _AadError(400, "invalid_scope", 1002012,
                            f"The provided value for scope {form['scope']} is not valid. Client "
                            "credential flows must have a scope value with /.default suffixed "
                            "to the resource identifier (application ID URI).")
        if form.get("client_id") != self.client_id:
            raise _AadError(400, "unauthorized_client", 700016,
                            f"Application with identifier '{form.get('client_id', '')}' was "
                            f"not found in the directory '{tenant}'. This can happen if the "
                            "application has not been installed by the administrator of the "
                            "tenant or consented to by any user in the tenant. You may have "
                            "sent your authentication request to the wrong tenant.")
        if form.get("client_assertion_type") or form.get("client_assertion"):
            self._check_client_assertion(tenant, form)
            return
        if not form.get("client_secret"):
            raise _AadError(401, "invalid_client", 7000216,
                            "'client_assertion', 'client_secret' or 'request' is required for "
                            "the 'client_credentials' grant type.")
        if not secrets.compare_digest(form["client_secret"], self.client_secret):
            raise _AadError(401, "invalid_client", 7000215,
                            "Invalid client secret provided. Ensure the secret being sent in "
                            "the request is the client secret value, not the client secret ID, "
                            f"for a secret added to app '{self.client_id}'.")

    def _known_tenant(self, tenant: str) -> bool:
        """The tenant's id, its domain or its onmicrosoft.com name."""
        tenants = {self.tenant_id.lower()}
        if self.org_domain:
            prefix = self.org_domain.split(".")[0]
            tenants |= {self.org_domain.lower(), f"{prefix}.onmicrosoft.com"}
        return tenant.lower() in tenants

    def _check_client_assertion(self, tenant: str, form: dict[str, str]) -> None:
        """A certificate credential (private_key_jwt), checked in Entra's order: the signing
        key among the app's registered certificates (by the `x5t#S256` or `x5t` header), that
        key's validity, the signature (RS256 or PS256), the time range, the audience (this
        tenant's token endpoint), and `iss` = `sub` = the client id."""
        assertion = form.get("client_assertion") or ""
        if form.get("client_assertion_type") != JWT_BEARER or not assertion:
            raise _AadError(400, "invalid_request", 900144,
                            "The request body must contain the following parameter: "
                            f"'client_assertion_type' = '{JWT_BEARER}' and 'client_assertion'.")
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _AadError(401, "invalid_client", 50027,
                            "JWT token is invalid or malformed.") from None
        key, used = self._signing_key(header)
        app = f"for app Id '{self.client_id}'"
        if key is None:
            raise _AadError(401, "invalid_client", 700027,
                            "Client assertion contains an invalid signature. [Reason - The key "
                            f"was not found., Thumbprint of key used by client: '{used}', "
                            "Please visit the Azure Portal, Graph Explorer or directly use MS "
                            f"Graph to see configured keys {app}.]")
        found = f"Thumbprint of key used by client: '{used}', Found key '{key.period}'"
        now = datetime.now(UTC)
        if now >= key.certificate.not_valid_after_utc:
            raise _AadError(401, "invalid_client", 700027,
                            "Client assertion contains an invalid signature. [Reason - The key "
                            f"used is expired., {found}]")
        if now < key.certificate.not_valid_before_utc:
            raise _AadError(401, "invalid_client", 700027,
                            "Client assertion contains an invalid signature. [Reason - The key "
                            f"used is not yet valid., {found}]")
        audiences = [f"{self.login_url}/{t}/oauth2/{v}token" for t in {tenant, self.tenant_id}
                     for v in ("v2.0/", "")]
        try:
            claims = jwt.decode(assertion, key.certificate.public_key(),
                                algorithms=["RS256", "PS256"], audience=audiences,
                                options={"require": ["aud", "exp", "iss", "sub"]})
        except jwt.InvalidSignatureError:
            raise _AadError(401, "invalid_client", 700027,
                            "Client assertion contains an invalid signature. [Reason - The "
                            "provided signature value did not match the expected signature "
                            f"value., {found}]") from None
        except jwt.InvalidAlgorithmError:
            raise _AadError(401, "invalid_client", 700027,
                            "Client assertion contains an invalid signature. [Reason - Key was "
                            f"found, but use of the key to verify the signature failed., {found}]"
                            ) from None
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            raise _AadError(401, "invalid_client", 700024,
                            "Client assertion is not within its valid time range. Current time: "
                            f"{_aad_time(now.timestamp())}, assertion valid from "
                            f"{_aad_time(unverified.get('nbf', 0))}, expiry time of assertion "
                            f"{_aad_time(unverified.get('exp', 0))}. {CERT_DOCS}") from None
        except jwt.InvalidAudienceError:
            raise _AadError(401, "invalid_client", 700023,
                            f"Client assertion audience claim does not match Realm issuer. "
                            f"{CERT_DOCS}") from None
        except jwt.PyJWTError:
            raise _AadError(401, "invalid_client", 50027,
                            "JWT token is invalid or malformed.") from None
        if claims["iss"] != self.client_id or claims["sub"] != self.client_id:
            raise _AadError(401, "invalid_client", 700021,
                            "Client assertion application identifier doesn't match 'client_id' "
                            f"parameter. {CERT_DOCS}")

    def _signing_key(self, header: dict[str, Any]) -> tuple[_KeyCredential | None, str]:
        """The registered certificate the assertion's header names, and its thumbprint (hex,
        as Entra quotes it)."""
        for name in ("x5t#S256", "x5t"):
            value = header.get(name)
            if isinstance(value, str) and value:
                key = self._key_credentials.get((name, value.rstrip("=")))
                try:
                    used = base64.urlsafe_b64decode(value.rstrip("=") + "==").hex().upper()
                except ValueError:
                    used = value
                return key, used
        return None, ""

    def _openid_configuration(self, tenant: str) -> tuple[int, bytes]:
        """The tenant's OpenID Provider configuration, in the shape Entra serves at
        `/{tenant}/v2.0/.well-known/openid-configuration` (endpoints under the tenant's id)."""
        if not self._known_tenant(tenant):
            trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            return 400, orjson.dumps({
                "error": "invalid_tenant",
                "error_description": f"AADSTS90002: {_tenant_not_found(tenant)}\r\nTrace ID: "
                                     f"{trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: "
                                     f"{stamp}",
                "error_codes": [90002], "timestamp": stamp, "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"{self.login_url}/error?code=90002",
            })
        base = f"{self.login_url}/{self.tenant_id}"
        return 200, orjson.dumps({
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat",
                                 "auth_time", "acr", "nonce", "preferred_username", "name",
                                 "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        })

    def _aad_error(self, exc: _AadError) -> bytes:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return orjson.dumps({
            "error": exc.error,
            "error_description": f"AADSTS{exc.code}: {exc.description}\r\nTrace ID: {trace}"
                                 f"\r\nCorrelation ID: {correlation}\r\nTimestamp: {stamp}",
            "error_codes": [exc.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{self.login_url}/error?code={exc.code}",
        })

    def _authenticate(self, req: _Request) -> None:
        header = req.headers.get("Authorization") or ""
        challenge = {"WWW-Authenticate": 'Bearer realm="", authorization_uri="https://'
                     'login.microsoftonline.com/common/oauth2/authorize", '
                     'client_id="00000003-0000-0000-c000-000000000000"'}
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.",
                             challenge)
        with self._lock:
            issued = self._tokens.get(header[7:].strip())
        if issued is None:
            raise GraphError(401, "InvalidAuthenticationToken",
                             "IDX14100: JWT is not well formed, there are no dots (.).",
                             challenge)
        if time.monotonic() - issued >= self.faults.token_ttl_seconds:
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Access token has expired or is not yet valid.", challenge)

    # ------------------------------------------------------------------ Graph routing
    def _graph(self, req: _Request) -> tuple[int, bytes, dict[str, str]]:
        self._authenticate(req)
        self._request_faults()
        req.prefer = _parse_prefer(req.headers.get_all("Prefer") or [])
        if req.method != "GET":
            raise GraphError(405, "Request_BadRequest",
                             f"The HTTP method '{req.method}' is not supported by the emulator.")
        segments = [s for s in req.path[len("/v1.0"):].split("/") if s]
        if not segments:
            raise GraphError(400, "BadRequest", "Invalid request.")
        root = segments[0].lower()
        if root == "me":
            raise GraphError(400, "BadRequest",
                             "/me request is only valid with delegated authentication flow.")
        if root == "users":
            payload = self._users_route(req, segments[1:])
        elif root == "groups":
            payload = self._groups_route(req, segments[1:])
        else:
            raise GraphError(400, "BadRequest",
                             f"Resource not found for the segment '{segments[0]}'.")
        return 200, payload, {}

    def _request_faults(self) -> None:
        faults = self.faults
        with self._lock:
            self._graph_requests += 1
            n = self._graph_requests
        if faults.throttle_every and n % faults.throttle_every == 0:
            raise GraphError(429, "TooManyRequests",
                             "Too many requests. Please retry after the indicated time.",
                             {"Retry-After": str(faults.throttle_retry_after)})
        if faults.unavailable_every and n % faults.unavailable_every == 0:
            raise GraphError(503, "ServiceNotAvailable", "Service unavailable. Try again later.",
                             {"Retry-After": str(faults.unavailable_retry_after)})
        if faults.gateway_timeout_every and n % faults.gateway_timeout_every == 0:
            raise GraphError(504, "GatewayTimeout", "The gateway did not receive a timely "
                             "response from the upstream server.")

    def _sleep_latency(self) -> None:
        if self.faults.latency_ms > 0:
            time.sleep(self.faults.latency_ms / 1000)

    def _find_user(self, key: str, by_mail: bool = False) -> dict[str, Any] | None:
        user = self._user_keys.get(key.lower())
        if user is None and by_mail:
            user = next((u for u in self.users if (u.get("mail") or "").lower() == key.lower()),
                        None)
        return user

    def _users_route(self, req: _Request, rest: list[str]) -> bytes:
        if not rest:
            self._sleep_latency()
            return self._directory_collection(req, list(self.users), "users")
        user = self._find_user(rest[0])
        if len(rest) == 1:
            self._sleep_latency()
            if user is None:
                raise GraphError(404, "Request_ResourceNotFound",
                                 f"Resource '{rest[0]}' does not exist or one of its queried "
                                 "reference-property objects are not present.")
            return self._directory_object(req, user, "users/$entity")
        if user is None:
            raise GraphError(404, "ErrorInvalidUser",
                             f"The requested user '{rest[0]}' is invalid.")
        mailbox = self._mailboxes.get(user["id"])
        if mailbox is None:
            raise GraphError(404, "MailboxNotEnabledForRESTAPI",
                             "The mailbox is either inactive, soft-deleted, or is hosted "
                             "on-premise.")
        req.mailbox = user["id"]
        self._check_forbidden(user)
        with self._mailbox_slot(user["id"]):
            self._sleep_latency()
            mailbox.ensure_loaded()
            return self._mailbox_route(req, mailbox, rest[1:])

    def _check_forbidden(self, user: dict[str, Any]) -> None:
        keys = {str(k).lower() for k in self.faults.forbidden_mailboxes}
        names = {user["id"].lower(), (user.get("mail") or "").lower(),
                 (user.get("userPrincipalName") or "").lower()}
        if keys & names:
            raise GraphError(403, "ErrorAccessDenied",
                             "Access is denied. Check credentials and try again.")

    def _mailbox_slot(self, user_id: str) -> _Slot:
        return _Slot(self, user_id)

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

    # ------------------------------------------------------------------ directory
    def _directory_select(self, req: _Request) -> list[str] | None:
        return _canonical_select(req.query.get("$select"), None, "directoryObject")

    def _directory_object(self, req: _Request, obj: dict[str, Any], context: str) -> bytes:
        out = {"@odata.context": f"{self.graph_url}/$metadata#{context}"}
        out.update(_project_directory(obj, self._directory_select(req)))
        return orjson.dumps(out)

    def _directory_collection(self, req: _Request, objects: list[dict[str, Any]],
                              context: str) -> bytes:
        if "$skiptoken" in req.query:
            return self._continue(req)
        if "$filter" in req.query:
            predicate, _ = parse_filter(req.query["$filter"])
            objects = [o for o in objects if predicate(lambda p, o=o: _nested(o, p))]
        page_size = _top(req.query, default=100, maximum=999)
        cursor = _Cursor("directory", objects, 0, page_size, req.path, context,
                         select=self._directory_select(req))
        return self._serve_page(req, cursor)

    def _groups_route(self, req: _Request, rest: list[str]) -> bytes:
        self._sleep_latency()
        groups = [_public_group(g) for g in self.groups]
        if not rest:
            return self._directory_collection(req, groups, "groups")
        group = self._groups_by_id.get(rest[0])
        if group is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{rest[0]}' does not exist or one of its queried "
                             "reference-property objects are not present.")
        low = [s.lower() for s in rest[1:]]
        if not low:
            return self._directory_object(req, _public_group(group), "groups/$entity")
        if low[0] in ("members", "transitivemembers") and len(low) <= 2:
            members = self._members(group, transitive=low[0] == "transitivemembers")
            cast = low[1] if len(low) == 2 else None
            if cast not in (None, "microsoft.graph.user", "microsoft.graph.group"):
                raise GraphError(400, "BadRequest",
                                 f"Resource not found for the segment '{rest[-1]}'.")
            if cast:
                members = [m for m in members if m["@odata.type"] == f"#{cast}"]
            context = "users" if cast == "microsoft.graph.user" else "directoryObjects"
            return self._directory_collection(req, members, context)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[1]}'.")

    def _members(self, group: dict[str, Any], transitive: bool) -> list[dict[str, Any]]:
        users_by_id = {u["id"]: u for u in self.users}
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        queue = list(group.get("members", []))
        while queue:
            member_id = queue.pop(0)
            if member_id in seen:
                continue
            seen.add(member_id)
            if member_id in users_by_id:
                out.append({"@odata.type": "#microsoft.graph.user", **users_by_id[member_id]})
            elif member_id in self._groups_by_id:
                nested = self._groups_by_id[member_id]
                out.append({"@odata.type": "#microsoft.graph.group", **_public_group(nested)})
                if transitive:
                    queue.extend(nested.get("members", []))
        return out

    # ------------------------------------------------------------------ mail folders
    def _render_folder(self, mailbox: _Mailbox, folder: dict[str, Any],
                       select: list[str] | None) -> dict[str, Any]:
        total, unread = mailbox.folder_counts().get(folder["id"], (0, 0))
        children = sum(1 for f in mailbox.folders.values()
                       if f.get("parentFolderId") == folder["id"])
        full = {k: v for k, v in folder.items() if not k.startswith("_")}
        full.update({"childFolderCount": children, "totalItemCount": total,
                     "unreadItemCount": unread})
        if select is None:
            return full
        return {"id": full["id"], **{k: full[k] for k in select if k in full}}

    def _folder(self, req: _Request, mailbox: _Mailbox, folder_id: str) -> bytes:
        select = _canonical_select(req.query.get("$select"), FOLDER_PROPERTIES, "mailFolder")
        out = {"@odata.context": f"{self.graph_url}/$metadata#users('{mailbox.user['id']}')"
                                 "/mailFolders/$entity"}
        with mailbox.lock:
            out.update(self._render_folder(mailbox, mailbox.folders[folder_id], select))
        return orjson.dumps(out)

    def _folders(self, req: _Request, mailbox: _Mailbox, parent: str | None,
                 context: str) -> bytes:
        if "$skiptoken" in req.query:
            return self._continue(req)
        select = _canonical_select(req.query.get("$select"), FOLDER_PROPERTIES, "mailFolder")
        hidden = req.query.get("includeHiddenFolders", "").lower() == "true"
        with mailbox.lock:
            rows = [self._render_folder(mailbox, f, None) for f in mailbox.folders.values()
                    if f.get("parentFolderId") == parent and (hidden or not f.get("isHidden"))]
        if "$filter" in req.query:
            predicate, _ = parse_filter(req.query["$filter"])
            rows = [r for r in rows if predicate(lambda p, r=r: _nested(r, p))]
        cursor = _Cursor("folder", rows, 0, _top(req.query, 10, 1000), req.path, context,
                         select=select)
        return self._serve_page(req, cursor)

    # ------------------------------------------------------------------ messages
    def _visible(self, msg: _Message) -> bool:
        return self.faults.malformed_messages or not msg.malformed

    def _messages(self, req: _Request, mailbox: _Mailbox, folder: str | None) -> bytes:
        if "$skiptoken" in req.query:
            return self._continue(req)
        select = _canonical_select(req.query.get("$select"), MESSAGE_PROPERTIES, "message")
        with mailbox.lock:
            rows = [m for m in mailbox.sorted_messages()
                    if (folder is None or m.folder == folder) and self._visible(m)]
        if "$filter" in req.query:
            predicate, _ = parse_filter(req.query["$filter"])
            rows = [m for m in rows if predicate(m.get)]
        rows = _order(rows, req.query.get("$orderby"), default_desc=True,
                      default_key="receivedDateTime")
        offset = _int_param(req.query, "$skip", 0)
        uid = mailbox.user["id"]
        context = f"users('{uid}')/messages" if folder is None else \
            f"users('{uid}')/mailFolders('{folder}')/messages"
        cursor = _Cursor("message", rows, offset, _top(req.query, 10, 1000), req.path, context,
                         select=select)
        return self._serve_page(req, cursor)

    def _message(self, req: _Request, mailbox: _Mailbox, message_id: str,
                 folder: str | None) -> bytes:
        select = _canonical_select(req.query.get("$select"), MESSAGE_PROPERTIES, "message")
        msg = mailbox.messages.get(message_id)
        if msg is None or (folder is not None and msg.folder != folder):
            raise GraphError(404, "ErrorItemNotFound",
                             "The specified object was not found in the store.")
        out = {"@odata.context": f"{self.graph_url}/$metadata#users('{mailbox.user['id']}')"
                                 "/messages/$entity"}
        return orjson.dumps(out)[:-1] + b"," + msg.render(select)[1:]

    def _message_delta(self, req: _Request, mailbox: _Mailbox, folder: str) -> bytes:
        if "$skiptoken" in req.query:
            return self._continue(req, delta=True)
        if "$deltatoken" in req.query:
            state = self._delta_state(req.query["$deltatoken"])
        else:
            state = _DeltaState(
                mailbox, "message", since=-1, folder=folder,
                received_after=_delta_filter(req.query.get("$filter")),
                change_type=req.query.get("changeType"),
                select=_canonical_select(req.query.get("$select"), MESSAGE_PROPERTIES,
                                         "message"),
                page_size=_top(req.query, 10, 1000))
        with mailbox.lock:
            upto = self._seq
            rows: list[Any] = []
            if state.change_type != "deleted":
                rows = [m for m in mailbox.sorted_messages() if m.folder == state.folder
                        and m.seq > state.since and self._visible(m)
                        and _received_ok(m, state.received_after)
                        and _change_ok(m, state)]
            if state.since >= 0 and state.change_type in (None, "deleted"):
                rows += [t for t in mailbox.tombstones if t.entity == "message"
                         and t.seq > state.since and t.folder == state.folder]
        next_state = replace(state, since=upto)
        context = f"users('{mailbox.user['id']}')/mailFolders('{folder}')/messages/delta"
        cursor = _Cursor("message", rows, 0, self._delta_page_size(req, state.page_size),
                         req.path, context, select=state.select, delta=next_state)
        return self._serve_page(req, cursor)

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

    # ------------------------------------------------------------------ calendar
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

    # ------------------------------------------------------------------ paging
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
        dumps = orjson.dumps
        if cursor.entity == "message":
            render = _Renderer(cursor.select)
            return [dumps(_removed(r, "message")) if isinstance(r, _Tombstone) else render(r)
                    for r in rows]
        if cursor.entity == "event":
            tz = cursor.tz or "UTC"
            return [dumps(_removed(r, "event") if isinstance(r, _Tombstone)
                          else _render_event(r, cursor.select, tz)) for r in rows]
        if cursor.entity == "folder":
            if cursor.select is None:
                return [dumps(r) for r in rows]
            return [dumps({"id": r["id"], **{k: r[k] for k in cursor.select if k in r}})
                    for r in rows]
        return [dumps(_project_directory(r, cursor.select)) for r in rows]


class _Slot:
    """Counts in-flight requests per mailbox; over the limit answers MailboxConcurrency 429."""

    def __init__(self, emulator: GraphEmulator, user_id: str) -> None:
        self.emulator, self.user_id = emulator, user_id

    def __enter__(self) -> None:
        emu = self.emulator
        with emu._lock:
            emu._inflight[self.user_id] = emu._inflight.get(self.user_id, 0) + 1
            count = emu._inflight[self.user_id]
        limit = emu.faults.mailbox_concurrency_limit
        if limit and count > limit:
            self.__exit__()
            raise GraphError(429, "ApplicationThrottled",
                             "Application is over its MailboxConcurrency limit.",
                             {"Retry-After": str(emu.faults.throttle_retry_after)})

    def __exit__(self, *exc: object) -> None:
        emu = self.emulator
        with emu._lock:
            emu._inflight[self.user_id] -= 1


# ---------------------------------------------------------------------------- rendering
def _etag(change_key: str) -> str:
    return f'W/"{change_key}"'


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


def _removed(tomb: _Tombstone, entity: str) -> dict[str, Any]:
    return {"@odata.type": f"#microsoft.graph.{entity}", "id": tomb.id,
            "@removed": {"reason": "deleted"}}


def _project_directory(obj: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    """A directory object; `@odata.type` kept (member lists), `id` only when selected."""
    out: dict[str, Any] = {}
    if "@odata.type" in obj:
        out["@odata.type"] = obj["@odata.type"]
    if select is None:
        out.update({k: v for k, v in obj.items() if not k.startswith(("_", "@"))})
        return out
    lookup = {k.lower(): k for k in obj}
    for name in select:
        key = lookup.get(name.lower())
        out[key or name] = obj.get(key) if key else None
    return out


def _public_group(group: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in group.items() if k != "members" and not k.startswith("_")}


# ---------------------------------------------------------------------------- query helpers
def _int_param(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.strip().isdigit():
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for query option {name}.")
    return int(raw)


def _top(query: dict[str, str], default: int, maximum: int) -> int:
    top = _int_param(query, "$top", default)
    if top <= 0:
        raise GraphError(400, "BadRequest", "Invalid $top value: must be a positive integer.")
    return min(top, maximum)


def _order(rows: list[Any], orderby: str | None, default_desc: bool,
           default_key: str) -> list[Any]:
    if not orderby:
        if default_key == "receivedDateTime":
            return rows  # already newest first
        return sorted(rows, key=lambda r: (r.get(default_key), r.id), reverse=default_desc)
    parts = orderby.split(",")[0].split()
    path, desc = parts[0], len(parts) > 1 and parts[1].lower() == "desc"

    def key(row: Any) -> tuple[int, Any]:
        value = row.get(path)
        if isinstance(value, str) and _DATETIME.match(value):
            value = _epoch(value)
        if isinstance(value, bool):
            value = int(value)
        return (0, "") if value is None else (1, value)

    try:
        return sorted(rows, key=key, reverse=desc)
    except TypeError as exc:
        raise GraphError(400, "BadRequest", f"Invalid $orderby: {orderby}") from exc


def _delta_filter(text: str | None) -> tuple[str, float] | None:
    """Message delta accepts only `receivedDateTime ge|gt {value}`."""
    if not text:
        return None
    match = re.fullmatch(r"\s*receivedDateTime\s+(ge|gt)\s+'?([^'\s]+)'?\s*", text, re.I)
    epoch = _epoch(match.group(2)) if match else None
    if match is None or epoch is None:
        raise GraphError(400, "ErrorInvalidUrlQueryFilter",
                         "The filter is not supported for delta: only "
                         "'receivedDateTime ge {value}' or 'receivedDateTime gt {value}'.")
    return (match.group(1).lower(), epoch)


def _received_ok(msg: _Message, cond: tuple[str, float] | None) -> bool:
    if cond is None:
        return True
    op, value = cond
    return msg.ts > value if op == "gt" else msg.ts >= value


def _change_ok(msg: _Message, state: _DeltaState) -> bool:
    if state.change_type == "created":
        return msg.cseq > state.since
    if state.change_type == "updated":
        return msg.cseq <= state.since
    return True


def _parse_prefer(values: list[str]) -> dict[str, str]:
    prefer: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            name, _, arg = part.strip().partition("=")
            if name:
                prefer[name.strip().lower()] = arg.strip().strip('"')
    return prefer


# ---------------------------------------------------------------------------- HTTP plumbing
class _Handler(EmulatorHandler):
    server_version = "Microsoft-IIS/10.0"
    do_PATCH = do_DELETE = EmulatorHandler._dispatch  # noqa: N815 - http.server's naming


GraphEmulator.handler = _Handler


class _LoginListener(LoopbackServer):
    """The identity platform's origin (always https), served by the same emulator."""

    handler = _Handler
    thread_name = "graph-emulator-login"

    def __init__(self, emulator: GraphEmulator, host: str, tls: Any) -> None:
        super().__init__(host, 0, tls)
        self._emulator = emulator

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        self._emulator._serve(handler, method, login=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.emulators.graph",
                                     description="Serve a synthetic organisation as Graph.")
    parser.add_argument("--data", required=True, type=Path, help="the generator's output dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-ttl", type=int, default=3600, help="token lifetime, seconds")
    parser.add_argument("--lazy", action="store_true",
                        help="load each mailbox on first use instead of before serving")
    parser.add_argument("--latency-ms", type=int, default=0,
                        help="added to every Graph request, as a distant tenant would")
    parser.add_argument("--tls", action="store_true",
                        help="serve Graph over https too (login is always https)")
    parser.add_argument("--client-certificate", action="append", default=[], type=Path,
                        metavar="PEM", help="a certificate (PEM) to register for the app, as "
                        "uploaded under Certificates & secrets; repeatable")
    args = parser.parse_args(argv)
    if not (args.data / "graph" / "users.json").exists():
        print(f"error: {args.data} holds no synthetic organisation "
              "(run python -m devtools.synthetic --out DIR first)", file=sys.stderr)
        return 2
    try:
        emulator = GraphEmulator(args.data, host=args.host, port=args.port,
                                 token_ttl_seconds=args.token_ttl, tls=args.tls,
                                 client_certificates=args.client_certificate)
    except (OSError, ValueError) as exc:
        print(f"error: --client-certificate: {exc}", file=sys.stderr)
        return 2
    emulator.faults.latency_ms = args.latency_ms
    if not args.lazy:
        emulator.preload()
    emulator.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"GRAPH_API_URL={emulator.graph_url}")
    print(f"GRAPH_LOGIN_URL={emulator.login_url}")
    print(f"GRAPH_TENANT_ID={emulator.tenant_id}")
    print(f"GRAPH_CLIENT_ID={emulator.client_id}")
    print(f"REQUESTS_CA_BUNDLE={emulator.ca_bundle}", flush=True)
    while not stop.wait(0.5):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
