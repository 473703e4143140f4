"""The loopback HTTP server both emulators run on: start on a free port, stop, `with`; over
TLS when given a server context (`devtools.emulators.tls`); and the request handler that hands
every request to the emulator's `handle(request, method)`."""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class _Server(ThreadingHTTPServer):
    """Over TLS, each connection's handshake is made in its own thread (not in the thread that
    accepts), and a client that refuses the certificate is let go without a traceback."""

    HANDSHAKE_TIMEOUT = 30

    def finish_request(self, request: socket.socket, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(self.HANDSHAKE_TIMEOUT)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return  # e.g. a client that does not trust the certificate hangs up
            request.settimeout(None)
        super().finish_request(request, client_address)


class LoopbackServer:
    """Serves `handler` on (host, port) in a daemon thread; port 0 picks a free one; over TLS
    when `tls` (a server context) is set before `start()`. The handler reaches the emulator as
    `self.server.emulator`."""

    handler: type[BaseHTTPRequestHandler]
    thread_name = "emulator"

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 tls: ssl.SSLContext | None = None) -> None:
        self._host, self._port = host, port
        self.tls = tls
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    def start(self) -> Self:
        server = _Server((self._host, self._port), self.handler, bind_and_activate=False)
        server.daemon_threads = True
        server.block_on_close = False
        server.request_queue_size = 256  # many loader threads connect at once
        server.allow_reuse_address = True
        server.server_bind()
        server.server_activate()
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True,
                                                 do_handshake_on_connect=False)
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return self._server.server_address[1]


class EmulatorHandler(BaseHTTPRequestHandler):
    """Hands GET, POST and PUT to `server.emulator.handle(self, method)`; silent. A subclass
    adds the other methods its API has (`do_PATCH = EmulatorHandler._dispatch`)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    sys_version = ""

    def _dispatch(self) -> None:
        self.server.emulator.handle(self, self.command)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PUT = _dispatch  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silent: no per-request output."""
