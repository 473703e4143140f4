"""HTTP to the Leadspace Enrichment API (`LEADSPACE_API_URL`, default https://apigw.leadspace.com).

As Leadspace's technical specifications (Single Direct API v4, Bulk API v4) describe it:
- every request carries `Authorization: Bearer <perpetual key>`; bodies are JSON;
- `POST /enrichment/enrich/single` enriches one record synchronously (200 with the answer);
- `POST /enrichment/enrich/bulk` takes at most 500 records (`{"data": [...]}`) and answers
  202 with `{"id": "/v3/enrichment/results/<bulk id>"}`, the polling URI: a GET on it answers
  204 while the job is processing and 200 with `{"results": [...]}` when done (404: unknown);
- each answer is `{status, external_id, data: {enrichment_status, company: {...}}}`;
  `enrichment_status` "Not Enriched" is a no-match, not an error; a record that failed inside
  a valid bulk carries its own error (1100 internal error, 1200 invalid input);
- 401: wrong or expired key; 427 (Leadspace's own code): out of credits or invalid program;
  429: over the program's rate (documented: 30 requests per second); 5xx: server errors.

Retries: 429 is retried on every request, waiting for `Retry-After` when sent and otherwise
backing off exponentially (a request answered 429 was not processed, so resending a POST
costs nothing). Polls (GET) are also retried on 5xx and dropped connections. A POST is never
resent after a 5xx or a lost answer: it may have been processed, and paid for. Requests are
paced to stay under `max_rate` per second. 401 and 427 stop the run (BadInput, exit 2): they
are the user's key or credits, and retrying cannot fix them. The key never appears in a
message.

Until Leadspace has answered once, a call that cannot reach it is retried by
`reach.FirstContact` (a line for each retry; after the give-up budget, a sentence naming
LEADSPACE_API_URL, exit 2). A POST is attempted again only while its connection (TCP, proxy,
TLS handshake) cannot be opened; once sent, its answer is awaited until the budget is spent,
and the POST is not sent again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urljoin

import orjson
import requests

from loaders.errors import BadInput, LoadFailed
from loaders.graph.transport import build_session
from loaders.reach import FirstContact, open_connection
from loaders.settings import LeadspaceSettings

BULK_PATH = "/enrichment/enrich/bulk"
SINGLE_PATH = "/enrichment/enrich/single"
BULK_LIMIT = 500  # records per bulk request (documented maximum)
DOCUMENTED_RATE = 30.0  # requests per second
TIMEOUTS = (10, 120)  # connect, read: once Leadspace has answered


class ResultsNotFound(LoadFailed):
    """The polling URI of a bulk job is unknown to Leadspace (expired or never existed)."""


class LeadspaceClient:
    def __init__(
        self,
        settings: LeadspaceSettings,
        retries: int = 8,
        backoff: float = 0.5,
        max_rate: float = DOCUMENTED_RATE,
        poll_interval: float = 1.0,
        poll_max_interval: float = 15.0,
        poll_timeout: float = 3600.0,
    ) -> None:
        self.base_url = settings.api_url
        self._headers = {
            "Authorization": f"Bearer {settings.token}",
            "Accept": "application/json",
        }
        self._contact = FirstContact.for_url(self.base_url, "Leadspace", "LEADSPACE_API_URL",
                                             settings.give_up_seconds)
        # POSTs: only 429 is resent (never a 5xx or a lost answer); polls: the usual set.
        self._post = build_session(
            4, retries, backoff, status_forcelist=(429,),
            allowed_methods=frozenset({"POST"}), retry_reads=False, contact=self._contact,
        )
        self._get = build_session(4, retries, backoff, contact=self._contact)
        self._min_gap = 1.0 / max_rate if max_rate > 0 else 0.0
        self._next_at = 0.0
        self._pace_lock = threading.Lock()
        self.poll_interval = poll_interval
        self.poll_max_interval = poll_max_interval
        self.poll_timeout = poll_timeout
        self.requests_made = 0

    # ------------------------------------------------------------------ the API
    def enrich_single(self, record: dict) -> dict:
        """One record, synchronously. A 400 (the record lacks the basic input) is that record's
        failure, returned as a failed answer; every other error stops the run."""
        response = self._request("POST", SINGLE_PATH, record)
        if response.status_code == 200:
            return self._json(response, SINGLE_PATH)
        if response.status_code == 400:
            error, tracking = _error(response)
            return {
                "status": "failure",
                "external_id": record.get("external_id"),
                "error": {"code": 400, "description": error, "tracking_id": tracking},
            }
        self._raise(response, SINGLE_PATH)
        raise AssertionError("unreachable")

    def submit_bulk(self, records: list[dict]) -> str:
        """Submit up to 500 records; returns the absolute polling URL of the job."""
        if not 0 < len(records) <= BULK_LIMIT:
            raise ValueError(f"a bulk request holds 1..{BULK_LIMIT} records, not {len(records)}")
        response = self._request("POST", BULK_PATH, {"data": records})
        if response.status_code not in (200, 202):
            self._raise(response, BULK_PATH)
        body = self._json(response, BULK_PATH)
        location = body.get("id") or body.get("pollingUrl") or response.headers.get("Location")
        if not isinstance(location, str) or not location:
            raise LoadFailed("Leadspace accepted a bulk job but sent no polling URI ('id').")
        return self.absolute(location)

    def poll(self, results_url: str) -> list[dict] | None:
        """One poll: None while processing (204), else the answers."""
        response = self._request("GET", results_url)
        if response.status_code == 204:
            return None
        if response.status_code == 200:
            body = self._json(response, results_url)
            results = body.get("results") if isinstance(body, dict) else None
            if not isinstance(results, list):
                raise LoadFailed(f"Leadspace sent bulk results without a 'results' list "
                                 f"({_path(results_url)}).")
            return results
        if response.status_code == 404:
            raise ResultsNotFound(f"Leadspace has no results at {_path(results_url)} (404).")
        self._raise(response, results_url)
        raise AssertionError("unreachable")

    def wait_results(
        self, results_url: str, on_wait: Callable[[float], None] | None = None
    ) -> list[dict]:
        """Poll until the job is done, backing off between polls up to `poll_max_interval`."""
        deadline = time.monotonic() + self.poll_timeout
        delay = self.poll_interval
        while True:
            results = self.poll(results_url)
            if results is not None:
                return results
            if time.monotonic() + delay > deadline:
                raise LoadFailed(
                    f"Leadspace was still processing the bulk job {_path(results_url)} after "
                    f"{self.poll_timeout:.0f}s; run again later to collect it (it is kept)."
                )
            if on_wait is not None:
                on_wait(delay)
            time.sleep(delay)
            delay = min(delay * 2, self.poll_max_interval)

    def absolute(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            return url
        return urljoin(self.base_url + "/", url.lstrip("/"))

    # ------------------------------------------------------------------ plumbing
    def _pace(self) -> None:
        with self._pace_lock:
            now = time.monotonic()
            wait = self._next_at - now
            self._next_at = max(now, self._next_at) + self._min_gap
        if wait > 0:
            time.sleep(wait)

    def _request(self, method: str, url: str, body: dict | None = None) -> requests.Response:
        url = self.absolute(url)
        self._pace()
        try:
            if method == "POST":
                data = orjson.dumps(body)
                response = self._contact.call(
                    lambda timeouts: self._post.post(
                        url, data=data,
                        headers={**self._headers, "Content-Type": "application/json"},
                        timeout=timeouts or TIMEOUTS,
                    ),
                    resend=False,
                    connect=lambda seconds: open_connection(self._post, url, seconds),
                )
            else:
                response = self._contact.call(
                    lambda timeouts: self._get.get(url, headers=self._headers,
                                                   timeout=timeouts or TIMEOUTS))
        except requests.RequestException as exc:
            raise LoadFailed(
                f"Leadspace did not answer {method} {_path(url)} ({type(exc).__name__}); "
                "nothing of this request was landed, run again to retry."
            ) from None
        self.requests_made += 1
        return response

    @staticmethod
    def _json(response: requests.Response, url: str) -> dict:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise LoadFailed(f"Leadspace sent a body that is not JSON for {_path(url)}.") from None
        if not isinstance(body, dict):
            raise LoadFailed(f"Leadspace sent an unexpected body for {_path(url)}.")
        return body

    @staticmethod
    def _raise(response: requests.Response, url: str) -> None:
        status = response.status_code
        if status == 401:
            raise BadInput(
                "Leadspace rejected the key (401 Unauthorized): check LEADSPACE_TOKEN (the "
                "perpetual key of your program, which expires if not rotated) and "
                "LEADSPACE_API_URL. What was landed before stays."
            )
        error, tracking = _error(response)
        detail = f" ({error}{', tracking id ' + tracking if tracking else ''})" if error else ""
        if status == 427:
            raise BadInput(
                f"Leadspace refused the request with 427: the program is out of credits or its "
                f"program id is invalid{detail}. Ask your Leadspace Customer Success Manager "
                "(support@leadspace.com) for credits, then run again: what was landed stays and "
                "is not sent again."
            )
        if status == 429:
            raise LoadFailed(
                "Leadspace kept answering 429 (over the program's rate limit) after the retries;"
                " run again later: what was landed stays and is not sent again."
            )
        raise LoadFailed(f"Leadspace answered {status} for {_path(url)}{detail}.")


def _error(response: requests.Response) -> tuple[str, str]:
    """Leadspace's error envelope: {error, tracking_id, request_timestamp, details}."""
    try:
        body = orjson.loads(response.content) if response.content else {}
    except orjson.JSONDecodeError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    error = str(body.get("error") or body.get("details") or "")
    return error[:300], str(body.get("tracking_id") or "")


def _path(url: str) -> str:
    return url.split("?", 1)[0]
