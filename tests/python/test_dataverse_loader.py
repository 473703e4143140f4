"""The Dataverse loader (`python -m loaders dataverse`) against the Dataverse Web API emulator
over HTTP on loopback: the first load, paging, change tracking with deletions, an expired
delta token, throttling, a kill and resume, and bad settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import duckdb
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devtools.emulators.dataverse import DataverseEmulator
from devtools.emulators.graph import GraphEmulator
from loaders.cli import main
from loaders.dataverse import load as dataverse
from loaders.dataverse.auth import DataverseTokenProvider
from loaders.graph.transport import build_session
from loaders.schema import DATAVERSE_ACCOUNT_FIELDS, DATAVERSE_CONTACT_FIELDS
from loaders.settings import DataverseSettings
from loaders.warehouse import connect

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_SELECT = "accountid,name,websiteurl,address1_city,address1_country,statecode"
CONTACT_SELECT = ("contactid,emailaddress1,emailaddress2,emailaddress3,_parentcustomerid_value,"
                  "statecode")


@pytest.fixture
def emulator(synthetic_org: Path) -> Iterator[DataverseEmulator]:
    emulator = DataverseEmulator(synthetic_org).start()
    try:
        yield emulator
    finally:
        emulator.faults.release.set()
        emulator.stop()


@pytest.fixture
def env(emulator: DataverseEmulator, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("GRAPH_CLIENT_CERTIFICATE", "GRAPH_CLIENT_CERTIFICATE_PASSWORD",
                 "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY",
                 "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    settings = {**emulator.env(), "DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
                "LOADERS_CONNECT_GIVE_UP_SECONDS": "5"}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return settings


def run(*args: str) -> int:
    return main(["dataverse", "--no-progress", *args])


def query(env: dict[str, str], sql: str) -> list[tuple]:
    with duckdb.connect(env["DUCKDB_PATH"], read_only=True) as con:
        return con.execute(sql).fetchall()


def expected_accounts(emulator: DataverseEmulator) -> set[tuple]:
    return {(i, r["name"], r["websiteurl"], r["address1_city"], r["address1_country"],
             r["statecode"]) for i, r in emulator.rows("accounts").items()}


def expected_contacts(emulator: DataverseEmulator) -> set[tuple]:
    return {(i, r["emailaddress1"], r["emailaddress2"], r["emailaddress3"],
             r["_parentcustomerid_value"], r["_parentcustomerid_type"], r["statecode"])
            for i, r in emulator.rows("contacts").items()}


def landed(env: dict[str, str]) -> tuple[set[tuple], set[tuple]]:
    accounts = query(env, f"select {', '.join(DATAVERSE_ACCOUNT_FIELDS)} "
                          "from raw_dataverse.account")
    contacts = query(env, f"select {', '.join(DATAVERSE_CONTACT_FIELDS)} "
                          "from raw_dataverse.contact")
    return set(accounts), set(contacts)


def assert_equal_to_emulator(env: dict[str, str], emulator: DataverseEmulator) -> None:
    accounts, contacts = landed(env)
    assert accounts == expected_accounts(emulator)
    assert contacts == expected_contacts(emulator)
    # no row twice
    assert query(env, "select count(*) - count(distinct accountid) from raw_dataverse.account"
                 ) == [(0,)]
    assert query(env, "select count(*) - count(distinct contactid) from raw_dataverse.contact"
                 ) == [(0,)]


def data_requests(emulator: DataverseEmulator) -> list[dict]:
    return [r for r in emulator.requests if r["path"].startswith("/api/data/v9.2/")]


def test_first_load_lands_every_row_with_exactly_the_columns(
        env: dict[str, str], emulator: DataverseEmulator) -> None:
    assert run() == 0
    with duckdb.connect(env["DUCKDB_PATH"], read_only=True) as con:
        columns = {table: [c[0] for c in con.execute(
            "select column_name from information_schema.columns where table_schema = "
            "'raw_dataverse' and table_name = ? order by ordinal_position", [table]).fetchall()]
            for table in ("account", "contact")}
    assert columns["account"] == [*DATAVERSE_ACCOUNT_FIELDS, "_run_id", "_loaded_at"]
    assert columns["contact"] == ["contactid", "emailaddress1", "emailaddress2",
                                  "emailaddress3", "parentcustomerid", "parentcustomeridtype",
                                  "statecode", "_run_id", "_loaded_at"]
    assert_equal_to_emulator(env, emulator)
    accounts, contacts = landed(env)
    assert len(accounts) == 40
    # the synthetic CRM as Dataverse holds it: inactive rows, the second email field, and
    # contacts whose parent customer is a contact
    assert {a[5] for a in accounts} == {0, 1}
    assert any(c[1] is None and c[2] for c in contacts)
    assert {c[5] for c in contacts} == {"account", "contact"}
    assert {c[6] for c in contacts} == {0, 1}
    # exactly one run, its id on every row
    runs = query(env, "select run_id, status from raw_loader.load_runs "
                      "where source = 'dataverse' and stream = 'run'")
    assert [r[1] for r in runs] == ["succeeded"]
    assert query(env, "select distinct _run_id from raw_dataverse.contact") == [(runs[0][0],)]
    requests = data_requests(emulator)
    assert [(r["path"], r["query"]) for r in requests] == [
        ("/api/data/v9.2/accounts", f"$select={ACCOUNT_SELECT}"),
        ("/api/data/v9.2/contacts", f"$select={CONTACT_SELECT}"),
    ]
    for request in requests:
        prefer = request["prefer"]
        assert "odata.maxpagesize=5000" in prefer and "odata.track-changes" in prefer
        assert "Microsoft.Dynamics.CRM.lookuplogicalname" in prefer
    # the deltaLink of each table is stored
    state = dict(query(env, "select table_name, delta_link from raw_dataverse._sync_state "
                            "where next_link is null"))
    assert set(state) == {"account", "contact"}
    assert all("$deltatoken=" in link for link in state.values())


def test_small_pages_land_the_same_rows(env: dict[str, str],
                                        emulator: DataverseEmulator) -> None:
    con = connect(Path(env["DUCKDB_PATH"]))
    try:
        result = dataverse.load(con, DataverseSettings.from_env(), show_progress=False,
                                page_size=7)
    finally:
        con.close()
    assert_equal_to_emulator(env, emulator)
    contacts = len(emulator.rows("contacts"))
    pages = {t.table: t.pages for t in result.tables}
    assert pages == {"account": -(-40 // 7), "contact": -(-contacts // 7)}
    requests = data_requests(emulator)
    assert len(requests) == pages["account"] + pages["contact"]
    assert sum("$skiptoken=" in r["query"] for r in requests) == len(requests) - 2
    assert all("odata.maxpagesize=7" in r["prefer"] for r in requests)


def test_second_run_applies_changes_and_deletions_from_the_delta_link(
        env: dict[str, str], emulator: DataverseEmulator) -> None:
    assert run() == 0
    stored = dict(query(env, "select table_name, delta_link from raw_dataverse._sync_state"))
    accounts = sorted(emulator.rows("accounts"))
    contacts = sorted(emulator.rows("contacts"))
    new_account = emulator.add_row("accounts", name="Brand New Ltd",
                                   websiteurl="https://brandnew.example",
                                   address1_city="Leeds", address1_country="United Kingdom")
    emulator.update_row("accounts", accounts[0], name="Renamed Inc", statecode=1)
    emulator.delete_row("accounts", accounts[1])
    emulator.delete_row("contacts", contacts[0])
    emulator.update_row("contacts", contacts[1], emailaddress3="third@brandnew.example",
                        _parentcustomerid_value=new_account)
    emulator.requests.clear()
    assert run() == 0
    assert_equal_to_emulator(env, emulator)
    accounts_now, contacts_now = landed(env)
    assert accounts[1] not in {a[0] for a in accounts_now}
    assert contacts[0] not in {c[0] for c in contacts_now}
    assert ("Renamed Inc", 1) in {(a[1], a[5]) for a in accounts_now}
    requests = data_requests(emulator)
    # the stored deltaLinks were read as stored, and nothing was read whole
    assert [f"{emulator.url}{r['path']}?{r['query']}" for r in requests] == [
        unquote(stored["account"]), unquote(stored["contact"])]
    assert not any("odata.track-changes" in r["prefer"] for r in requests)
    tables = dict(query(env, "select stream, removed from raw_loader.load_runs where "
                             "source = 'dataverse' and stream <> 'run' order by finished_at "
                             "desc limit 2"))
    assert tables == {"account": 1, "contact": 1}


def test_an_expired_delta_token_means_one_full_read_said_in_a_sentence(
        env: dict[str, str], emulator: DataverseEmulator,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run() == 0
    gone = sorted(emulator.rows("accounts"))[2]
    emulator.delete_row("accounts", gone)
    emulator.advance_clock(timedelta(days=8))  # change tracking keeps 7 days by default
    emulator.requests.clear()
    capsys.readouterr()
    assert run() == 0
    out = capsys.readouterr().out
    assert "the change-tracking token of account has expired" in out
    assert "the change-tracking token of contact has expired" in out
    assert_equal_to_emulator(env, emulator)
    assert gone not in {a[0] for a in landed(env)[0]}
    statuses = [(r["status"], "$deltatoken" in r["query"], "odata.track-changes" in r["prefer"])
                for r in data_requests(emulator)]
    assert statuses == [(400, True, False), (200, False, True)] * 2
    # and the run after reads changes again
    emulator.requests.clear()
    assert run() == 0
    assert all("$deltatoken" in r["query"] and r["status"] == 200
               for r in data_requests(emulator))


def test_throttling_is_waited_out_as_retry_after_says(
        env: dict[str, str], emulator: DataverseEmulator) -> None:
    emulator.faults.throttle_every = 3
    emulator.faults.retry_after_seconds = 1
    assert run("--page-size", "20") == 0
    assert_equal_to_emulator(env, emulator)
    requests = data_requests(emulator)
    throttled = [i for i, r in enumerate(requests) if r["status"] == 429]
    assert len(throttled) >= 3
    for i in throttled:
        assert requests[i]["retry_after"] == "1"
        waited = requests[i + 1]["at"] - requests[i]["at"]
        assert waited >= 0.95, f"request {i + 1} came {waited:.2f}s after a 429"
    assert query(env, "select status from raw_loader.load_runs where source = 'dataverse' "
                      "and stream = 'run'") == [("succeeded",)]


def test_killed_mid_read_then_run_again_equals_an_uninterrupted_load(
        env: dict[str, str], emulator: DataverseEmulator) -> None:
    emulator.faults.stall_after = 5  # pages 1-4 of accounts answered, the 5th never
    process = subprocess.Popen(
        [sys.executable, "-m", "loaders", "dataverse", "--no-progress", "--page-size", "5"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.monotonic() + 60
        while emulator.api_requests < 5 and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        # the loader asks the fifth page only once the fourth is committed
        assert emulator.api_requests == 5
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    emulator.faults.stall_after = 0
    emulator.faults.release.set()
    # the full read killed half-way left the table as it was, and its four pages kept
    assert query(env, "select count(*) from raw_dataverse.account") == [(0,)]
    assert query(env, "select count(*) from raw_loader.dataverse_full_account") == [(20,)]
    resume = query(env, "select next_link, reading from raw_dataverse._sync_state "
                        "where table_name = 'account'")
    assert resume[0][1] == "full" and "$skiptoken=" in resume[0][0]
    emulator.requests.clear()
    assert run("--page-size", "5") == 0
    assert_equal_to_emulator(env, emulator)
    first = data_requests(emulator)[0]
    assert "$skiptoken=" in first["query"] and "pagenumber=\"5\"" in first["query"]
    runs = dict(query(env, "select status, error from raw_loader.load_runs "
                           "where source = 'dataverse' and stream = 'run'"))
    assert set(runs) == {"interrupted", "succeeded"}
    assert "stopped without finishing" in runs["interrupted"]
    assert query(env, "select count(*) from raw_loader.dataverse_full_account") == [(0,)]


@pytest.mark.parametrize(("url", "said"), [
    (None, "DATAVERSE_URL not set"),
    ("http://contoso.crm.dynamics.com", "is not an https URL"),
    ("https://contoso.crm.dynamics.com/api/data/v9.2", "has a path or a query"),
    ("contoso.crm.dynamics.com", "is not a URL"),
    ("https://contoso.crm.dynamics.com:port", "is not a URL"),
])
def test_a_bad_dataverse_url_is_a_sentence_and_exit_2(
        env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], url: str | None, said: str) -> None:
    if url is None:
        monkeypatch.delenv("DATAVERSE_URL")
    else:
        monkeypatch.setenv("DATAVERSE_URL", url)
    assert run() == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and said in err and err.count("\n") == 1
    assert not Path(env["DUCKDB_PATH"]).exists()


def test_missing_or_refused_credentials_are_a_sentence_and_exit_2(
        env: dict[str, str], emulator: DataverseEmulator, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GRAPH_CLIENT_SECRET")
    assert run() == 2
    err = capsys.readouterr().err
    assert "GRAPH_CLIENT_SECRET or GRAPH_CLIENT_CERTIFICATE not set" in err
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", "not-the-secret")
    assert run() == 2
    err = capsys.readouterr().err
    assert "refused the app credentials (invalid_client" in err
    assert "not-the-secret" not in err
    # a token for another environment's scope is refused by the identity platform
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", env["GRAPH_CLIENT_SECRET"])
    monkeypatch.setenv("DATAVERSE_URL", f"http://localhost:{emulator.port}")
    assert run() == 2
    err = capsys.readouterr().err
    assert "no Dataverse environment http://localhost" in err and "DATAVERSE_URL" in err
    assert data_requests(emulator) == []


def test_a_certificate_signs_in_through_msal_for_the_dataverse_scope(
        synthetic_org: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The certificate path (MSAL, https login): the Graph emulator's identity platform, which
    checks the client assertion, is asked for `<DATAVERSE_URL>/.default`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dataverse loader")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    pem = tmp_path / "app.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()) + cert_pem)
    login = GraphEmulator(synthetic_org, tls=True, client_certificates=[cert_pem]).start()
    try:
        for variable, value in login.environment().items():
            monkeypatch.setenv(variable, value)
        monkeypatch.delenv("GRAPH_CLIENT_SECRET", raising=False)
        monkeypatch.setenv("GRAPH_CLIENT_CERTIFICATE", str(pem))
        monkeypatch.setenv("DATAVERSE_URL", "https://contoso.crm.dynamics.com/")
        settings = DataverseSettings.from_env()
        session = build_session(2, url=settings.app.login_url)
        scopes: list[str] = []
        send = session.request

        def recording(method: str, url: str, **kwargs: object) -> object:
            data = kwargs.get("data")
            if isinstance(data, dict) and "scope" in data:
                scopes.append(str(data["scope"]))
            return send(method, url, **kwargs)

        session.request = recording  # type: ignore[method-assign]
        token = DataverseTokenProvider(settings, session).token()
    finally:
        login.stop()
    assert token and len(token) > 20
    assert scopes == ["https://contoso.crm.dynamics.com/.default"]
