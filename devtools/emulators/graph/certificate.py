"""Certificates uploaded to the app registration and the client assertions signed with them
(private_key_jwt), checked as Entra checks them, with its AADSTS errors."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from devtools.emulators.graph.auth import _AadError

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CERT_DOCS = ("Review the documentation at "
             "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .")


class _KeyCredential:
    """A certificate uploaded to the app registration, by its thumbprints (`x5t`: base64url
    of the SHA-1 of its DER, `x5t#S256`: of the SHA-256; unpadded)."""

    def __init__(self, certificate: x509.Certificate) -> None:
        self.certificate = certificate
        sha1 = certificate.fingerprint(hashes.SHA1())  # what `x5t` is (RFC 7515)
        sha256 = certificate.fingerprint(hashes.SHA256())
        self.thumbprint = sha1.hex().upper()
        self.x5t = base64.urlsafe_b64encode(sha1).decode().rstrip("=")
        self.x5t_s256 = base64.urlsafe_b64encode(sha256).decode().rstrip("=")

    @property
    def period(self) -> str:
        """As Entra quotes a key: `Start=06/29/2021 21:13:15, End=06/29/2023 21:13:15`."""
        fmt = "%m/%d/%Y %H:%M:%S"
        return (f"Start={self.certificate.not_valid_before_utc.strftime(fmt)}, "
                f"End={self.certificate.not_valid_after_utc.strftime(fmt)}")


def _aad_time(epoch: Any) -> str:
    try:
        moment = datetime.fromtimestamp(float(epoch), UTC)
    except (TypeError, ValueError, OverflowError):
        moment = datetime.fromtimestamp(0, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


class CertificateMixin:
    """The app registration's certificates, by thumbprint."""

    tenant_id: str
    client_id: str
    login_url: str
    _key_credentials: dict[tuple[str, str], _KeyCredential]

    def register_certificate(self, certificate: str | bytes | Path) -> list[str]:
        """Upload certificates to the app registration (Entra: Certificates & secrets ->
        Certificates -> Upload certificate): a PEM file's path or PEM text; only its
        CERTIFICATE blocks are read (a private key beside them is ignored, as the portal never
        sees it). Returns their SHA-1 thumbprints as the portal shows them."""
        pem = (Path(certificate).read_bytes() if isinstance(certificate, Path)
               else certificate.encode() if isinstance(certificate, str) else certificate)
        thumbprints = []
        for cert in x509.load_pem_x509_certificates(pem):
            key = _KeyCredential(cert)
            self._key_credentials[("x5t", key.x5t)] = key
            self._key_credentials[("x5t#S256", key.x5t_s256)] = key
            thumbprints.append(key.thumbprint)
        return thumbprints

    def _check_client_assertion(self, tenant: str, form: dict[str, str]) -> None:
        """A certificate credential (private_key_jwt), checked in Entra's order: the signing
        key among the app's registered certificates (by the `x5t#S256` or `x5t` header), that
        key's validity, the signature (RS256 or PS256), the time range, the audience (this
        tenant's token endpoint), and `iss` = `sub` = the client id."""
        assertion = form.get("client_assertion") or ""
        if form.get("client_assertion_type") != JWT_BEARER or not assertion:
            raise _AadError(400, "invalid_request", 900144,
                            "The request body must contain the following parameter: "
                            f"'client_assertion_type' = '{JWT_BEARER}' and 'client_assertion'.")
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _AadError(401, "invalid_client", 50027,
                            "JWT token is invalid or malformed.") from None
        key, used = self._signing_key(header)
        app = f"for app Id '{self.client_id}'"
        if key is None:
            raise _AadError(401, "invalid_client", 700027,
                            "Client assertion contains an invalid signature. [Reason - The key "
                            f"was not found., Thumbprint of key used by client: '{used}', "
                            "Please visit the Azure Portal, Graph Explorer or directly use MS "
                            f"Graph to see configured keys {app}.]")
        found = f"Thumbprint of key used by client: '{used}', Found key '{key.period}'"
        now = datetime.now(UTC)
        if now >= key.certificate.not_valid_after_utc:
            raise _AadError(401, "invalid_client", 700027,
                            "Client assertion contains an invalid signature. [Reason - The key "
                            f"used is expired., {found}]")
        if now < key.certificate.not_valid_before_utc:
            raise _AadError(401, "invalid_client", 700027,
                            "Client assertion contains an invalid signature. [Reason - The key "
                            f"used is not yet valid., {found}]")
        audiences = [f"{self.login_url}/{t}/oauth2/{v}token" for t in {tenant, self.tenant_id}
                     for v in ("v2.0/", "")]
        try:
            claims = jwt.decode(assertion, key.certificate.public_key(),
                                algorithms=["RS256", "PS256"], audience=audiences,
                                options={"require": ["aud", "exp", "iss", "sub"]})
        except jwt.InvalidSignatureError:
            raise _AadError(401, "invalid_client", 700027,
                            "Client assertion contains an invalid signature. [Reason - The "
                            "provided signature value did not match the expected signature "
                            f"value., {found}]") from None
        except jwt.InvalidAlgorithmError:
            raise _AadError(401, "invalid_client", 700027,
                            "Client assertion contains an invalid signature. [Reason - Key was "
                            f"found, but use of the key to verify the signature failed., {found}]"
                            ) from None
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            raise _AadError(401, "invalid_client", 700024,
                            "Client assertion is not within its valid time range. Current time: "
                            f"{_aad_time(now.timestamp())}, assertion valid from "
                            f"{_aad_time(unverified.get('nbf', 0))}, expiry time of assertion "
                            f"{_aad_time(unverified.get('exp', 0))}. {CERT_DOCS}") from None
        except jwt.InvalidAudienceError:
            raise _AadError(401, "invalid_client", 700023,
                            f"Client assertion audience claim does not match Realm issuer. "
                            f"{CERT_DOCS}") from None
        except jwt.PyJWTError:
            raise _AadError(401, "invalid_client", 50027,
                            "JWT token is invalid or malformed.") from None
        if claims["iss"] != self.client_id or claims["sub"] != self.client_id:
            raise _AadError(401, "invalid_client", 700021,
                            "Client assertion application identifier doesn't match 'client_id' "
                            f"parameter. {CERT_DOCS}")

    def _signing_key(self, header: dict[str, Any]) -> tuple[_KeyCredential | None, str]:
        """The registered certificate the assertion's header names, and its thumbprint (hex,
        as Entra quotes it)."""
        for name in ("x5t#S256", "x5t"):
            value = header.get(name)
            if isinstance(value, str) and value:
                key = self._key_credentials.get((name, value.rstrip("=")))
                try:
                    used = base64.urlsafe_b64decode(value.rstrip("=") + "==").hex().upper()
                except ValueError:
                    used = value
                return key, used
        return None, ""
