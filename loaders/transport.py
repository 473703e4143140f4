"""HTTP to Microsoft Graph: retries, throttling, token renewal, paging.

- 429, 503 and 504 (and dropped connections) are retried by urllib3's `Retry`, which waits
  for `Retry-After` when Graph sends it and otherwise backs off exponentially with jitter;
  the number of attempts is bounded.
- 401 renews the token once per request; 403 and 404 become readable errors.
- Each mailbox gets at most `per_mailbox_limit` requests in flight (Outlook allows 4).
- Pages are followed by `@odata.nextLink` used verbatim; a page may be empty and still
  carry a next link.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from loaders.auth import TokenProvider
from loaders.errors import BadInput, LoadFailed
from loaders.settings import GraphSettings

PER_MAILBOX_LIMIT = 4
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


@dataclass
class Page:
    raw: bytes
    body: dict

    @property
    def value(self) -> list:
        value = self.body.get("value")
        return value if isinstance(value, list) else []

    @property
    def next_link(self) -> str | None:
        return self.body.get("@odata.nextLink")

    @property
    def delta_link(self) -> str | None:
        return self.body.get("@odata.deltaLink")


def build_session(
    pool_size: int,
    retries: int = 8,
    backoff: float = 0.5,
    status_forcelist: tuple[int, ...] = (429, 500, 502, 503, 504),
    allowed_methods: frozenset[str] = frozenset({"GET"}),
    retry_reads: bool = True,
) -> requests.Session:
    """A session that retries `status_forcelist` answers (waiting out `Retry-After` when sent,
    else backing off exponentially with jitter) and dropped connections, a bounded number of
    times. `retry_reads=False` never resends a request whose answer was lost on the way back
    (a POST that may have been processed, and paid for). Shared by the Graph and Leadspace
    clients."""
    retry = Retry(
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
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "account-engagement-loader/0.1"
    return session


class GraphClient:
    def __init__(
        self,
        settings: GraphSettings,
        pool_size: int = 16,
        retries: int = 8,
        backoff: float = 0.5,
        per_mailbox_limit: int = PER_MAILBOX_LIMIT,
    ) -> None:
        self.base_url = settings.api_url
        self._session = build_session(pool_size, retries, backoff)
        self._tokens = TokenProvider(settings, build_session(2, retries, backoff))
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
                    response = self._session.get(
                        url, params=params, headers=request_headers, timeout=(10, 120)
                    )
                except requests.RequestException as exc:
                    raise LoadFailed(
                        f"Graph did not answer after retries ({type(exc).__name__}) for "
                        f"{_redact(url)}"
                    ) from None
                self.requests_made += 1
                if response.status_code == 401 and attempt < TOKEN_ATTEMPTS - 1:
                    self._tokens.invalidate(token)
                    continue
                return self._page_or_raise(response, url)
        raise AssertionError("unreachable")

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
    def _page_or_raise(response: requests.Response, url: str) -> Page:
        if response.status_code == 200:
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                raise LoadFailed(f"Graph sent a body that is not JSON for {_redact(url)}") from None
            return Page(response.content, body if isinstance(body, dict) else {})
        code, message = _graph_error(response)
        status = response.status_code
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


def _graph_error(response: requests.Response) -> tuple[str, str]:
    try:
        error = orjson.loads(response.content).get("error", {})
    except (orjson.JSONDecodeError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    return str(error.get("code", f"HTTP{response.status_code}")), str(error.get("message", ""))


def _redact(url: str) -> str:
    """URLs carry no secrets, but paging tokens are long and useless in a message."""
    return url.split("?", 1)[0]
