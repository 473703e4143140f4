"""The emulator: its two origins (Graph; login, always https), each request's way in and out
(routing, Graph's error JSON, the headers, the request log) and its state, composed from the
resources' mixins (`auth`, `certificate`, `faults`, `directory`, `mailboxes`, `mail`,
`events`, `paging`)."""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from devtools.emulators.graph.auth import AuthMixin
from devtools.emulators.graph.certificate import CertificateMixin, _KeyCredential
from devtools.emulators.graph.directory import DirectoryMixin, _project_directory
from devtools.emulators.graph.events import EventsMixin, _render_event
from devtools.emulators.graph.faults import Faults, FaultsMixin
from devtools.emulators.graph.mail import MailMixin, _Renderer
from devtools.emulators.graph.mailboxes import MailboxMixin
from devtools.emulators.graph.odata import JSON_TYPE, GraphError, _parse_prefer, _Request
from devtools.emulators.graph.paging import PagingMixin, _Cursor, _DeltaState, _removed, _Tombstone
from devtools.emulators.server import EmulatorHandler, LoopbackServer
from devtools.emulators.tls import loopback_tls

LOGGED_HEADERS = ("prefer", "client-request-id", "user-agent", "consistencylevel", "content-type")


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


class _Handler(EmulatorHandler):
    server_version = "Microsoft-IIS/10.0"
    do_PATCH = do_DELETE = EmulatorHandler._dispatch  # noqa: N815 - http.server's naming


class GraphEmulator(AuthMixin, CertificateMixin, FaultsMixin, DirectoryMixin, MailboxMixin,
                    MailMixin, EventsMixin, PagingMixin, LoopbackServer):
    """The Graph emulator over a synthetic organisation directory (see the package's docstring)."""

    thread_name = "graph-emulator"
    handler = _Handler

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

    # ------------------------------------------------------------------ a page's rows, by entity
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


class _LoginListener(LoopbackServer):
    """The identity platform's origin (always https), served by the same emulator."""

    handler = _Handler
    thread_name = "graph-emulator-login"

    def __init__(self, emulator: GraphEmulator, host: str, tls: Any) -> None:
        super().__init__(host, 0, tls)
        self._emulator = emulator

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        self._emulator._serve(handler, method, login=True)
