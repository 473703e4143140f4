"""Sign-in as Entra answers it: the token endpoint (client credentials, with the client secret
or a certificate's client assertion: `devtools.emulators.graph.certificate`), the tenant's
OpenID configuration and the AADSTS errors; and the Bearer check on every Graph call (unknown,
expired or revoked tokens). The login origin's listener is in `devtools.emulators.graph.app`."""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote

import orjson

from devtools.emulators.graph.faults import Faults
from devtools.emulators.graph.odata import GraphError, _Request


class _AadError(Exception):
    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


def _tenant_not_found(tenant: str) -> str:
    return (f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.")


class AuthMixin:
    """Access tokens, issued by the token endpoint and checked on every Graph call (a client
    assertion is checked by `CertificateMixin._check_client_assertion`)."""

    tenant_id: str
    client_id: str
    client_secret: str
    org_domain: str | None
    login_url: str
    faults: Faults
    _lock: threading.Lock
    _tokens: dict[str, float]

    def revoke_tokens(self) -> None:
        """Forget every access token issued so far (as a revocation or a signing-key rollover
        does): Graph answers 401 for them, however long they had left."""
        with self._lock:
            self._tokens.clear()

    def _token(self, req: _Request) -> tuple[int, bytes]:
        tenant = req.path.split("/")[1]
        form = dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            self._check_token_request(tenant, form, req)
        except _AadError as exc:
            return exc.status, self._aad_error(exc)
        token = secrets.token_urlsafe(48)
        ttl = int(self.faults.token_ttl_seconds)
        with self._lock:
            self._tokens[token] = time.monotonic()
        return 200, orjson.dumps({"token_type": "Bearer", "expires_in": ttl,
                                  "ext_expires_in": ttl, "access_token": token})

    def _check_token_request(self, tenant: str, form: dict[str, str], req: _Request) -> None:
        basic = req.headers.get("Authorization") or ""
        if basic.lower().startswith("basic "):  # client_secret_basic
            try:
                decoded = base64.b64decode(basic[6:]).decode("utf-8", "replace")
            except ValueError:
                decoded = ""
            form.setdefault("client_id", unquote(decoded.partition(":")[0]))
            form.setdefault("client_secret", unquote(decoded.partition(":")[2]))
        if not self._known_tenant(tenant):
            raise _AadError(400, "invalid_request", 90002, _tenant_not_found(tenant))
        if form.get("grant_type") != "client_credentials":
            raise _AadError(400, "unsupported_grant_type", 70003,
                            "The app requested an unsupported grant type "
                            f"'{form.get('grant_type', '')}'.")
        if "scope" not in form:
            raise _AadError(400, "invalid_request", 900144,
                            "The request body must contain the following parameter: 'scope'.")
        if not form["scope"].endswith("/.default"):
            raise _AadError(400, "invalid_scope", 1002012,
                            f"The provided value for scope {form['scope']} is not valid. Client "
                            "credential flows must have a scope value with /.default suffixed "
                            "to the resource identifier (application ID URI).")
        if form.get("client_id") != self.client_id:
            raise _AadError(400, "unauthorized_client", 700016,
                            f"Application with identifier '{form.get('client_id', '')}' was "
                            f"not found in the directory '{tenant}'. This can happen if the "
                            "application has not been installed by the administrator of the "
                            "tenant or consented to by any user in the tenant. You may have "
                            "sent your authentication request to the wrong tenant.")
        if form.get("client_assertion_type") or form.get("client_assertion"):
            self._check_client_assertion(tenant, form)
            return
        if not form.get("client_secret"):
            raise _AadError(401, "invalid_client", 7000216,
                            "'client_assertion', 'client_secret' or 'request' is required for "
                            "the 'client_credentials' grant type.")
        if not secrets.compare_digest(form["client_secret"], self.client_secret):
            raise _AadError(401, "invalid_client", 7000215,
                            "Invalid client secret provided. Ensure the secret being sent in "
                            "the request is the client secret value, not the client secret ID, "
                            f"for a secret added to app '{self.client_id}'.")

    def _known_tenant(self, tenant: str) -> bool:
        """The tenant's id, its domain or its onmicrosoft.com name."""
        tenants = {self.tenant_id.lower()}
        if self.org_domain:
            prefix = self.org_domain.split(".")[0]
            tenants |= {self.org_domain.lower(), f"{prefix}.onmicrosoft.com"}
        return tenant.lower() in tenants

    def _openid_configuration(self, tenant: str) -> tuple[int, bytes]:
        """The tenant's OpenID Provider configuration, in the shape Entra serves at
        `/{tenant}/v2.0/.well-known/openid-configuration` (endpoints under the tenant's id)."""
        if not self._known_tenant(tenant):
            trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            return 400, orjson.dumps({
                "error": "invalid_tenant",
                "error_description": f"AADSTS90002: {_tenant_not_found(tenant)}\r\nTrace ID: "
                                     f"{trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: "
                                     f"{stamp}",
                "error_codes": [90002], "timestamp": stamp, "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"{self.login_url}/error?code=90002",
            })
        base = f"{self.login_url}/{self.tenant_id}"
        return 200, orjson.dumps({
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat",
                                 "auth_time", "acr", "nonce", "preferred_username", "name",
                                 "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        })

    def _aad_error(self, exc: _AadError) -> bytes:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return orjson.dumps({
            "error": exc.error,
            "error_description": f"AADSTS{exc.code}: {exc.description}\r\nTrace ID: {trace}"
                                 f"\r\nCorrelation ID: {correlation}\r\nTimestamp: {stamp}",
            "error_codes": [exc.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{self.login_url}/error?code={exc.code}",
        })

    def _authenticate(self, req: _Request) -> None:
        header = req.headers.get("Authorization") or ""
        challenge = {"WWW-Authenticate": 'Bearer realm="", authorization_uri="https://'
                     'login.microsoftonline.com/common/oauth2/authorize", '
                     'client_id="00000003-0000-0000-c000-000000000000"'}
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.",
                             challenge)
        with self._lock:
            issued = self._tokens.get(header[7:].strip())
        if issued is None:
            raise GraphError(401, "InvalidAuthenticationToken",
                             "IDX14100: JWT is not well formed, there are no dots (.).",
                             challenge)
        if time.monotonic() - issued >= self.faults.token_ttl_seconds:
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Access token has expired or is not yet valid.", challenge)
