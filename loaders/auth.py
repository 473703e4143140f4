"""OAuth 2.0 client-credentials tokens from the Microsoft identity platform.

One token is shared by all threads. It is renewed shortly before it expires and whenever
Graph answers 401 for it. The client secret goes only into the token request body.
"""

from __future__ import annotations

import threading
import time

import requests

from loaders.errors import BadInput, LoadFailed
from loaders.settings import GraphSettings

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
RENEW_MARGIN_SECONDS = 300  # renew 5 minutes before expiry (or at 10% of a short lifetime)


class TokenProvider:
    def __init__(self, settings: GraphSettings, session: requests.Session) -> None:
        self._settings = settings
        self._session = session
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    @property
    def token_url(self) -> str:
        return f"{self._settings.login_url}/{self._settings.tenant_id}/oauth2/v2.0/token"

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                self._token, self._renew_at = self._request_token()
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget `token` (Graph said it is expired or invalid); the next call fetches anew."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _request_token(self) -> tuple[str, float]:
        data = {
            "grant_type": "client_credentials",
            "client_id": self._settings.client_id,
            "client_secret": self._settings.client_secret,
            "scope": GRAPH_SCOPE,
        }
        try:
            response = self._session.post(self.token_url, data=data, timeout=60)
        except requests.RequestException as exc:
            raise LoadFailed(
                f"could not reach the token endpoint {self.token_url} "
                f"({_reason(exc)}); check GRAPH_LOGIN_URL and that this machine can reach it"
            ) from None
        body = _json_or_empty(response)
        if response.status_code != 200 or "access_token" not in body:
            raise BadInput(_explain_token_error(response.status_code, body))
        lifetime = float(body.get("expires_in", 3599))
        margin = min(RENEW_MARGIN_SECONDS, lifetime * 0.1)
        return body["access_token"], time.monotonic() + lifetime - margin


def _json_or_empty(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _explain_token_error(status: int, body: dict) -> str:
    description = str(body.get("error_description", "")).split("\r\n")[0].split("\n")[0]
    error = body.get("error", f"HTTP {status}")
    hints = {
        "invalid_client": "check GRAPH_CLIENT_SECRET (a secret's value, not its id) and that "
        "it has not expired",
        "unauthorized_client": "check GRAPH_CLIENT_ID: no such app registration in the tenant",
        "invalid_request": "check GRAPH_TENANT_ID and GRAPH_LOGIN_URL",
    }
    hint = hints.get(error, "check GRAPH_TENANT_ID, GRAPH_CLIENT_ID and GRAPH_CLIENT_SECRET")
    return f"the identity platform refused the app credentials ({error}: {description}); {hint}."


def _reason(exc: BaseException) -> str:
    """The innermost cause of a connection failure, in words ("connection refused")."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__ or next(
            (arg for arg in exc.args if isinstance(arg, BaseException)), None)
        if inner is None:
            break
        exc = inner
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__
