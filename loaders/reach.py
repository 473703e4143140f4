"""The first contact with a server, and what the loaders do when it does not answer.

Until a server has answered once, nothing tells a server that is down, a wrong address, or a
firewall or proxy that takes the connection and swallows it from a slow server. So the first
contact with each server (the token request, the first Graph request, the first Leadspace
call, the Postgres or Spark connect) is tried at most `ATTEMPTS` times within the give-up
budget (LOADERS_CONNECT_GIVE_UP_SECONDS, 60 s by default):

- each attempt waits at most budget/12 (5 s) for the connection (TCP, proxy tunnel, TLS
  handshake) and for the answer; the pauses between attempts grow from budget/60 (1 s) to
  8 times that: a closed port is given up after about budget/4 (15 s), a port that takes the
  connection and never answers after about 2/3 of the budget (40 s), never after the budget;
- each retry is announced on one line (`cannot reach HOST:PORT (REASON); retrying, attempt 2
  of 5`, see `progress.say`), and after the last attempt one sentence names the setting to
  check (BadInput: exit 2). Nothing was landed from that server, so nothing is lost.

A request that must not be sent twice (a Leadspace POST: it may be processed, and billed,
although its answer is lost) is attempted again only while its connection cannot be opened,
as nothing was sent yet; once sent, its answer is awaited until the budget is spent (a line
says so after one attempt's time) and the request is then given up, not sent again.

Once a server has answered (any HTTP status, a refused login), the callers' own rules apply
to it: 429 and Retry-After, 5xx, dropped connections, the long reads of big pages and polls.
Messages name the host and port, never a URL's other parts (which may hold a login).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import requests
import urllib3

from loaders.errors import BadInput
from loaders.progress import say

ATTEMPTS = 5
MIN_WAIT = 0.1  # seconds: an attempt started near the end of the budget still gets this

T = TypeVar("T")
# (connect, read) seconds for an attempt of the first contact; None: the caller's own
Timeouts = tuple[float, float] | None


@dataclass(frozen=True)
class Failure:
    """Why a server was not reached; `before_sending`: the request was not sent (the
    connection itself failed), so sending it again cannot do anything twice."""

    reason: str
    before_sending: bool


class ConnectFailed(requests.exceptions.ConnectionError):
    """The connection (TCP, proxy tunnel, TLS handshake) could not be opened: nothing sent."""


class FirstContact:
    """The first contact with one server: `call` retries it while the server cannot be
    reached, then gives up with a sentence naming the setting to check."""

    def __init__(
        self,
        address: str,
        what: str,
        check: str,
        give_up_seconds: float,
        classify: Callable[[BaseException], Failure | None] | None = None,
        announce: Callable[[str], None] = say,
    ) -> None:
        self.address = address  # host:port, for messages
        self.what = what  # "the identity platform", "Postgres", ...
        self.check = check  # what to check, after "check "
        self.give_up_seconds = give_up_seconds
        self.answered = False
        self._classify = classify or http_failure
        self._announce = announce
        self._lock = threading.Lock()

    @classmethod
    def for_url(cls, url: str, what: str, setting: str, give_up_seconds: float
                ) -> FirstContact:
        return cls(address_of(url), what,
                   f"{setting} and that this machine can reach it (no firewall or proxy "
                   "holding the connection)", give_up_seconds)

    @property
    def attempt_seconds(self) -> float:
        return self.give_up_seconds / 12

    def pause(self, attempt: int) -> float:
        """The pause after failed attempt number `attempt` (1, 2, ...)."""
        return self.give_up_seconds / 60 * 2 ** (attempt - 1)

    def call(self, attempt: Callable[[Timeouts], T], resend: bool = True,
             connect: Callable[[float], None] | None = None) -> T:
        """`attempt(timeouts)`: with the first contact's timeouts and retries until the
        server has answered once, then with None (the caller's own timeouts). `resend=False`:
        the request is never sent twice; `connect(seconds)` then opens its connection first,
        so that a connection that cannot be opened is told from an answer that never came."""
        if self.answered:
            return attempt(None)
        with self._lock:  # one thread makes the first contact; the others wait for it
            if self.answered:
                return attempt(None)
            return self._first(attempt, resend, connect)

    def _first(self, attempt: Callable[[Timeouts], T], resend: bool,
               connect: Callable[[float], None] | None) -> T:
        started = time.monotonic()
        deadline = started + self.give_up_seconds
        for number in range(1, ATTEMPTS + 1):
            wait = min(self.attempt_seconds, max(deadline - time.monotonic(), MIN_WAIT))
            try:
                if resend:
                    result = attempt((wait, wait))
                else:
                    if connect is not None:
                        connect(wait)
                    result = self._await_once(attempt, wait, deadline)
            except Exception as exc:
                failure = self._classify(exc)
                if failure is None:  # an answer, which its caller explains
                    self.answered = True
                    raise
                if not resend and not failure.before_sending:
                    raise BadInput(self._unanswered(failure, started)) from None
                pause = self.pause(number)
                if number == ATTEMPTS or time.monotonic() + pause >= deadline:
                    raise BadInput(self._gave_up(failure, number, started)) from None
                self._announce(f"cannot reach {self.address} ({failure.reason}); retrying, "
                               f"attempt {number + 1} of {ATTEMPTS}")
                time.sleep(pause)
            else:
                self.answered = True
                return result
        raise AssertionError("unreachable")

    def _await_once(self, attempt: Callable[[Timeouts], T], wait: float, deadline: float) -> T:
        """The one sending of a request that must not be sent twice, its answer awaited until
        the deadline, with a line once an attempt's time has gone by without it."""
        remaining = max(deadline - time.monotonic(), wait)
        notice = threading.Timer(wait, self._announce, [
            f"no answer yet from {self.address} after {_seconds(wait)} s; waiting up to "
            f"{_seconds(remaining - wait)} s more (the request may be in progress, so it is not "
            "sent twice)"])
        notice.daemon = True
        notice.start()
        try:
            return attempt((wait, remaining))
        finally:
            notice.cancel()

    def _gave_up(self, failure: Failure, attempts: int, started: float) -> str:
        seconds = time.monotonic() - started
        return (
            f"cannot reach {self.what} at {self.address} ({failure.reason}; gave up after "
            f"{attempts} attempt{'' if attempts == 1 else 's'} in {seconds:.0f} s): check "
            f"{self.check}."
        )

    def _unanswered(self, failure: Failure, started: float) -> str:
        seconds = time.monotonic() - started
        return (
            f"{self.what} at {self.address} took the request but did not answer it "
            f"({failure.reason}; gave up after {seconds:.0f} s, without sending it again as it "
            f"may have been processed): check {self.check}; what was landed before stays."
        )


def _seconds(value: float) -> str:
    return f"{round(value, 1):g}"


def address_of(url: str) -> str:
    """`host:port` of a URL (the scheme's port when none is given)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port or (443 if parts.scheme.lower() == 'https' else 80)}"


def http_failure(exc: BaseException) -> Failure | None:
    """What `exc` of an HTTP request says about reaching its server: None when it is not about
    reaching it (a TLS certificate this machine does not trust, anything else)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return None
    if not isinstance(exc, (requests.RequestException, urllib3.exceptions.HTTPError, OSError)):
        return None
    chain = list(_chain(exc))
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return None
    before_sending = isinstance(exc, ConnectFailed) or any(
        isinstance(e, urllib3.exceptions.ConnectTimeoutError) for e in chain
    )  # NewConnectionError and NameResolutionError are ConnectTimeoutErrors
    reason = os_reason(chain)  # "connection refused", ...
    if reason is None and any(isinstance(e, (TimeoutError, requests.exceptions.Timeout))
                              or isinstance(e, urllib3.exceptions.TimeoutError)
                              and not isinstance(e, urllib3.exceptions.NewConnectionError)
                              for e in chain):
        reason = "timed out"
    return Failure(reason or "the connection was closed without an answer", before_sending)


def os_reason(chain: list[BaseException]) -> str | None:
    """The innermost system error of a chain, in words ("connection refused")."""
    for error in reversed(chain):
        if isinstance(error, OSError) and error.strerror:
            return error.strerror.lower()
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what caused it, outermost first (causes, contexts, urllib3's reasons and
    exceptions passed as arguments)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        error = todo.pop(0)
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        todo.extend(e for e in (getattr(error, "reason", None), error.__cause__,
                                error.__context__, *error.args)
                    if isinstance(e, BaseException))


def open_connection(session: requests.Session, url: str, seconds: float) -> None:
    """Open the connection `session` would use for `url` (TCP, the proxy's tunnel, the TLS
    handshake), within `seconds`, without sending a request, and leave it in the session's
    pool for the next request to `url`. ConnectFailed when it cannot be opened; a TLS
    certificate this machine does not trust is requests' SSLError, as from a request."""
    env = session.merge_environment_settings(url, {}, None, None, None)
    adapter = session.get_adapter(url)
    try:
        pool = adapter.get_connection_with_tls_context(
            requests.Request("GET", url).prepare(), env["verify"], proxies=env["proxies"],
            cert=env["cert"])
        adapter.cert_verify(pool, url, env["verify"], env["cert"])
        connection = pool._get_conn()  # noqa: SLF001 - urllib3's pool has no public checkout
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ConnectFailed(exc) from exc
    try:
        connection.timeout = seconds
        connection.connect()
    except Exception as exc:
        connection.close()
        pool._put_conn(None)  # noqa: SLF001 - gives the pool its slot back
        if any(isinstance(e, ssl.SSLCertVerificationError) for e in _chain(exc)):
            raise requests.exceptions.SSLError(exc) from exc
        if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
            raise ConnectFailed(exc) from exc
        raise
    pool._put_conn(connection)  # noqa: SLF001
