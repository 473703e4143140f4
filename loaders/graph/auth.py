"""App-only access tokens from the Microsoft identity platform, through Microsoft's own MSAL
(`ConfidentialClientApplication`, the client-credentials flow): with the client secret, or
with the certificate, whose private key signs the client assertion MSAL sends instead.

One token is shared by all threads. It is renewed shortly before it expires and whenever
Graph answers 401 for it (then MSAL's token cache forgets it too, or MSAL would hand it back).
MSAL reads the tenant's OpenID configuration (`{GRAPH_LOGIN_URL}/{tenant}/v2.0/.well-known/
openid-configuration`) on first use; instance discovery is off: GRAPH_LOGIN_URL is trusted as
given, as a national cloud's or the bundled emulator's is. MSAL's HTTP goes through our
session: REQUESTS_CA_BUNDLE, proxies and retries apply as to Graph. The secret and the key go
only into MSAL; no message carries them.

MSAL serves only https authorities that publish an OpenID configuration. A client secret
against a token endpoint that MSAL cannot use (an http GRAPH_LOGIN_URL, which only a test
server on this machine can be, or one without an OpenID configuration) is sent as the OAuth
2.0 client-credentials request MSAL itself sends (`POST {authority}/oauth2/v2.0/token`); the
identity platform's answer, a refusal included, reads the same either way.

Until the identity platform has answered once, a token request (MSAL's, or the direct one)
that cannot reach it is retried by `reach.FirstContact`: a line for each retry, and after the
give-up budget (LOADERS_CONNECT_GIVE_UP_SECONDS) a sentence naming GRAPH_LOGIN_URL (exit 2).
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import msal
import requests
from msal.exceptions import MsalServiceError

from loaders.errors import BadInput, LoadFailed
from loaders.graph.certificate import UPLOAD
from loaders.reach import FirstContact, Timeouts
from loaders.settings import GraphSettings

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
RENEW_MARGIN_SECONDS = 300  # renew 5 minutes before expiry (or at 10% of a short lifetime)
TIMEOUT_SECONDS = 60  # for each request to the identity platform

T = TypeVar("T")


class TokenProvider:
    def __init__(self, settings: GraphSettings, session: requests.Session,
                 contact: FirstContact | None = None) -> None:
        self._settings = settings
        self._contact = contact or FirstContact.for_url(
            settings.login_url, "the identity platform", "GRAPH_LOGIN_URL",
            settings.give_up_seconds)
        # the first contact's timeouts while it lasts (MSAL sends through this session)
        self._first_timeouts: Timeouts = None
        session.request = functools.partial(self._timed, session.request)
        self._session = session
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        # a secret's token request without MSAL (see the module docstring)
        self._direct = settings.login_url.lower().startswith("http://")
        self._token: str | None = None
        self._renew_at = 0.0

    @property
    def authority(self) -> str:
        return f"{self._settings.login_url}/{self._settings.tenant_id}"

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
                if self._app is not None:
                    self._app.remove_tokens_for_client()

    def _client(self) -> msal.ConfidentialClientApplication | None:
        """MSAL's client for the authority; None when a secret goes without it."""
        if self._app is None:
            settings = self._settings
            credential = (settings.client_certificate.msal_credential()
                          if settings.client_certificate else settings.client_secret)
            try:
                self._app = self._call(lambda: msal.ConfidentialClientApplication(
                    settings.client_id, client_credential=credential, authority=self.authority,
                    http_client=self._session, instance_discovery=False,
                    token_cache=msal.TokenCache(),
                ))
            except ValueError:  # MSAL: the OpenID configuration was refused or unreadable
                if settings.client_certificate is None:
                    self._direct = True
                    return None
                raise BadInput(
                    f"the identity platform at {settings.login_url} has no tenant "
                    f"{settings.tenant_id} (its OpenID configuration could not be read); check "
                    "GRAPH_TENANT_ID and GRAPH_LOGIN_URL."
                ) from None
        return self._app

    def _request_token(self) -> tuple[str, float]:
        app = None if self._direct else self._client()
        try:
            if app is None:
                result = self._call(self._client_credentials_grant)
            else:
                result = self._call(lambda: app.acquire_token_for_client(scopes=[GRAPH_SCOPE]))
        except ValueError:
            raise LoadFailed(
                f"the identity platform at {self.authority} sent a token answer that is not "
                "JSON; check GRAPH_LOGIN_URL."
            ) from None
        if "access_token" not in result:
            raise BadInput(_explain_token_error(result, self._settings))
        lifetime = float(result.get("expires_in") or 3599)
        margin = min(RENEW_MARGIN_SECONDS, lifetime * 0.1)
        return result["access_token"], time.monotonic() + lifetime - margin

    def _client_credentials_grant(self) -> dict:
        """The client-credentials request of a secret, as MSAL sends it: its JSON answer."""
        response = self._session.post(f"{self.authority}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": self._settings.client_id,
            "client_secret": self._settings.client_secret, "scope": GRAPH_SCOPE,
        })
        answer = response.json()  # not JSON: ValueError, as from MSAL
        if not isinstance(answer, dict):
            raise ValueError("the token answer is not a JSON object")
        return answer

    def _timed(self, send: Callable[..., requests.Response], method: str, url: str,
               **kwargs: object) -> requests.Response:
        """The session's `request`, with the first contact's timeouts while it lasts and
        TIMEOUT_SECONDS (unless the caller gives its own) after."""
        if self._first_timeouts is not None:
            kwargs["timeout"] = self._first_timeouts
        else:
            kwargs.setdefault("timeout", TIMEOUT_SECONDS)
        return send(method, url, **kwargs)

    def _attempt(self, request: Callable[[], T], timeouts: Timeouts) -> T:
        self._first_timeouts = timeouts
        try:
            return request()
        finally:
            self._first_timeouts = None

    def _call(self, request: Callable[[], T]) -> T:
        """`request()` (retried while the identity platform was never reached), its transport
        failures as one sentence each."""
        try:
            return self._contact.call(lambda timeouts: self._attempt(request, timeouts))
        except requests.exceptions.SSLError as exc:
            raise BadInput(tls_sentence(self._settings.login_url, "GRAPH_LOGIN_URL", exc)) from None
        except requests.RequestException as exc:
            raise LoadFailed(
                f"could not reach the identity platform at {self.authority} ({_reason(exc)}); "
                "check GRAPH_LOGIN_URL and that this machine can reach it"
            ) from None
        except MsalServiceError as exc:  # a 5xx, after MSAL's own retry
            raise LoadFailed(
                f"the identity platform at {self.authority} failed ({exc}); try again later"
            ) from None


def tls_sentence(url: str, setting: str, exc: BaseException) -> str:
    """What to do when the server at `url` (from `setting`) shows a certificate this machine
    does not trust."""
    return (
        f"could not verify the TLS certificate of {url} ({_reason(exc)}): if {setting} is "
        "right and its certificate comes from a private certificate authority (as the bundled "
        "emulator's does), point REQUESTS_CA_BUNDLE at that authority's PEM file; "
        "verification is never turned off."
    )


def _explain_token_error(result: dict, settings: GraphSettings) -> str:
    description = str(result.get("error_description", "")).split("\r\n")[0].split("\n")[0]
    error = result.get("error", "no access token")
    codes = result.get("error_codes") or [0]
    code = codes[0] if isinstance(codes, list) and codes else 0
    certificate = settings.client_certificate
    if certificate is not None and code == 700027:
        if "expired" in description:
            return (
                f"the certificate in GRAPH_CLIENT_CERTIFICATE (thumbprint "
                f"{certificate.thumbprint}) has expired for app {settings.client_id}: create a "
                f"new one, {UPLOAD} and point GRAPH_CLIENT_CERTIFICATE at it (AADSTS700027)."
            )
        return (
            f"the certificate in GRAPH_CLIENT_CERTIFICATE (thumbprint {certificate.thumbprint})"
            f" is not the one registered for app {settings.client_id}: {UPLOAD}, or point "
            "GRAPH_CLIENT_CERTIFICATE at the certificate registered there (AADSTS700027)."
        )
    if certificate is not None and code == 700024:
        return (
            "the identity platform found the certificate's client assertion outside its valid "
            "time range: check this machine's clock (AADSTS700024)."
        )
    credential = settings.credential_setting
    hints = {
        "invalid_client": f"check {credential}"
        + (" (a secret's value, not its id) and that it has not expired"
           if certificate is None else " and that this certificate is registered for the app"),
        "unauthorized_client": "check GRAPH_CLIENT_ID: no such app registration in the tenant",
        "invalid_request": "check GRAPH_TENANT_ID and GRAPH_LOGIN_URL",
    }
    hint = hints.get(error, f"check GRAPH_TENANT_ID, GRAPH_CLIENT_ID and {credential}")
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
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__
