"""The Dataverse Web API as Microsoft documents it, for the `account` and `contact` tables.

Sources (learn.microsoft.com, power-apps/developer/data-platform): "Query data using the Web
API", "Page results using OData", "Use change tracking to synchronize data with external
systems", "Service protection API limits", "Lookup properties" / "Query data: lookup property
annotations". What the emulator does, and where the documents are silent what it chooses:

- `GET /api/data/v9.2/accounts` and `/contacts`: `$select` of the table's columns (an unknown
  one: 400, error 0x80060888 "Could not find a property named ..."); the primary key comes
  back even when not selected, with each row's `@odata.etag`. A contact's parent customer is
  the lookup `_parentcustomerid_value` (a GUID); with `Prefer: odata.include-annotations=...`
  naming `Microsoft.Dynamics.CRM.lookuplogicalname` (or `*`) it carries
  `_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname` ("account" or
  "contact"), and `...associatednavigationproperty` / `OData.Community.Display.V1.
  FormattedValue` when those are asked. The navigation property `parentcustomerid` itself
  cannot be selected.
- `Prefer: odata.maxpagesize=N` (at most and by default 5,000 rows a page): an
  `@odata.nextLink` with a `$skiptoken` paging cookie until the last page;
  `Preference-Applied` says which preferences were honoured.
- `Prefer: odata.track-changes`: the last page carries `@odata.deltaLink` with a
  `$deltatoken=<version>!<UTC time>`, as Dataverse's tokens look. A GET with `$deltatoken`
  returns the rows created or changed since (their current state) and, for rows deleted
  since, `{"@odata.context": "<base>/$metadata#<set>/$deletedEntity", "id": ..., "reason":
  "deleted"}`; its `@odata.context` ends in `/$delta`; it pages like a full read and ends with
  a new deltaLink. Change tracking data is kept 7 days by default (the organisation's
  `ExpireChangeTrackingInDays`): an older token is answered 400 with Dataverse's
  ExpiredVersionStamp error (code 0x80044352, "Version stamp associated with the client has
  expired. Please perform a full sync."). The documents give the code and message, not the
  HTTP status: 400 is the status Dataverse gives its other request errors. The emulator's
  clock can be moved forward (`advance_clock`) to expire tokens as time would.
- Service protection: more than 6,000 requests in a sliding 5 minutes (per app user) or more
  than 52 at once is answered 429 with `Retry-After` (seconds) and error 0x80072322 /
  0x80072326; `faults.throttle_every` also throttles every n-th request, deterministically.
- Every API call needs `Authorization: Bearer <token>` from this emulator's token endpoint,
  issued for the scope `<environment URL>/.default`: a missing, unknown, expired or
  other-audience token is 401 with `WWW-Authenticate: Bearer authorization_uri=...,
  resource_id=<environment URL>` and no body.
- The identity platform's token endpoint (`POST /{tenant}/oauth2/v2.0/token`, client
  credentials with the client secret) is served on the same loopback origin, over http: the
  loader's token provider sends a secret's request there as MSAL would. A scope for another
  resource is refused (AADSTS500011).

The rows come from the synthetic organisation (`crm/accounts.csv`, `crm/contacts.csv`,
`manifest.json`): GUIDs derived from the CRM ids, the generator's inactive accounts with
statecode 1, and (chosen by position, deterministically) some contacts with their address in
`emailaddress2`, some inactive, some whose parent customer is another contact.
Admin hooks for tests: `add_row`, `update_row`, `delete_row`, `advance_clock`, `faults`,
`requests` (the log; never the Authorization header).
"""

from __future__ import annotations

import csv
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlsplit

import orjson

from devtools.emulators.graph import RequestLog
from devtools.emulators.server import EmulatorHandler, LoopbackServer

API_PATH = "/api/data/v9.2"
MAX_PAGE_SIZE = 5000
RATE_LIMIT = 6000  # requests per window, per user (service protection)
RATE_WINDOW_SECONDS = 300
CONCURRENCY_LIMIT = 52
DELTA_TOKEN_DAYS = 7  # ExpireChangeTrackingInDays' default
DELTA_EXPIRED_CODE = "0x80044352"
DELTA_EXPIRED_MESSAGE = ("Version stamp associated with the client has expired. Please "
                         "perform a full sync.")
LOOKUP_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
NAVIGATION = "Microsoft.Dynamics.CRM.associatednavigationproperty"
FORMATTED = "OData.Community.Display.V1.FormattedValue"
_GUIDS = uuid.UUID("0b1dd3a4-4c8e-4a0e-9d7f-5b0d6f1f2a11")  # namespace of the derived GUIDs


@dataclass(frozen=True)
class _Table:
    logical: str
    entity_set: str
    key: str
    columns: tuple[str, ...]  # selectable, beside the key


TABLES = {
    "accounts": _Table("account", "accounts", "accountid", (
        "name", "websiteurl", "address1_city", "address1_country", "telephone1",
        "accountnumber", "statecode", "statuscode")),
    "contacts": _Table("contact", "contacts", "contactid", (
        "firstname", "lastname", "fullname", "emailaddress1", "emailaddress2",
        "emailaddress3", "_parentcustomerid_value", "statecode", "statuscode")),
}


@dataclass
class Faults:
    """Switches read on every request. `throttle_every=n` answers 429 to API requests n, 2n,
    ... with `Retry-After: retry_after_seconds`; `stall_after=n` holds API requests n, n+1,
    ... unanswered until `release` is set (a client killed meanwhile); `token_ttl_seconds` is
    the lifetime of the access tokens issued."""

    throttle_every: int = 0
    retry_after_seconds: int = 1
    stall_after: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    token_ttl_seconds: int = 3599
    delta_token_days: int = DELTA_TOKEN_DAYS


class _Reject(Exception):
    def __init__(self, status: int, code: str = "", message: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class _Handler(EmulatorHandler):
    server_version = "Microsoft-IIS/10.0"


def guid(kind: str, crm_id: str) -> str:
    return str(uuid.uuid5(_GUIDS, f"{kind}:{crm_id}"))


class DataverseEmulator(LoopbackServer):
    handler = _Handler
    thread_name = "dataverse-emulator"

    def __init__(self, data_dir: Path | str, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        data_dir = Path(data_dir)
        manifest = orjson.loads((data_dir / "manifest.json").read_bytes())
        credentials = manifest["emulator"]
        self.tenant_id: str = credentials["tenant_id"]
        self.client_id: str = credentials["client_id"]
        self.client_secret: str = credentials["client_secret"]
        self.faults = Faults()
        self.requests = RequestLog()
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, dict[str, Any]]] = {"accounts": {}, "contacts": {}}
        # change tracking: each row's version, and each deletion's (set, id) -> version
        self._versions: dict[tuple[str, str], int] = {}
        self._deleted: dict[tuple[str, str], int] = {}
        self._version = 0
        self._clock_offset = timedelta()
        self._tokens: dict[str, float] = {}  # access token -> expiry (monotonic)
        self._cursors: dict[str, dict[str, Any]] = {}  # paging cookie -> the read it pages
        self._recent: deque[float] = deque()
        self._in_flight = 0
        self._api_count = 0
        self._load(data_dir, set(manifest.get("facts", {}).get("inactive_account_ids", [])))

    # ------------------------------------------------------------------ the data
    def _load(self, data_dir: Path, inactive: set[str]) -> None:
        with (data_dir / "crm" / "accounts.csv").open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                self._put("accounts", guid("account", row["account_id"]), {
                    "name": row["name"], "websiteurl": row["website"] or None,
                    "address1_city": row["city"] or None,
                    "address1_country": row["country"] or None,
                    "telephone1": None, "accountnumber": row["account_id"],
                    "statecode": 1 if row["account_id"] in inactive else 0,
                    "statuscode": 2 if row["account_id"] in inactive else 1,
                })
        previous: str | None = None
        with (data_dir / "crm" / "contacts.csv").open(newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                contactid = guid("contact", row["contact_id"])
                in_second = i % 9 == 4  # the address typed in the second email field
                parent_is_contact = i % 10 == 7 and previous is not None
                inactive_contact = i % 15 == 3
                self._put("contacts", contactid, {
                    "firstname": row["first_name"], "lastname": row["last_name"],
                    "fullname": f"{row['first_name']} {row['last_name']}",
                    "emailaddress1": None if in_second else row["email"],
                    "emailaddress2": row["email"] if in_second else None,
                    "emailaddress3": None,
                    "_parentcustomerid_value": previous if parent_is_contact
                    else guid("account", row["account_id"]),
                    "_parentcustomerid_type": "contact" if parent_is_contact else "account",
                    "statecode": 1 if inactive_contact else 0,
                    "statuscode": 2 if inactive_contact else 1,
                })
                previous = contactid

    def _put(self, entity_set: str, row_id: str, row: dict[str, Any]) -> None:
        self._version += 1
        self._rows[entity_set][row_id] = row
        self._versions[(entity_set, row_id)] = self._version
        self._deleted.pop((entity_set, row_id), None)

    def add_row(self, entity_set: str, **values: Any) -> str:
        """Create a row (as a user in Dynamics 365 would); its new GUID."""
        row_id = str(uuid.uuid4())
        table = TABLES[entity_set]
        row = dict.fromkeys(table.columns)
        row.update({"statecode": 0, "statuscode": 1}, **values)
        if entity_set == "contacts":
            row.setdefault("_parentcustomerid_type", "account")
        with self._lock:
            self._put(entity_set, row_id, row)
        return row_id

    def update_row(self, entity_set: str, row_id: str, **values: Any) -> None:
        with self._lock:
            row = dict(self._rows[entity_set][row_id])
            row.update(values)
            self._put(entity_set, row_id, row)

    def delete_row(self, entity_set: str, row_id: str) -> None:
        with self._lock:
            del self._rows[entity_set][row_id]
            self._versions.pop((entity_set, row_id), None)
            self._version += 1
            self._deleted[(entity_set, row_id)] = self._version

    def rows(self, entity_set: str) -> dict[str, dict[str, Any]]:
        """The table as stored now: id -> columns (a copy)."""
        with self._lock:
            return {k: dict(v) for k, v in self._rows[entity_set].items()}

    @property
    def api_requests(self) -> int:
        """API requests received so far (answered or not: a stalled one counts)."""
        with self._lock:
            return self._api_count

    def advance_clock(self, delta: timedelta) -> None:
        """Move the emulator's clock forward (delta tokens age with it)."""
        with self._lock:
            self._clock_offset += delta

    def _now(self) -> datetime:
        return datetime.now(UTC) + self._clock_offset

    # ------------------------------------------------------------------ URLs
    @property
    def url(self) -> str:
        """The environment URL (DATAVERSE_URL)."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def login_url(self) -> str:
        return self.url

    def env(self) -> dict[str, str]:
        """The loader's settings for this emulator."""
        return {"DATAVERSE_URL": self.url, "GRAPH_LOGIN_URL": self.login_url,
                "GRAPH_TENANT_ID": self.tenant_id, "GRAPH_CLIENT_ID": self.client_id,
                "GRAPH_CLIENT_SECRET": self.client_secret}

    # ------------------------------------------------------------------ HTTP
    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        path = parts.path
        status, payload, headers = 500, b"", {}
        api = path.startswith(API_PATH + "/")
        entered = False
        try:
            if method == "POST" and path.endswith("/oauth2/v2.0/token"):
                status, payload = self._token(path, body)
            elif api:
                self._authorise(handler)
                count = self._admit()
                entered = True
                self._maybe_stall(count)
                status, payload, headers = self._get(method, path, parts.query, handler)
            else:
                raise _Reject(404, "0x80060888", f"Resource not found for the segment '{path}'.")
        except _Reject as exc:
            status, headers = exc.status, exc.headers
            payload = orjson.dumps({"error": {"code": exc.code, "message": exc.message}}) \
                if exc.code else b""
        except Exception as exc:  # noqa: BLE001 - answered as a server error, never a crash
            status, payload = 500, orjson.dumps({"error": {"code": "0x80040216",
                                                           "message": repr(exc)}})
        finally:
            if entered:
                with self._lock:
                    self._in_flight -= 1
        self.requests.append({
            "method": method, "path": path, "query": unquote(parts.query),
            "prefer": handler.headers.get("Prefer"), "status": status,
            "retry_after": headers.get("Retry-After"), "at": time.monotonic(),
        })
        handler.send_response(status)
        if payload:
            handler.send_header("Content-Type", "application/json; odata.metadata=minimal")
            handler.send_header("OData-Version", "4.0")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if payload:
            handler.wfile.write(payload)

    # ------------------------------------------------------------------ sign-in
    def _token(self, path: str, body: bytes) -> tuple[int, bytes]:
        tenant = path.split("/")[1]
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))

        def refuse(error: str, code: int, description: str) -> tuple[int, bytes]:
            return 400 if error != "invalid_client" else 401, orjson.dumps({
                "error": error, "error_description": f"AADSTS{code}: {description}",
                "error_codes": [code]})

        if tenant != self.tenant_id:
            return refuse("invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return refuse("unsupported_grant_type", 70003, "The app requested an unsupported "
                          "grant type.")
        if form.get("client_id") != self.client_id:
            return refuse("unauthorized_client", 700016, f"Application with identifier "
                          f"'{form.get('client_id')}' was not found in the directory.")
        if not secrets.compare_digest(form.get("client_secret", ""), self.client_secret):
            return refuse("invalid_client", 7000215, "Invalid client secret provided.")
        scope = form.get("scope", "")
        if scope.rstrip("/").lower() not in {f"{self.url}/.default".lower(),
                                             f"{self.url}//.default".lower()}:
            resource = scope.removesuffix("/.default")
            return refuse("invalid_scope", 500011, f"The resource principal named {resource} "
                          f"was not found in the tenant named {self.tenant_id}.")
        token = secrets.token_urlsafe(40)
        ttl = self.faults.token_ttl_seconds
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl
        return 200, orjson.dumps({"token_type": "Bearer", "expires_in": ttl,
                                  "ext_expires_in": ttl, "access_token": token})

    def _authorise(self, handler: BaseHTTPRequestHandler) -> None:
        auth = handler.headers.get("Authorization") or ""
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None or time.monotonic() >= expiry:
            raise _Reject(401, headers={"WWW-Authenticate": (
                f"Bearer authorization_uri={self.login_url}/{self.tenant_id}/oauth2/authorize, "
                f"resource_id={self.url}")})

    def _admit(self) -> int:
        """Service protection: the sliding window, the concurrency and the switched faults."""
        with self._lock:
            now = time.monotonic()
            self._api_count += 1
            count = self._api_count
            while self._recent and self._recent[0] <= now - RATE_WINDOW_SECONDS:
                self._recent.popleft()
            every = self.faults.throttle_every
            retry = str(self.faults.retry_after_seconds)
            if len(self._recent) >= RATE_LIMIT:
                wait = max(1, int(self._recent[0] + RATE_WINDOW_SECONDS - now) + 1)
                raise _Reject(429, "0x80072322", f"Number of requests exceeded the limit of "
                              f"{RATE_LIMIT} over time window of {RATE_WINDOW_SECONDS} seconds.",
                              {"Retry-After": str(wait)})
            if self._in_flight >= CONCURRENCY_LIMIT:
                raise _Reject(429, "0x80072326", "Number of concurrent requests exceeded the "
                              f"limit of {CONCURRENCY_LIMIT}.", {"Retry-After": retry})
            if every and count % every == 0:
                raise _Reject(429, "0x80072322", f"Number of requests exceeded the limit of "
                              f"{RATE_LIMIT} over time window of {RATE_WINDOW_SECONDS} seconds.",
                              {"Retry-After": retry})
            self._recent.append(now)
            self._in_flight += 1
        return count

    def _maybe_stall(self, count: int) -> None:
        stall = self.faults.stall_after
        if stall and count >= stall:
            self.faults.release.wait(120)

    # ------------------------------------------------------------------ reads
    def _get(self, method: str, path: str, query: str,
             handler: BaseHTTPRequestHandler) -> tuple[int, bytes, dict[str, str]]:
        entity_set = path[len(API_PATH) + 1:]
        if entity_set not in TABLES:
            raise _Reject(404, "0x80060888", f"Resource not found for the segment "
                          f"'{entity_set}'.")
        if method != "GET":
            raise _Reject(405, "0x80060888", f"The HTTP method '{method}' is not allowed.")
        table = TABLES[entity_set]
        options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        select = self._select(table, options.get("$select"))
        prefer = _preferences(handler.headers.get("Prefer") or "")
        applied: list[str] = []
        size = MAX_PAGE_SIZE
        if "odata.maxpagesize" in prefer:
            try:
                size = max(1, min(MAX_PAGE_SIZE, int(prefer["odata.maxpagesize"])))
            except ValueError:
                size = MAX_PAGE_SIZE
            applied.append(f"odata.maxpagesize={size}")
        annotations = prefer.get("odata.include-annotations", "").strip('"')
        if annotations:
            applied.append(f'odata.include-annotations="{annotations}"')
        base = f"{self.url}{API_PATH}"
        select_text = ",".join(select)
        cursor = self._cursor(table, options, "odata.track-changes" in prefer)
        if cursor["tracking"] and "$skiptoken" not in options:
            applied.append("odata.track-changes")
        with self._lock:
            if cursor["since"] is None:
                ids = sorted(self._rows[entity_set])
                entries = [(i, self._rows[entity_set][i]) for i in ids if i > cursor["after"]]
            else:
                changed = [(v, i) for (s, i), v in self._versions.items()
                           if s == entity_set and cursor["since"] < v <= cursor["upto"]]
                gone = [(v, i) for (s, i), v in self._deleted.items()
                        if s == entity_set and cursor["since"] < v <= cursor["upto"]]
                merged = sorted({i: None for _, i in changed + gone})
                entries = [(i, self._rows[entity_set].get(i)) for i in merged
                           if i > cursor["after"]]
            page, rest = entries[:size], entries[size:]
            value = []
            for row_id, row in page:
                if row is None:
                    value.append({"@odata.context": f"{base}/$metadata#{entity_set}/"
                                  "$deletedEntity", "id": row_id, "reason": "deleted"})
                else:
                    value.append(self._render(table, row_id, row, select, annotations))
        context = f"{base}/$metadata#{entity_set}({select_text})"
        if cursor["since"] is not None:
            context += "/$delta"
        answer: dict[str, Any] = {"@odata.context": context, "value": value}
        own = f"{base}/{entity_set}?$select={quote(select_text, safe=',')}"
        if rest:
            cookie = secrets.token_hex(8)
            with self._lock:
                self._cursors[cookie] = {**cursor, "after": page[-1][0],
                                         "page": cursor["page"] + 1}
            skip = (f'<cookie pagenumber="{cursor["page"] + 1}" pagingcookie="{cookie}" '
                    'istracking="False" />')
            answer["@odata.nextLink"] = f"{own}&$skiptoken={quote(skip, safe='')}"
        elif cursor["tracking"]:
            stamp = self._now().strftime("%m/%d/%Y %H:%M:%S")
            token = quote(f"{cursor['upto']}!{stamp}", safe="")
            answer["@odata.deltaLink"] = f"{own}&$deltatoken={token}"
        headers = {"Preference-Applied": ",".join(applied)} if applied else {}
        return 200, orjson.dumps(answer), headers

    def _select(self, table: _Table, text: str | None) -> list[str]:
        if not text:
            return [table.key, *table.columns]
        names = [name.strip() for name in text.split(",") if name.strip()]
        for name in names:
            if name != table.key and name not in table.columns:
                raise _Reject(400, "0x80060888", f"Could not find a property named '{name}' "
                              f"on type 'Microsoft.Dynamics.CRM.{table.logical}'.")
        return names

    def _cursor(self, table: _Table, options: dict[str, str], tracking: bool) -> dict[str, Any]:
        """Where this read stands: a page of an earlier read (`$skiptoken`), a delta read
        (`$deltatoken`), or a new read."""
        skip = options.get("$skiptoken")
        if skip is not None:
            start = skip.find('pagingcookie="')
            cookie = skip[start + 14:].split('"', 1)[0] if start >= 0 else ""
            with self._lock:
                cursor = self._cursors.get(cookie)
            if cursor is None or cursor["set"] != table.entity_set:
                raise _Reject(400, "0x80040203", "Invalid paging cookie.")
            return cursor
        with self._lock:
            upto = self._version
        token = options.get("$deltatoken")
        if token is None:
            return {"set": table.entity_set, "since": None, "upto": upto, "after": "",
                    "page": 1, "tracking": tracking}
        version, _, stamp = token.partition("!")
        try:
            since = int(version)
            issued = datetime.strptime(stamp, "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            raise _Reject(400, "0x80040203", "Invalid delta token.") from None
        if self._now() - issued > timedelta(days=self.faults.delta_token_days):
            raise _Reject(400, DELTA_EXPIRED_CODE, DELTA_EXPIRED_MESSAGE)
        return {"set": table.entity_set, "since": since, "upto": upto, "after": "",
                "page": 1, "tracking": True}

    def _render(self, table: _Table, row_id: str, row: dict[str, Any], select: list[str],
                annotations: str) -> dict[str, Any]:
        out: dict[str, Any] = {"@odata.etag": f'W/"{self._versions[(table.entity_set, row_id)]}"'}
        for name in select:
            if name == table.key:
                continue
            out[name] = row.get(name)
            if name == "_parentcustomerid_value" and row.get(name) is not None:
                kind = row.get("_parentcustomerid_type", "account")
                if _wanted(annotations, FORMATTED):
                    parent = self._rows[f"{kind}s"].get(row[name], {})
                    out[f"{name}@{FORMATTED}"] = parent.get("name") or parent.get("fullname")
                if _wanted(annotations, NAVIGATION):
                    out[f"{name}@{NAVIGATION}"] = f"parentcustomerid_{kind}"
                if _wanted(annotations, LOOKUP_NAME):
                    out[f"{name}@{LOOKUP_NAME}"] = kind
            if name == "statecode" and _wanted(annotations, FORMATTED):
                out[f"{name}@{FORMATTED}"] = "Inactive" if row.get(name) else "Active"
        out[table.key] = row_id
        return out


def _preferences(header: str) -> dict[str, str]:
    prefs: dict[str, str] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name:
            prefs[name.strip().lower()] = value.strip()
    # include-annotations' value is quoted and may itself hold commas
    marker = "odata.include-annotations="
    at = header.lower().find(marker)
    if at >= 0:
        rest = header[at + len(marker):].strip()
        if rest.startswith('"'):
            prefs["odata.include-annotations"] = rest[1:].split('"', 1)[0]
    return prefs


def _wanted(annotations: str, name: str) -> bool:
    for pattern in (p.strip() for p in annotations.split(",")):
        if pattern == "*" or pattern == name or (
                pattern.endswith(".*") and name.startswith(pattern[:-1])):
            return True
    return False
