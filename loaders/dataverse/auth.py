"""The Graph loader's token provider (loaders/graph/auth.py: MSAL, secret or certificate, the
same app registration and GRAPH_* settings), asking for the Dataverse environment's scope
`<DATAVERSE_URL>/.default` instead of Graph's: that provider's scope is fixed, so the two
methods that name it are given the scope here."""

from __future__ import annotations

import time

import requests

from loaders.errors import BadInput, LoadFailed
from loaders.graph.auth import RENEW_MARGIN_SECONDS, TokenProvider, _explain_token_error
from loaders.reach import FirstContact
from loaders.settings import DataverseSettings


class DataverseTokenProvider(TokenProvider):
    def __init__(self, settings: DataverseSettings, session: requests.Session,
                 contact: FirstContact | None = None) -> None:
        super().__init__(settings.app, session, contact)
        self._scope = settings.scope

    def _request_token(self) -> tuple[str, float]:
        app = None if self._direct else self._client()
        try:
            if app is None:
                result = self._call(self._client_credentials_grant)
            else:
                result = self._call(
                    lambda: app.acquire_token_for_client(scopes=[self._scope]))
        except ValueError:
            raise LoadFailed(
                f"the identity platform at {self.authority} sent a token answer that is not "
                "JSON; check GRAPH_LOGIN_URL."
            ) from None
        if "access_token" not in result:
            message = _explain_token_error(result, self._settings)
            if result.get("error") == "invalid_scope" or 500011 in (result.get("error_codes")
                                                                   or []):
                message = (
                    f"the identity platform has no Dataverse environment {self._scope[:-9]} "
                    f"for this tenant ({str(result.get('error_description', '')).splitlines()[0]})"
                    "; check DATAVERSE_URL and GRAPH_TENANT_ID."
                )
            raise BadInput(message)
        lifetime = float(result.get("expires_in") or 3599)
        margin = min(RENEW_MARGIN_SECONDS, lifetime * 0.1)
        return result["access_token"], time.monotonic() + lifetime - margin

    def _client_credentials_grant(self) -> dict:
        response = self._session.post(f"{self.authority}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": self._settings.client_id,
            "client_secret": self._settings.client_secret, "scope": self._scope,
        })
        answer = response.json()
        if not isinstance(answer, dict):
            raise ValueError("the token answer is not a JSON object")
        return answer
