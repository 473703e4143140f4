"""HTTP to the Dataverse Web API v9.2: the token, throttling, paging and change tracking.

- The token: the Graph loader's app registration through MSAL, for `<DATAVERSE_URL>/.default`
  (loaders/dataverse/auth.py); a 401 renews it once per request.
- Service protection (6,000 requests per user in 5 minutes, 52 at once): a 429 is retried
  after its `Retry-After` by urllib3's `Retry` (the Graph loader's session, build_session),
  as are 503/504 and dropped connections, a bounded number of times. The loader sends one
  request at a time, far under the concurrency limit.
- Pages: `Prefer: odata.maxpagesize`, `@odata.nextLink` followed verbatim; change tracking:
  `Prefer: odata.track-changes` on the first read, the `@odata.deltaLink` of the last page
  read again later. An expired delta token (Dataverse's ExpiredVersionStamp, 0x80044352, or
  410 Gone) is `DeltaExpired`: the caller reads the table whole once.
"""

from __future__ import annotations

import threading

import orjson
import requests
import urllib3

from loaders.dataverse.auth import DataverseTokenProvider
from loaders.errors import BadInput, LoadFailed
from loaders.graph.auth import tls_sentence
from loaders.graph.transport import build_session
from loaders.reach import FirstContact
from loaders.settings import DataverseSettings

PAGE_SIZE = 5000  # Dataverse's largest (and default) page
TIMEOUTS = (10, 120)  # connect, read
TOKEN_ATTEMPTS = 2
EXPIRED_CODES = frozenset({"0x80044352"})  # ExpiredVersionStamp
ANNOTATIONS = 'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'


class DataverseError(LoadFailed):
    pass


class DeltaExpired(DataverseError):
    """The stored deltaLink's token is older than the environment keeps changes."""


class DataverseClient:
    def __init__(self, settings: DataverseSettings, retries: int = 8,
                 backoff: float = 0.5) -> None:
        self.settings = settings
        self.requests_made = 0
        self.retries_made = 0
        self._lock = threading.Lock()
        self._contact = FirstContact.for_url(settings.url, "Dataverse", "DATAVERSE_URL",
                                             settings.app.give_up_seconds)
        self._session = build_session(1, retries, backoff, url=settings.url,
                                      on_retry=self._retried, contact=self._contact)
        login = FirstContact.for_url(settings.app.login_url, "the identity platform",
                                     "GRAPH_LOGIN_URL", settings.app.give_up_seconds)
        self._tokens = DataverseTokenProvider(
            settings, build_session(2, retries, backoff, url=settings.app.login_url,
                                    on_retry=self._retried, contact=login), login)

    def check_credentials(self) -> None:
        self._tokens.token()

    def _retried(self) -> None:
        with self._lock:
            self.retries_made += 1

    def get(self, url: str, page_size: int = PAGE_SIZE, track_changes: bool = False) -> dict:
        """One page (a dict with `value` and its links) of `url`, absolute or below the API."""
        if not url.startswith(("http://", "https://")):
            url = f"{self.settings.api_url}/{url.lstrip('/')}"
        prefer = [f"odata.maxpagesize={page_size}", ANNOTATIONS]
        if track_changes:
            prefer.append("odata.track-changes")
        for attempt in range(TOKEN_ATTEMPTS):
            token = self._tokens.token()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                       "OData-MaxVersion": "4.0", "OData-Version": "4.0",
                       "Prefer": ",".join(prefer)}
            try:
                status, raw = self._contact.call(
                    lambda timeouts, h=headers: self._fetch(url, h, timeouts))
            except requests.exceptions.SSLError as exc:
                raise BadInput(tls_sentence(self.settings.url, "DATAVERSE_URL", exc)) from None
            except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                raise LoadFailed(f"Dataverse did not answer after retries "
                                 f"({type(exc).__name__}) for {_redact(url)}") from None
            self.requests_made += 1
            if status == 401 and attempt < TOKEN_ATTEMPTS - 1:
                self._tokens.invalidate(token)
                continue
            return self._page_or_raise(status, raw, url)
        raise AssertionError("unreachable")

    def _fetch(self, url: str, headers: dict, timeouts: object) -> tuple[int, bytes]:
        response = self._session.get(url, headers=headers, timeout=timeouts or TIMEOUTS)
        return response.status_code, response.content

    def _page_or_raise(self, status: int, raw: bytes, url: str) -> dict:
        if status == 200:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise LoadFailed(f"Dataverse sent a page that is not JSON for "
                                 f"{_redact(url)}") from None
            if not isinstance(body, dict) or not isinstance(body.get("value"), list):
                raise LoadFailed(f"Dataverse sent a page without rows for {_redact(url)}")
            return body
        code, message = _error(raw, status)
        if status == 410 or code in EXPIRED_CODES:
            raise DeltaExpired(f"Dataverse answered {status} {code}: {message}")
        if status == 401:
            raise BadInput(
                "Dataverse rejected a fresh access token: check DATAVERSE_URL, and that the "
                "app registration (GRAPH_CLIENT_ID) is an application user of this "
                "environment (Power Platform admin center, Settings > Users + permissions > "
                "Application users)."
            )
        if status == 403:
            raise BadInput(
                f"Dataverse denied access ({code}: {message}): give the application user a "
                "security role that can read accounts and contacts (Organization scope)."
            )
        if status == 404:
            raise BadInput(f"Dataverse has no {_redact(url)} ({message}): check DATAVERSE_URL.")
        if status == 429:
            raise LoadFailed(f"Dataverse kept throttling after retries ({code}: {message}); "
                             "run again later: the load resumes where it stopped.")
        raise DataverseError(f"Dataverse answered {status} {code}: {message} "
                             f"({_redact(url)})")


def _error(raw: bytes, status: int) -> tuple[str, str]:
    try:
        error = orjson.loads(raw).get("error", {})
    except (orjson.JSONDecodeError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    return str(error.get("code") or f"HTTP{status}"), str(error.get("message", ""))


def _redact(url: str) -> str:
    """Paging and delta tokens are long and useless in a message."""
    return url.split("?", 1)[0]
