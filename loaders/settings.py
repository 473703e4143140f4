"""Settings from the environment (docs/configuration.md). Secrets are read here and never
printed."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from loaders.errors import BadInput
from loaders.graph.certificate import ClientCertificate, load_certificate

PROJECT_ROOT = Path(__file__).resolve().parent.parent
GIVE_UP_SETTING = "LOADERS_CONNECT_GIVE_UP_SECONDS"
DEFAULT_GIVE_UP_SECONDS = 60.0


def duckdb_path() -> Path:
    return Path(os.environ.get("DUCKDB_PATH") or PROJECT_ROOT / "warehouse.duckdb")


def connect_give_up_seconds() -> float:
    """How long the first contact with a server may take before the loader gives up on it
    (LOADERS_CONNECT_GIVE_UP_SECONDS, 60 s by default; see loaders/reach.py)."""
    text = os.environ.get(GIVE_UP_SETTING, "").strip()
    if not text:
        return DEFAULT_GIVE_UP_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= 3600:  # nan and inf fail too
        raise BadInput(
            f"{GIVE_UP_SETTING}={text!r} is not a number of seconds above 0 and at most 3600: "
            f"unset it for the default ({DEFAULT_GIVE_UP_SECONDS:.0f}) or give e.g. 30."
        )
    return seconds


@cache
def window_days() -> int:
    """How many days back the Graph loader reads: dbt_project.yml's var `window_days`, the
    window the models count in, so that the two can never disagree (365 as shipped)."""
    project = PROJECT_ROOT / "dbt_project.yml"
    value = (yaml.safe_load(project.read_text()).get("vars") or {}).get("window_days")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadInput(
            f"{project}: vars.window_days must be a whole number of days, 1 or more (got "
            f"{value!r}); 365 is a year."
        )
    return value


@dataclass(frozen=True)
class GraphSettings:
    """The app registration and where to reach Microsoft: exactly one credential, the client
    secret (GRAPH_CLIENT_SECRET) or the certificate (GRAPH_CLIENT_CERTIFICATE, a PEM file with
    the private key; GRAPH_CLIENT_CERTIFICATE_PASSWORD when that key is encrypted)."""

    api_url: str
    login_url: str
    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    client_certificate: ClientCertificate | None = field(default=None, repr=False)
    give_up_seconds: float = DEFAULT_GIVE_UP_SECONDS

    @property
    def credential_setting(self) -> str:
        """The setting that holds the credential in use, for messages."""
        return "GRAPH_CLIENT_CERTIFICATE" if self.client_certificate else "GRAPH_CLIENT_SECRET"

    @classmethod
    def from_env(cls) -> GraphSettings:
        secret = os.environ.get("GRAPH_CLIENT_SECRET")
        certificate = os.environ.get("GRAPH_CLIENT_CERTIFICATE")
        password = os.environ.get("GRAPH_CLIENT_CERTIFICATE_PASSWORD")
        missing = [name for name in ("GRAPH_TENANT_ID", "GRAPH_CLIENT_ID")
                   if not os.environ.get(name)]
        if not secret and not certificate:
            missing.append("GRAPH_CLIENT_SECRET or GRAPH_CLIENT_CERTIFICATE")
        if missing:
            raise BadInput(
                f"{', '.join(missing)} not set: export the app registration's tenant id, "
                "client id and either a client secret or the path of its certificate's PEM file "
                "(see README, 'Connect a real tenant')."
            )
        if secret and certificate:
            raise BadInput(
                "GRAPH_CLIENT_SECRET and GRAPH_CLIENT_CERTIFICATE are both set: unset one of "
                "them, as the app signs in with either its client secret or its certificate."
            )
        if password and not certificate:
            raise BadInput(
                "GRAPH_CLIENT_CERTIFICATE_PASSWORD is set without GRAPH_CLIENT_CERTIFICATE: "
                "unset it, or export the path of the certificate's PEM file it decrypts."
            )
        login_url = os.environ.get("GRAPH_LOGIN_URL", "https://login.microsoftonline.com")
        if certificate and not login_url.lower().startswith("https://"):
            raise BadInput(
                f"GRAPH_LOGIN_URL={login_url} is not an https URL: a certificate signs in "
                "through Microsoft's MSAL, which reaches the identity platform over https only; "
                "the bundled emulator prints its https login URL and the REQUESTS_CA_BUNDLE that "
                "trusts it."
            )
        _check_ca_bundle()
        return cls(
            api_url=os.environ.get("GRAPH_API_URL", "https://graph.microsoft.com/v1.0").rstrip("/"),
            login_url=login_url.rstrip("/"),
            tenant_id=os.environ["GRAPH_TENANT_ID"],
            client_id=os.environ["GRAPH_CLIENT_ID"],
            client_secret=secret or None,
            client_certificate=load_certificate(certificate, password) if certificate else None,
            give_up_seconds=connect_give_up_seconds(),
        )


def _check_ca_bundle() -> None:
    """REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE), when set, names the certificate authorities
    this machine trusts for https instead of its own store: it must be there."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        value = os.environ.get(name)
        if value:
            if not os.path.exists(value):
                raise BadInput(
                    f"{name}={value} does not exist: point it at the PEM file of the certificate "
                    "authorities to trust (for the bundled emulator, the file it prints), or "
                    "unset it."
                )
            return


@dataclass(frozen=True)
class LeadspaceSettings:
    api_url: str
    token: str = field(repr=False)
    give_up_seconds: float = DEFAULT_GIVE_UP_SECONDS

    @classmethod
    def from_env(cls) -> LeadspaceSettings:
        token = os.environ.get("LEADSPACE_TOKEN", "").strip()
        if not token:
            raise BadInput(
                "LEADSPACE_TOKEN not set: export the Leadspace perpetual key (the API key "
                "Leadspace sent for your program; see README, 'Leadspace firmographics')."
            )
        return cls(
            api_url=os.environ.get("LEADSPACE_API_URL", "https://apigw.leadspace.com").rstrip("/"),
            token=token,
            give_up_seconds=connect_give_up_seconds(),
        )


@dataclass(frozen=True)
class PostgresSettings:
    """The `postgres` target's connection (the same POSTGRES_* settings profiles.yml reads)."""

    host: str
    port: int
    user: str
    dbname: str
    password: str = field(repr=False)
    give_up_seconds: float = DEFAULT_GIVE_UP_SECONDS

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls) -> PostgresSettings:
        missing = [name for name in ("POSTGRES_USER", "POSTGRES_DB") if not os.environ.get(name)]
        if missing:
            raise BadInput(
                f"{' and '.join(missing)} not set: export the Postgres user and database to "
                "copy the raw tables into (and POSTGRES_HOST, POSTGRES_PORT, POSTGRES_PASSWORD "
                "as needed; see README, 'PostgreSQL')."
            )
        return cls(
            host=os.environ.get("POSTGRES_HOST") or "127.0.0.1",
            port=_port("POSTGRES_PORT", 5432),
            user=os.environ["POSTGRES_USER"],
            dbname=os.environ["POSTGRES_DB"],
            password=os.environ.get("POSTGRES_PASSWORD", ""),
            give_up_seconds=connect_give_up_seconds(),
        )


def _port(name: str, default: int) -> int:
    """The port number in setting `name` (`default` when unset); a sentence when it is not
    one."""
    text = os.environ.get(name) or str(default)
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise BadInput(f"{name}={text!r} is not a port number (1 to 65535).")
    return port


@dataclass(frozen=True)
class SparkSettings:
    """The `spark` target's Thrift server (SPARK_HOST, SPARK_PORT, as profiles.yml reads them)
    and where `export --target spark` writes the raw tables (SPARK_RAW_PATH)."""

    host: str
    port: int
    raw_path: Path
    give_up_seconds: float = DEFAULT_GIVE_UP_SECONDS

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, warehouse: Path) -> SparkSettings:
        port = _port("SPARK_PORT", 10000)
        raw_path = os.environ.get("SPARK_RAW_PATH") or str(warehouse.parent / "spark_raw")
        return cls(
            host=os.environ.get("SPARK_HOST") or "127.0.0.1",
            port=port,
            raw_path=Path(raw_path).resolve(),
            give_up_seconds=connect_give_up_seconds(),
        )
