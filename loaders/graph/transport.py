"""HTTP to Microsoft Graph: retries, throttling, token renewal, paging.

- 429, 503 and 504 (and dropped connections) are retried by urllib3's `Retry`, which waits
  for `Retry-After` when Graph sends it and otherwise backs off exponentially with jitter;
  the number of attempts is bounded. A TLS certificate that fails verification is not
  retried: it becomes a sentence naming REQUESTS_CA_BUNDLE.
- Until Graph (and the identity platform) has answered once, a request that cannot reach it
  is retried by `reach.FirstContact` instead, with short timeouts and a line for each retry,
  and given up with a sentence naming GRAPH_API_URL (GRAPH_LOGIN_URL) within the give-up
  budget (LOADERS_CONNECT_GIVE_UP_SECONDS); urllib3 does not retry it silently meanwhile.
- 401 renews the token once per request; 403 and 404 become readable errors.
- Each mailbox gets at most `per_mailbox_limit` requests in flight (Outlook allows 4).
- Pages are followed by `@odata.nextLink` used verbatim; a page may be empty and still
  carry a next link. A page is landed as the bytes Graph sent: its links are read from the
  members around its `value` array (`page_links`), its records are parsed only when a caller
  asks for them (the folders, a user), never for the message pages the loader lands.
- Each worker thread takes a session of its own from a pool (requests' sessions are not
  thread-safe); the environment (proxies, CA bundle) is read once per session, not per
  request, and `.netrc` is never consulted (the Authorization header is ours).
"""

from __future__ import annotations

import os
import queue
import ssl
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from loaders.errors import BadInput, LoadFailed
from loaders.graph.auth import TokenProvider, tls_sentence
from loaders.reach import FirstContact, Timeouts
from loaders.settings import GraphSettings

PER_MAILBOX_LIMIT = 4
READ_TIMEOUTS = (10, 120)  # connect, read: once Graph has answered (pages can be slow)
# A token may expire while a request waits out a Retry-After: renew it, a few times at most.
TOKEN_ATTEMPTS = 3


class GraphError(LoadFailed):
    def __init__(self, status: int, code: str, message: str, url: str) -> None:
        super().__init__(f"Graph answered {status} {code}: {message} ({_redact(url)})")
        self.status = status
        self.code = code


class GraphNotFound(GraphError):
    pass


class GraphForbidden(BadInput):
    pass


class SyncStateExpired(GraphError):
    """A nextLink or deltaLink Graph no longer accepts: the stream must start over."""


LINKS = ("@odata.nextLink", "@odata.deltaLink")


def page_links(raw: bytes) -> dict[str, str] | None:
    """The `@odata.nextLink` / `@odata.deltaLink` of a collection page (those it has), read
    without parsing its records; None when they cannot be read that way for certain (the
    caller then parses the page whole).

    A JSON string cannot hold an unescaped quote, so the first `"value"` in the page is a
    member name: what precedes it must parse as an object on its own (`{"@odata.context": ...,
    "@odata.nextLink": ...}`, where Graph puts a delta's links). After it, a link name found
    from the end either starts the members that close the page (`"@odata.nextLink": "..."}`,
    which then parse as an object on their own) or sits inside a record (then they do not).
    """
    start = raw.find(b'"value"')
    if start < 0 or not raw[:start].lstrip().startswith(b"{"):
        return None
    head = raw[:start].rstrip()
    try:
        members = orjson.loads(head.removesuffix(b",") + b"}")
        tail = [at for name in LINKS if (at := raw.rfind(b'"%s"' % name.encode())) > start]
        if tail:
            members.update(orjson.loads(b"{" + raw[min(tail):]))
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None
    return {name: members[name] for name in LINKS if isinstance(members.get(name), str)}


class Page:
    """One page as Graph sent it (`raw`, landed as is) and its links."""

    def __init__(self, raw: bytes, links: dict[str, str] | None = None,
                 body: dict | None = None) -> None:
        self.raw = raw
        if body is not None:
            self.__dict__["body"] = body
        self._links = links if links is not None else {
            name: self.body[name] for name in LINKS if isinstance(self.body.get(name), str)
        }

    @cached_property
    def body(self) -> dict:
        try:
            body = orjson.loads(self.raw)
        except orjson.JSONDecodeError:
            raise LoadFailed("Graph sent a page that is not JSON") from None
        return body if isinstance(body, dict) else {}

    @property
    def value(self) -> list:
        value = self.body.get("value")
        return value if isinstance(value, list) else []

    @property
    def next_link(self) -> str | None:
        return self._links.get("@odata.nextLink")

    @property
    def delta_link(self) -> str | None:
        return self._links.get("@odata.deltaLink")


class _CountedRetry(Retry):
    """urllib3's Retry that calls `on_retry()` each time it lets a request be sent again, and
    leaves a request that did not reach a server not yet answered (`contact`) to the first
    contact's own retries, which the user sees."""

    on_retry: Callable[[], None] | None = None
    contact: FirstContact | None = None

    def new(self, **kwargs) -> _CountedRetry:
        retry = super().new(**kwargs)
        retry.on_retry = self.on_retry
        retry.contact = self.contact
        return retry

    def increment(self, method: str | None = None, url: str | None = None, response=None,
                  error: Exception | None = None, _pool=None, _stacktrace=None) -> _CountedRetry:
        if isinstance(error, urllib3.exceptions.SSLError) and isinstance(
            error.args[0] if error.args else None, ssl.SSLCertVerificationError
        ):  # a certificate this machine does not trust stays untrusted: not sent again
            raise urllib3.exceptions.MaxRetryError(_pool, url, error) from error
        contact = self.contact
        if contact is not None and not contact.answered:
            if response is not None:
                contact.answered = True  # a status to retry (429, 5xx): it answers
            elif error is not None:
                raise urllib3.exceptions.MaxRetryError(_pool, url, error) from error
        # raises once the retries are spent
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if self.on_retry is not None:
            self.on_retry()
        return retry


def build_session(
    pool_size: int,
    retries: int = 8,
    backoff: float = 0.5,
    status_forcelist: tuple[int, ...] = (429, 500, 502, 503, 504),
    allowed_methods: frozenset[str] = frozenset({"GET"}),
    retry_reads: bool = True,
    url: str | None = None,
    on_retry: Callable[[], None] | None = None,
    contact: FirstContact | None = None,
) -> requests.Session:
    """A session that retries `status_forcelist` answers (waiting out `Retry-After` when sent,
    else backing off exponentially with jitter) and dropped connections, a bounded number of
    times. `retry_reads=False` never resends a request whose answer was lost on the way back
    (a POST that may have been processed, and paid for). Shared by the Graph and Leadspace
    clients. With `url` (the host every request of the session goes to), what requests would
    look up in the environment on each request is read once instead: the proxies for that
    host (HTTPS_PROXY, NO_PROXY, ...) and the CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE);
    `.netrc` is then left out (a Basic login from it would replace the Bearer token). With
    `contact`, a request that fails to reach the server before it ever answered is not retried
    here but raised to that FirstContact, which retries it visibly."""
    retry = _CountedRetry(
        total=retries,
        connect=retries,
        read=retries if retry_reads else 0,
        status=retries,
        status_forcelist=status_forcelist,
        allowed_methods=allowed_methods,
        backoff_factor=backoff,
        backoff_jitter=backoff,
        backoff_max=60,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    retry.on_retry = on_retry
    retry.contact = contact
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "account-engagement-loader/0.1"
    if url is not None:
        session.trust_env = False
        session.proxies = requests.utils.get_environ_proxies(url)
        session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
    return session


class GraphClient:
    def __init__(
        self,
        settings: GraphSettings,
        retries: int = 8,
        backoff: float = 0.5,
        per_mailbox_limit: int = PER_MAILBOX_LIMIT,
    ) -> None:
        self.base_url = settings.api_url
        # one session per worker thread at a time, reused: built on first need
        self._sessions: queue.SimpleQueue[requests.Session] = queue.SimpleQueue()
        self.retries_made = 0  # requests urllib3 sent again (429, 5xx, a lost connection)
        self._count_lock = threading.Lock()
        self._contact = FirstContact.for_url(self.base_url, "Microsoft Graph", "GRAPH_API_URL",
                                             settings.give_up_seconds)
        self._new_session = lambda: build_session(1, retries, backoff, url=self.base_url,
                                                  on_retry=self._retried, contact=self._contact)
        login = FirstContact.for_url(settings.login_url, "the identity platform",
                                     "GRAPH_LOGIN_URL", settings.give_up_seconds)
        self._tokens = TokenProvider(settings, build_session(2, retries, backoff,
                                                             url=settings.login_url,
                                                             on_retry=self._retried,
                                                             contact=login), login)
        self._slots: dict[str, threading.Semaphore] = defaultdict(
            lambda: threading.BoundedSemaphore(per_mailbox_limit)
        )
        self._slots_lock = threading.Lock()
        self.requests_made = 0

    def check_credentials(self) -> None:
        self._tokens.token()

    @contextmanager
    def _mailbox_slot(self, mailbox: str | None) -> Iterator[None]:
        if mailbox is None:
            yield
            return
        with self._slots_lock:
            slot = self._slots[mailbox]
        with slot:
            yield

    def get(
        self,
        url: str,
        params: dict | None = None,
        headers: dict | None = None,
        mailbox: str | None = None,
    ) -> Page:
        """GET a Graph URL (absolute, e.g. a nextLink, or a path below the API base)."""
        if not url.startswith(("http://", "https://")):
            url = f"{self.base_url}/{url.lstrip('/')}"
        with self._mailbox_slot(mailbox):
            for attempt in range(TOKEN_ATTEMPTS):
                token = self._tokens.token()
                request_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
                request_headers.update(headers or {})
                try:
                    with self._session() as session:
                        status, body = self._contact.call(
                            lambda timeouts, s=session, h=request_headers: _fetch(
                                s, url, params, h, timeouts))
                except requests.exceptions.SSLError as exc:
                    raise BadInput(tls_sentence(self.base_url, "GRAPH_API_URL", exc)) from None
                except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                    raise LoadFailed(
                        f"Graph did not answer after retries ({type(exc).__name__}) for "
                        f"{_redact(url)}"
                    ) from None
                self.requests_made += 1
                if status == 401 and attempt < TOKEN_ATTEMPTS - 1:
                    self._tokens.invalidate(token)
                    continue
                return self._page_or_raise(status, body, url)
        raise AssertionError("unreachable")

    def _retried(self) -> None:
        with self._count_lock:
            self.retries_made += 1

    @contextmanager
    def _session(self) -> Iterator[requests.Session]:
        try:
            session = self._sessions.get_nowait()
        except queue.Empty:
            session = self._new_session()
        try:
            yield session
        finally:
            self._sessions.put(session)

    def pages(
        self,
        url: str,
        params: dict | None = None,
        headers: dict | None = None,
        mailbox: str | None = None,
    ) -> Iterator[Page]:
        """Yield every page, following @odata.nextLink verbatim (empty pages included)."""
        page = self.get(url, params=params, headers=headers, mailbox=mailbox)
        yield page
        while page.next_link:
            page = self.get(page.next_link, headers=headers, mailbox=mailbox)
            yield page

    @staticmethod
    def _page_or_raise(status: int, raw: bytes, url: str) -> Page:
        if status == 200:
            links = page_links(raw)
            if links is not None:
                return Page(raw, links)
            try:  # not a collection page (one entity), or links not found for certain
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise LoadFailed(f"Graph sent a body that is not JSON for {_redact(url)}") from None
            return Page(raw, body=body if isinstance(body, dict) else {})
        code, message = _graph_error(status, raw)
        if status == 401:
            raise BadInput(
                f"Graph rejected a fresh access token ({code}: {message}); check that the app "
                "registration belongs to tenant GRAPH_TENANT_ID and that GRAPH_API_URL is right."
            )
        if status == 403:
            raise GraphForbidden(
                f"Graph denied access ({code}: {message}) for {_redact(url)}. Grant the app the "
                "application permissions User.Read.All, GroupMember.Read.All, Mail.ReadBasic.All "
                "and Calendars.Read with admin consent, and check that no application "
                "access policy excludes this mailbox."
            )
        if status == 404:
            raise GraphNotFound(status, code, message, url)
        if status == 410 or code in {"SyncStateNotFound", "SyncStateInvalid", "ResyncRequired"}:
            raise SyncStateExpired(status, code, message, url)
        if status == 400 and ("skiptoken" in url.lower() or "deltatoken" in url.lower()):
            raise SyncStateExpired(status, code, message, url)
        raise GraphError(status, code, message, url)


def _fetch(session: requests.Session, url: str, params: dict | None, headers: dict,
           timeouts: Timeouts) -> tuple[int, bytes]:
    """One GET: its status and its body."""
    with session.get(url, params=params, headers=headers, timeout=timeouts or READ_TIMEOUTS,
                     stream=True) as response:
        # the body in one read: requests' own reads it 10 KB at a time, ~80 reads per page,
        # the fetching side's largest CPU cost
        return response.status_code, response.raw.read(decode_content=True)


def _graph_error(status: int, raw: bytes) -> tuple[str, str]:
    try:
        error = orjson.loads(raw).get("error", {})
    except (orjson.JSONDecodeError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    return str(error.get("code", f"HTTP{status}")), str(error.get("message", ""))


def _redact(url: str) -> str:
    """URLs carry no secrets, but paging tokens are long and useless in a message."""
    return url.split("?", 1)[0]
