"""Certificate credentials through MSAL against the emulator over TLS (issue 16, item 1).

The loader signs in with GRAPH_CLIENT_CERTIFICATE (a PEM file: private key and certificate)
instead of GRAPH_CLIENT_SECRET; the emulator checks the client assertion as Entra does; the
loader trusts the emulator's certificate authority through REQUESTS_CA_BUNDLE only.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devtools.emulators.graph import GraphEmulator
from loaders.cli import main
from loaders.graph.auth import _explain_token_error
from loaders.settings import GraphSettings

AS_OF = date(2026, 3, 15)
PASSWORD = "pa55-Phrase-never-printed"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# ---------------------------------------------------------------------------- certificates
class AppCertificate:
    """An RSA key and its self-signed certificate, as `openssl req -x509` makes them."""

    def __init__(self, name: str, days_valid: tuple[int, int] = (-1, 365)) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + timedelta(days=days_valid[0]))
            .not_valid_after(now + timedelta(days=days_valid[1]))
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, password: str | None = None) -> bytes:
        encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                      else serialization.NoEncryption())
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8, encryption)

    def write(self, folder: Path, password: str | None = None) -> Path:
        """key + certificate in one PEM file (`cat app.key app.crt > app.pem`)."""
        path = folder / f"{uuid.uuid4().hex}.pem"
        path.write_bytes(self.key_pem(password) + self.cert_pem)
        return path

    def thumbprint(self, algorithm: hashes.HashAlgorithm) -> str:
        digest = self.cert.fingerprint(algorithm)
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@pytest.fixture(scope="module")
def registered() -> AppCertificate:
    return AppCertificate("account-engagement loader")


@pytest.fixture(scope="module")
def stranger() -> AppCertificate:
    return AppCertificate("someone else's app")


@pytest.fixture(scope="module")
def expired() -> AppCertificate:
    return AppCertificate("expired", days_valid=(-400, -1))


@pytest.fixture
def tls_emulator(synthetic_org: Path, registered, expired) -> Iterator[GraphEmulator]:
    """Graph and login over https; the app has `registered` and `expired` uploaded."""
    emulator = GraphEmulator(synthetic_org, tls=True,
                             client_certificates=[registered.cert_pem, expired.cert_pem])
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def certificate_env(tls_emulator, registered, tmp_path, monkeypatch) -> Path:
    """Settings for a certificate sign-in (no secret); returns the warehouse path."""
    warehouse = tmp_path / "w.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(warehouse))
    for name, value in tls_emulator.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GRAPH_CLIENT_SECRET")
    monkeypatch.delenv("GRAPH_CLIENT_CERTIFICATE_PASSWORD", raising=False)
    monkeypatch.setenv("GRAPH_CLIENT_CERTIFICATE", str(registered.write(tmp_path)))
    return warehouse


def load(*extra: str) -> int:
    return main([*extra, "graph", "--group", "sales@contoso.com", "--as-of", AS_OF.isoformat(),
                 "--no-progress"])


def landed(path: Path) -> dict[str, set[tuple]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            "users": set(con.execute("select id from raw_graph.users").fetchall()),
            "messages": set(con.execute(
                "select _mailbox_id, id, _record_hash from raw_graph.messages").fetchall()),
            "events": set(con.execute(
                "select _mailbox_id, id, _record_hash from raw_graph.events").fetchall()),
        }


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: ") and lines[0].endswith("."), err
    return lines[0]


def token_requests(emulator: GraphEmulator) -> list[int]:
    return [r["status"] for r in emulator.requests if r["path"].endswith("/oauth2/v2.0/token")]


# ---------------------------------------------------------------------------- the loader
def test_certificate_lands_the_same_records_as_the_secret_over_tls(
    certificate_env, tls_emulator, registered, tmp_path, monkeypatch, capsys, caplog
):
    assert tls_emulator.graph_url.startswith("https://")
    # the secret, over TLS: the reference
    with monkeypatch.context() as secret:
        by_secret = tmp_path / "secret.duckdb"
        secret.setenv("DUCKDB_PATH", str(by_secret))
        secret.delenv("GRAPH_CLIENT_CERTIFICATE")
        secret.setenv("GRAPH_CLIENT_SECRET", tls_emulator.client_secret)
        assert load() == 0
    reference = landed(by_secret)
    assert all(reference.values())
    tls_emulator.requests.clear()

    caplog.set_level(logging.DEBUG)  # every log line of the run, MSAL's and urllib3's too
    assert load("-v") == 0
    assert landed(certificate_env) == reference
    # one OpenID configuration read and one token request, granted; Graph over https only
    paths = [r["path"] for r in tls_emulator.requests if not r["path"].startswith("/v1.0")]
    assert paths == [f"/{tls_emulator.tenant_id}/v2.0/.well-known/openid-configuration",
                     f"/{tls_emulator.tenant_id}/oauth2/v2.0/token"]
    assert token_requests(tls_emulator) == [200]

    # the key and its password never reach the output, the logs or the warehouse
    out = capsys.readouterr()
    key_body = registered.key_pem().decode().splitlines()[5]
    seen = out.out + out.err + caplog.text
    assert "run " in out.out and key_body not in seen and "PRIVATE KEY" not in seen
    assert key_body.encode() not in certificate_env.read_bytes()


def test_encrypted_key_with_its_password(certificate_env, tls_emulator, registered, tmp_path,
                                         monkeypatch):
    monkeypatch.setenv("GRAPH_CLIENT_CERTIFICATE", str(registered.write(tmp_path, PASSWORD)))
    monkeypatch.setenv("GRAPH_CLIENT_CERTIFICATE_PASSWORD", PASSWORD)
    settings = GraphSettings.from_env()
    assert PASSWORD not in repr(settings) and "PRIVATE" not in repr(settings)
    assert settings.client_certificate is not None
    assert PASSWORD not in repr(settings.client_certificate)
    from loaders.graph.transport import GraphClient

    GraphClient(settings).check_credentials()
    assert token_requests(tls_emulator) == [200]


def test_a_token_graph_refuses_is_replaced_not_served_again_from_msals_cache(
    certificate_env, tls_emulator
):
    """A token with most of its hour left that Graph answers 401 for (revoked) is dropped
    from MSAL's cache too: the next request carries a new one."""
    from loaders.graph.transport import GraphClient

    client = GraphClient(GraphSettings.from_env())
    user = tls_emulator.mailbox_ids[0]
    assert client.get(f"users/{user}").body["id"] == user
    tls_emulator.revoke_tokens()
    assert client.get(f"users/{user}").body["id"] == user
    assert token_requests(tls_emulator) == [200, 200]
    assert [r["status"] for r in tls_emulator.requests.matching(f"/users/{user}")] == [
        200, 401, 200]


def test_unregistered_certificate_exits_2_with_one_sentence_and_lands_nothing(
    certificate_env, tls_emulator, stranger, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("GRAPH_CLIENT_CERTIFICATE", str(stranger.write(tmp_path)))
    assert load() == 2
    line = one_error_line(capsys.readouterr().err)
    thumbprint = stranger.cert.fingerprint(hashes.SHA1()).hex().upper()
    assert line == (
        f"error: the certificate in GRAPH_CLIENT_CERTIFICATE (thumbprint {thumbprint}) is not "
        f"the one registered for app {tls_emulator.client_id}: upload its public part in the "
        "app registration (Certificates & secrets -> Certificates -> Upload certificate), or "
        "point GRAPH_CLIENT_CERTIFICATE at the certificate registered there (AADSTS700027).")
    assert token_requests(tls_emulator) == [401]
    assert not [r for r in tls_emulator.requests if r["path"].startswith("/v1.0")]
    if certificate_env.exists():
        assert not any(landed(certificate_env).values())


def test_expired_certificate_exits_2_before_any_request(
    certificate_env, tls_emulator, expired, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("GRAPH_CLIENT_CERTIFICATE", str(expired.write(tmp_path)))
    assert load() == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: the certificate in GRAPH_CLIENT_CERTIFICATE=")
    assert f"expired on {expired.cert.not_valid_after_utc:%Y-%m-%d}" in line
    assert "Upload certificate" in line
    assert len(tls_emulator.requests) == 0
    assert not certificate_env.exists()


def test_expired_key_as_entra_reports_it_is_one_sentence(registered, tmp_path, monkeypatch):
    """Entra's own refusal of an expired key (the emulator's, below) read as a sentence."""
    path = registered.write(tmp_path)
    monkeypatch.setenv("GRAPH_TENANT_ID", "t")
    monkeypatch.setenv("GRAPH_CLIENT_ID", "c")
    monkeypatch.delenv("GRAPH_CLIENT_SECRET", raising=False)
    monkeypatch.setenv("GRAPH_CLIENT_CERTIFICATE", str(path))
    settings = GraphSettings.from_env()
    sentence = _explain_token_error({
        "error": "invalid_client", "error_codes": [700027],
        "error_description": "AADSTS700027: Client assertion contains an invalid signature. "
                             "[Reason - The key used is expired., Thumbprint of key used by "
                             "client: 'AB']\r\nTrace ID: x"}, settings)
    assert sentence.startswith("the certificate in GRAPH_CLIENT_CERTIFICATE (thumbprint ")
    assert "has expired for app c: create a new one" in sentence
    assert sentence.endswith("(AADSTS700027).")


def test_untrusted_tls_is_refused_with_a_sentence_naming_requests_ca_bundle(
    certificate_env, tls_emulator, monkeypatch, capsys
):
    """Without REQUESTS_CA_BUNDLE the emulator's certificate authority is unknown: one
    sentence, at once (a certificate that fails verification is not retried)."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    started = time.monotonic()
    assert load() == 2
    assert time.monotonic() - started < 10
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: could not verify the TLS certificate of "
                           f"{tls_emulator.login_url} (certificate verify failed: ")
    assert "point REQUESTS_CA_BUNDLE at that authority's PEM file" in line
    assert len(tls_emulator.requests) == 0


@pytest.mark.parametrize(("change", "says"), [
    ({"GRAPH_CLIENT_SECRET": "s"},
     "GRAPH_CLIENT_SECRET and GRAPH_CLIENT_CERTIFICATE are both set: unset one of them"),
    ({"GRAPH_CLIENT_CERTIFICATE": None},
     "GRAPH_CLIENT_SECRET or GRAPH_CLIENT_CERTIFICATE not set: export"),
    ({"GRAPH_CLIENT_CERTIFICATE": "missing.pem"}, "missing.pem cannot be read (no such file"),
    ({"GRAPH_CLIENT_CERTIFICATE": "encrypted"},
     "is encrypted: export its password in GRAPH_CLIENT_CERTIFICATE_PASSWORD"),
    ({"GRAPH_CLIENT_CERTIFICATE": "encrypted", "GRAPH_CLIENT_CERTIFICATE_PASSWORD": "wrong-pw"},
     "GRAPH_CLIENT_CERTIFICATE_PASSWORD does not decrypt the private key"),
    ({"GRAPH_CLIENT_CERTIFICATE": "certificate only"}, "holds no private key"),
    ({"GRAPH_CLIENT_CERTIFICATE": "mismatched"}, "holds no certificate of that private key"),
    ({"GRAPH_LOGIN_URL": "http://127.0.0.1:1"}, "is not an https URL"),
    ({"REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem"}, "REQUESTS_CA_BUNDLE=/nonexistent/ca.pem "
                                                    "does not exist"),
])
def test_bad_certificate_settings_exit_2_with_one_sentence(
    certificate_env, tls_emulator, registered, stranger, tmp_path, monkeypatch, capsys,
    change, says
):
    files = {
        "encrypted": registered.write(tmp_path, PASSWORD),
        "certificate only": tmp_path / "cert.pem",
        "mismatched": tmp_path / "mismatched.pem",
    }
    files["certificate only"].write_bytes(registered.cert_pem)
    files["mismatched"].write_bytes(registered.key_pem() + stranger.cert_pem)
    for name, value in change.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(files.get(value, value)))
    assert load() == 2
    line = one_error_line(capsys.readouterr().err)
    assert says in line and PASSWORD not in line and "wrong-pw" not in line
    assert len(tls_emulator.requests) == 0
    assert not certificate_env.exists()


@pytest.mark.parametrize(("setting", "value", "says"), [
    ("GRAPH_TENANT_ID", "nobody", "has no tenant nobody (its OpenID configuration could not "
                                  "be read); check GRAPH_TENANT_ID and GRAPH_LOGIN_URL."),
    ("GRAPH_CLIENT_ID", "someone-else", "(unauthorized_client: AADSTS700016: Application with "
                                        "identifier 'someone-else' was not found"),
])
def test_unknown_tenant_or_app_exits_2_with_one_sentence(
    certificate_env, tls_emulator, monkeypatch, capsys, setting, value, says
):
    monkeypatch.setenv(setting, value)
    assert load() == 2
    assert says in one_error_line(capsys.readouterr().err)
    assert not [r for r in tls_emulator.requests if r["path"].startswith("/v1.0")]


# ---------------------------------------------------------------------------- the emulator
def assertion(emulator: GraphEmulator, signer: AppCertificate, named: AppCertificate,
              alg: str = "PS256", **claims: object) -> str:
    """A client assertion signed by `signer`'s key whose header names `named`'s certificate
    (x5t#S256 for PS256, x5t for RS256, as MSAL sends them)."""
    now = int(time.time())
    payload = {"aud": f"{emulator.login_url}/{emulator.tenant_id}/oauth2/v2.0/token",
               "iss": emulator.client_id, "sub": emulator.client_id, "jti": str(uuid.uuid4()),
               "iat": now, "nbf": now, "exp": now + 600, **claims}
    header = ({"x5t#S256": named.thumbprint(hashes.SHA256())} if alg == "PS256"
              else {"x5t": named.thumbprint(hashes.SHA1())})
    key = signer.key if alg.startswith(("PS", "RS")) else "a-shared-secret-of-32-bytes-at-least"
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key,
                      algorithm=alg, headers=header)


def post_assertion(emulator: GraphEmulator, token: str) -> tuple[int, list[int], str]:
    response = requests.post(
        f"{emulator.login_url}/{emulator.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": emulator.client_id,
              "scope": "https://graph.microsoft.com/.default",
              "client_assertion_type": JWT_BEARER, "client_assertion": token},
        timeout=10, verify=emulator.ca_bundle,
    )
    body = response.json()
    return response.status_code, body.get("error_codes", []), body.get("error_description", "")


def test_emulator_checks_the_client_assertion_as_entra_does(
    tls_emulator, registered, stranger, expired
):
    e, now = tls_emulator, int(time.time())
    assert post_assertion(e, assertion(e, registered, registered))[:2] == (200, [])
    assert post_assertion(e, assertion(e, registered, registered, "RS256"))[:2] == (200, [])

    forged = post_assertion(e, assertion(e, stranger, registered))  # a registered thumbprint
    assert forged[:2] == (401, [700027])
    assert "The provided signature value did not match" in forged[2]
    unknown = post_assertion(e, assertion(e, stranger, stranger))
    assert unknown[:2] == (401, [700027]) and "The key was not found" in unknown[2]
    stale = post_assertion(e, assertion(e, expired, expired))
    assert stale[:2] == (401, [700027]) and "The key used is expired" in stale[2]
    assert post_assertion(e, assertion(e, registered, registered, "HS256"))[:2] == (
        401, [700027])

    expectations = [
        ({"aud": f"{e.login_url}/other-tenant/oauth2/v2.0/token"}, 700023),
        ({"aud": "https://login.microsoftonline.com/common/oauth2/v2.0/token"}, 700023),
        ({"exp": now - 5}, 700024),
        ({"nbf": now + 600, "exp": now + 900}, 700024),
        ({"iss": "someone-else"}, 700021),
        ({"sub": "someone-else"}, 700021),
        ({"exp": None}, 50027),
    ]
    for claims, code in expectations:
        status, codes, description = post_assertion(e, assertion(e, registered, registered,
                                                                 **claims))
        assert (status, codes) == (401, [code]), (claims, description)
    assert post_assertion(e, "not-a-jwt")[:2] == (401, [50027])
    # the assertion (a credential for 10 minutes) is never logged
    assert not any("client_assertion" in str(r) for r in e.requests)


def test_openid_configuration_as_entra_serves_it(tls_emulator):
    e = tls_emulator
    config = requests.get(f"{e.login_url}/{e.tenant_id}/v2.0/.well-known/openid-configuration",
                          timeout=10, verify=e.ca_bundle)
    assert config.status_code == 200
    body = config.json()
    assert body["token_endpoint"] == f"{e.login_url}/{e.tenant_id}/oauth2/v2.0/token"
    assert body["issuer"] == f"{e.login_url}/{e.tenant_id}/v2.0"
    assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]
    unknown = requests.get(f"{e.login_url}/nobody/v2.0/.well-known/openid-configuration",
                           timeout=10, verify=e.ca_bundle)
    assert (unknown.status_code, unknown.json()["error_codes"]) == (400, [90002])
    # the identity platform's origin serves no Graph, and Graph's no tokens
    assert requests.get(f"{e.login_url}/v1.0/users", timeout=10,
                        verify=e.ca_bundle).status_code == 404
    assert requests.post(f"{e.base_url}/{e.tenant_id}/oauth2/v2.0/token", timeout=10,
                         verify=e.ca_bundle).status_code == 404


# ------------------------------------------------------------------ a plain token endpoint
class _PlainTokenEndpoint:
    """A test server's identity platform as some have it: `POST /{tenant}/oauth2/v2.0/token`
    over plain http, no OpenID configuration (404). It passes each token request on to the
    emulator's https login and answers what that answered."""

    def __init__(self, emulator: GraphEmulator) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        paths: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                paths.append(self.path)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                paths.append(self.path)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = requests.post(
                    emulator.login_url + self.path, data=body, verify=emulator.ca_bundle,
                    headers={"Content-Type": self.headers["Content-Type"]}, timeout=30)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                return

        self.paths = paths
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _PlainTokenEndpoint:
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_secret_signs_in_at_a_plain_http_token_endpoint_without_msal(
    tls_emulator, tmp_path, monkeypatch, capsys
):
    """MSAL takes only https authorities with an OpenID configuration: a secret still signs in
    at a test server's plain token endpoint, with the request MSAL would send."""
    for name, value in tls_emulator.environment().items():
        monkeypatch.setenv(name, value)
    by_msal = tmp_path / "msal.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(by_msal))
    assert load() == 0
    with _PlainTokenEndpoint(tls_emulator) as plain:
        monkeypatch.setenv("GRAPH_LOGIN_URL", plain.url)
        direct = tmp_path / "direct.duckdb"
        monkeypatch.setenv("DUCKDB_PATH", str(direct))
        assert load() == 0
        assert plain.paths == [f"/{tls_emulator.tenant_id}/oauth2/v2.0/token"]
        assert landed(direct) == landed(by_msal)

        # a wrong secret there reads as through MSAL: one sentence, exit 2
        capsys.readouterr()
        monkeypatch.setenv("GRAPH_CLIENT_SECRET", "not-the-secret")
        monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "refused.duckdb"))
        assert load() == 2
        line = one_error_line(capsys.readouterr().err)
        assert "refused the app credentials (invalid_client" in line
        assert "check GRAPH_CLIENT_SECRET" in line
