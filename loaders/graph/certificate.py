"""The app's certificate credential: GRAPH_CLIENT_CERTIFICATE, a PEM file holding the private
key and its certificate (optionally the key encrypted, GRAPH_CLIENT_CERTIFICATE_PASSWORD).

Read and checked here, before any request: the file, the password, an RSA key (what Entra
accepts), a certificate that belongs to that key and is valid today. Each failure is one
sentence (exit 2). The password is used once, to decrypt the key, and kept nowhere; the key
is never printed (`repr` leaves it out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from loaders.errors import BadInput

SETTING = "GRAPH_CLIENT_CERTIFICATE"
PASSWORD_SETTING = "GRAPH_CLIENT_CERTIFICATE_PASSWORD"
HOW = "see README, 'Connect a real tenant'"
UPLOAD = ("upload its public part in the app registration (Certificates & secrets -> "
          "Certificates -> Upload certificate)")


@dataclass(frozen=True)
class ClientCertificate:
    """What MSAL signs the client assertion with: the key (unencrypted PKCS#8 PEM, in memory
    only) and the certificate whose thumbprint names it."""

    certificate_pem: str
    thumbprint: str  # SHA-1, hex, as the app registration lists it
    not_after: datetime
    private_key_pem: str = field(repr=False)

    def msal_credential(self) -> dict[str, str]:
        """MSAL's `client_credential` for a certificate: with `public_certificate`, MSAL
        signs with PS256 and names the key by its SHA-256 thumbprint (`x5t#S256`)."""
        return {"private_key": self.private_key_pem, "public_certificate": self.certificate_pem}


def load_certificate(path_text: str, password: str | None) -> ClientCertificate:
    path = Path(path_text).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(
            f"{SETTING}={path_text} cannot be read ({(exc.strerror or type(exc).__name__).lower()})"
            f": point it at the PEM file holding the app's private key and certificate ({HOW})."
        ) from None
    key = _private_key(path_text, data, password)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BadInput(
            f"the private key in {SETTING}={path_text} is not an RSA key, and Microsoft Entra "
            f"accepts RSA certificates only: create an RSA key of 2048 bits or more ({HOW})."
        )
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    public = key.public_key().public_numbers()
    mine = [c for c in certificates
            if isinstance(c.public_key(), rsa.RSAPublicKey)
            and c.public_key().public_numbers() == public]
    if not mine:
        found = "no certificate" if not certificates else "no certificate of that private key"
        raise BadInput(
            f"{SETTING}={path_text} holds {found}: combine the private key and its certificate "
            f"into one PEM file (cat app.key app.crt > app.pem; {HOW})."
        )
    certificate = mine[0]
    now = datetime.now(UTC)
    if certificate.not_valid_after_utc <= now:
        raise BadInput(
            f"the certificate in {SETTING}={path_text} expired on "
            f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: create a new one, {UPLOAD} "
            f"and point {SETTING} at it ({HOW})."
        )
    if certificate.not_valid_before_utc > now:
        raise BadInput(
            f"the certificate in {SETTING}={path_text} is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: use it from then on, or "
            "check this machine's clock."
        )
    return ClientCertificate(
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        thumbprint=certificate.fingerprint(hashes.SHA1()).hex().upper(),
        not_after=certificate.not_valid_after_utc,
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def _private_key(path_text: str, data: bytes, password: str | None) -> object:
    if b"PRIVATE KEY-----" not in data:
        not_pem = b"-----BEGIN" not in data
        raise BadInput(
            f"{SETTING}={path_text} holds no private key"
            + (" (it is not a PEM file: a .pfx converts with openssl pkcs12 -in app.pfx "
               "-out app.pem -nodes)" if not_pem else "")
            + f": it must hold the app's private key and its certificate ({HOW})."
        )
    secret = password.encode() if password else None
    try:
        return serialization.load_pem_private_key(data, secret)
    except TypeError:
        if secret is None:
            raise BadInput(
                f"the private key in {SETTING}={path_text} is encrypted: export its password "
                f"in {PASSWORD_SETTING}."
            ) from None
        return serialization.load_pem_private_key(data, None)  # a password it does not need
    except ValueError:
        if secret is not None and b"ENCRYPTED" in data:
            raise BadInput(
                f"{PASSWORD_SETTING} does not decrypt the private key in {SETTING}={path_text}:"
                " check the password."
            ) from None
        raise BadInput(
            f"the private key in {SETTING}={path_text} cannot be read (not a PEM private key "
            f"openssl wrote?): export it again with openssl ({HOW})."
        ) from None
    except UnsupportedAlgorithm:
        raise BadInput(
            f"the private key in {SETTING}={path_text} is of a kind this machine's "
            "cryptography library cannot read: create an RSA key of 2048 bits or more "
            f"({HOW})."
        ) from None
