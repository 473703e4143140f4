"""Settings from the environment (docs/configuration.md). Secrets are read here and never
printed."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from loaders.errors import BadInput
from loaders.graph.certificate import ClientCertificate, load_certificate

# The folder above the package: the clone, when the code runs from one. Only the clone's own
# benchmarks (bench/) use it; no default a user's command writes to comes from it, as for an
# installed wheel it is site-packages.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
GIVE_UP_SETTING = "LOADERS_CONNECT_GIVE_UP_SECONDS"
DEFAULT_GIVE_UP_SECONDS = 60.0
WAREHOUSE_FILE = "warehouse.duckdb"
WINDOW_SETTING = "ACCOUNT_ENGAGEMENT_WINDOW_DAYS"
PROJECT_DIR_SETTING = "DBT_PROJECT_DIR"  # dbt's own setting for --project-dir
DEFAULT_WINDOW_DAYS = 365
# a window reaching further back than a century is a typo, and dates before year 1 overflow
MAX_WINDOW_DAYS = 36_500
# the package's name in dbt_project.yml (`name:`): a project that installs it sets its vars
# under this key
DBT_PACKAGE = "account_engagement"


def duckdb_path() -> Path:
    """$DUCKDB_PATH, else warehouse.duckdb in the current folder (as profiles.yml has it)."""
    configured = os.environ.get("DUCKDB_PATH")
    return Path(configured) if configured else Path.cwd() / WAREHOUSE_FILE


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


@dataclass(frozen=True)
class WindowDays:
    """How many days back the Graph loader reads, and where that number came from."""

    days: int
    source: str

    def describe(self) -> str:
        """The line the loader prints before it loads."""
        return f"window: {self.days} days ({self.source})"


def parse_window_days(value: object) -> int | None:
    """`value` as a whole number of days from 1 to MAX_WINDOW_DAYS (a YAML int or the text of
    one); None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int) or not 1 <= value <= MAX_WINDOW_DAYS:
        return None
    return value


def _window_from_project(project_dir: Path, explicit: str | None) -> WindowDays:
    """vars.window_days of the dbt_project.yml in `project_dir`; 365 when it sets none, or
    when there is no dbt_project.yml in a folder nobody named (`explicit`: the flag or setting
    that named it, for messages)."""
    project = project_dir / "dbt_project.yml"
    if not project.is_file():
        if explicit:
            raise BadInput(
                f"{explicit} is {project_dir}, which has no dbt_project.yml: point it at the dbt "
                "project whose vars.window_days the loader should follow, or leave it out."
            )
        return WindowDays(DEFAULT_WINDOW_DAYS, f"the default; no {_shown(project)}")
    try:
        document = yaml.safe_load(project.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(
            f"{project}: cannot be read for vars.window_days ({reason}); fix the file, or give "
            f"the window with --window-days or {WINDOW_SETTING}."
        ) from None
    variables = (document or {}).get("vars") if isinstance(document, dict) else None
    variables = variables if isinstance(variables, dict) else {}
    # dbt gives vars set under the package's name precedence, for the package's models, over
    # global ones: the loader follows what its models will count
    scoped = variables.get(DBT_PACKAGE)
    if isinstance(scoped, dict) and "window_days" in scoped:
        key, value = f"vars.{DBT_PACKAGE}.window_days", scoped["window_days"]
    elif "window_days" in variables:
        key, value = "vars.window_days", variables["window_days"]
    else:
        return WindowDays(DEFAULT_WINDOW_DAYS,
                          f"the default; {_shown(project)} sets no vars.window_days")
    days = parse_window_days(value)
    if days is None:
        raise BadInput(
            f"{project}: {key} must be a whole number of days, 1 or more (got {value!r}); 365 "
            "is a year."
        )
    return WindowDays(days, f"{key} in {_shown(project)}")


def _shown(path: Path) -> str:
    """`path` as ./relative when it is under the current folder, else absolute."""
    absolute = path.absolute()
    try:
        relative = absolute.relative_to(Path.cwd())
    except ValueError:
        return str(absolute)
    return f"./{relative.as_posix()}"


def resolve_window(flag: int | None = None, project_dir: Path | None = None) -> WindowDays:
    """The window: `flag` (--window-days), else $ACCOUNT_ENGAGEMENT_WINDOW_DAYS, else
    vars.window_days of the dbt_project.yml in `project_dir` (--project-dir), else in
    $DBT_PROJECT_DIR, else in the current folder, else 365. A bad value is a BadInput."""
    if flag is not None:
        return WindowDays(flag, "--window-days")
    text = os.environ.get(WINDOW_SETTING, "").strip()
    if text:
        days = parse_window_days(text)
        if days is None:
            raise BadInput(
                f"{WINDOW_SETTING}={text!r} is not a whole number of days from 1 to "
                f"{MAX_WINDOW_DAYS:,}: unset it to follow the dbt project's vars.window_days, or "
                "give e.g. 365."
            )
        return WindowDays(days, WINDOW_SETTING)
    if project_dir is not None:
        return _window_from_project(project_dir, "--project-dir")
    configured = os.environ.get(PROJECT_DIR_SETTING, "").strip()
    if configured:
        return _window_from_project(Path(configured), PROJECT_DIR_SETTING)
    return _window_from_project(Path.cwd(), None)


_chosen: WindowDays | None = None  # set by the command that runs (window_in_use)


@contextmanager
def window_in_use(window: WindowDays) -> Iterator[WindowDays]:
    """Within the block, `window_days()` is `window` (the one a command resolved from its
    flags and printed); after it, the window resolves from the environment again."""
    global _chosen
    previous, _chosen = _chosen, window
    window_days.cache_clear()
    try:
        yield window
    finally:
        _chosen = previous
        window_days.cache_clear()


@cache
def window_days() -> int:
    """How many days back the Graph loader reads: the window a command chose (window_in_use),
    else as resolve_window() finds it without flags. The models count in dbt's var
    `window_days`: both must be the same, which they are when dbt and the loader read the same
    dbt_project.yml."""
    return (_chosen or resolve_window()).days


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


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class DataverseSettings:
    """The Dataverse environment (DATAVERSE_URL, e.g. https://contoso.crm.dynamics.com) and
    the app registration that signs in to it: the Graph loader's (GraphSettings), its token
    asked for the scope `<DATAVERSE_URL>/.default`."""

    url: str
    app: GraphSettings

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/data/v9.2"

    @property
    def scope(self) -> str:
        return f"{self.url}/.default"

    @classmethod
    def from_env(cls) -> DataverseSettings:
        text = os.environ.get("DATAVERSE_URL", "").strip()
        if not text:
            raise BadInput(
                "DATAVERSE_URL not set: export the environment URL of your Dynamics 365 / "
                "Dataverse organisation, e.g. https://contoso.crm.dynamics.com (Power Platform "
                "admin center, the environment's 'Environment URL')."
            )
        return cls(url=_dataverse_url(text), app=GraphSettings.from_env())


def _dataverse_url(text: str) -> str:
    """DATAVERSE_URL as the environment's origin: https (http only on this machine, as a test
    server is), a host, no path beyond the root, no query."""
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        host, parts = "", None
    if parts is None or parts.scheme.lower() not in {"https", "http"} or not host:
        problem = "is not a URL"
    elif parts.scheme.lower() == "http" and host not in LOOPBACK_HOSTS:
        problem = "is not an https URL (http is accepted only for a server on this machine)"
    elif parts.path.rstrip("/") or parts.query or parts.fragment:
        problem = "has a path or a query; it must be the environment's address alone"
    else:
        return f"{parts.scheme.lower()}://{parts.netloc}"
    raise BadInput(
        f"DATAVERSE_URL={text!r} {problem}: give the environment URL, e.g. "
        "https://contoso.crm.dynamics.com (without /api/data/v9.2)."
    )
