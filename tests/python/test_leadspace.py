"""`python -m loaders leadspace` against the bundled Leadspace emulator over real HTTP on loopback.

Expected figures come from the synthetic organisation's CRM file (which accounts exist, what
their columns hold) and from the request log (what left the machine), so a loader that sends
an unmapped field, skips an account, or lands an answer twice fails.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest
import requests

from devtools.emulators.leadspace import LeadspaceEmulator, normalise_name, normalise_website
from loaders.cli import main
from loaders.errors import LoadFailed
from loaders.leadspace.client import LeadspaceClient
from loaders.leadspace.enrich import load
from loaders.leadspace.mapping import location_address
from loaders.settings import LeadspaceSettings

KEY = "test-leadspace-key-0123456789"
BULK = "/enrichment/enrich/bulk"
SINGLE = "/enrichment/enrich/single"
FULL_MAP = ["--map", "company_name=name", "--map", "website=website", "--map", "location=city"]


# ---------------------------------------------------------------------------- fixtures
def crm_accounts(org: Path) -> list[dict[str, str]]:
    with (org / "crm" / "accounts.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture
def leadspace_emulator(synthetic_org: Path):
    emulator = LeadspaceEmulator(synthetic_org, key=KEY).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def warehouse(synthetic_org, leadspace_emulator, tmp_path, monkeypatch) -> Path:
    """A warehouse holding the CRM snapshot, with the Leadspace settings pointing at the
    emulator."""
    path = tmp_path / "w.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(path))
    monkeypatch.setenv("LEADSPACE_API_URL", leadspace_emulator.url)
    monkeypatch.setenv("LEADSPACE_TOKEN", KEY)
    assert main(["crm", "--accounts", str(synthetic_org / "crm" / "accounts.csv"),
                 "--contacts", str(synthetic_org / "crm" / "contacts.csv")]) == 0
    return path


def run(*args: str) -> int:
    return main(["leadspace", "--no-progress", *args])


def sent_records(emulator: LeadspaceEmulator) -> list[dict]:
    records = [r for body in emulator.bodies(BULK) for r in body["data"]]
    return records + emulator.bodies(SINGLE)


def posts(emulator: LeadspaceEmulator) -> list[dict]:
    return [r for r in emulator.requests if r["method"] == "POST"]


# ---------------------------------------------------------------------------- mapping rules
@pytest.mark.parametrize(
    ("maps", "expected"),
    [
        (["--map", "website=website"], "company_name=COLUMN is required"),
        (["--map", "company_name=name", "--map", "industry=industry"], "not 'industry'"),
        (["--map", "company_name=name", "--map", "website=website", "--map", "website=city"],
         "website is mapped twice"),
        (["--map", "company_name"], "write FIELD=COLUMN"),
    ],
)
def test_bad_mappings_exit_2_and_send_nothing(warehouse, leadspace_emulator, capsys, maps,
                                              expected):
    assert run("--consent", *maps) == 2
    assert expected in capsys.readouterr().err
    assert len(leadspace_emulator.requests) == 0


@pytest.mark.parametrize(
    ("value", "column", "expected"),
    [
        ("Paris, France", "location", {"city": "Paris", "country": "France"}),
        ("Paris", "city", {"city": "Paris"}),
        ("France", "country", {"country": "France"}),
        ("Bavaria", "region", {"state": "Bavaria"}),
        ("Austin, TX, United States", "hq", {"city": "Austin", "state": "TX",
                                             "country": "United States"}),
        ("1 Main St, Suite 2, Austin, TX, USA", "hq", {"street": "1 Main St, Suite 2",
                                                       "city": "Austin", "state": "TX",
                                                       "country": "USA"}),
        (" , ", "city", {}),
    ],
)
def test_location_rule(value, column, expected):
    assert location_address(value, column) == expected


# ---------------------------------------------------------------------------- consent
def test_without_consent_nothing_is_sent_or_recorded(warehouse, leadspace_emulator, capsys):
    assert run(*FULL_MAP) == 2
    err = capsys.readouterr().err
    assert "nothing was sent" in err and "--consent" in err
    assert "company_name (column name), website (column website), location (column city)" in err
    assert len(leadspace_emulator.requests) == 0
    assert query(warehouse, "select count(*) from raw_leadspace.consents") == [(0,)]
    assert query(warehouse, "select count(*) from raw_leadspace.answers") == [(0,)]


def test_consent_is_recorded(warehouse, leadspace_emulator, synthetic_org):
    assert run("--consent", *FULL_MAP) == 0
    rows = query(warehouse, "select fields, columns, dataset, accounts_in_dataset, api_url, "
                            "consented_at is not null from raw_leadspace.consents")
    assert rows == [(["company_name", "website", "location"], ["name", "website", "city"],
                     "all accounts", len(crm_accounts(synthetic_org)), leadspace_emulator.url,
                     True)]


# ---------------------------------------------------------------------------- what leaves
def test_only_the_mapped_fields_leave_the_machine(warehouse, leadspace_emulator, synthetic_org):
    assert run("--consent", "--map", "company_name=name") == 0
    accounts = crm_accounts(synthetic_org)
    records = sent_records(leadspace_emulator)
    assert sorted(r["external_id"] for r in records) == sorted(a["account_id"] for a in accounts)
    for record in records:
        assert set(record) == {"company", "external_id"}
        assert set(record["company"]) == {"name"}
    for body in leadspace_emulator.bodies(BULK):
        assert set(body) == {"data"}
    names = {a["account_id"]: a["name"] for a in accounts}
    assert all(r["company"]["name"] == names[r["external_id"]] for r in records)


def test_location_column_is_sent_as_address_fields_only(warehouse, leadspace_emulator,
                                                        synthetic_org):
    assert run("--consent", "--map", "company_name=name", "--map", "location=city") == 0
    cities = {a["account_id"]: a["city"] for a in crm_accounts(synthetic_org)}
    records = sent_records(leadspace_emulator)
    assert len(records) == len(cities)
    for record in records:
        assert set(record["company"]) == {"name", "address"}
        assert record["company"]["address"] == {"city": cities[record["external_id"]]}


def test_empty_website_is_left_out(warehouse, leadspace_emulator, synthetic_org):
    assert run("--consent", "--map", "company_name=name", "--map", "website=website") == 0
    websites = {a["account_id"]: a["website"] for a in crm_accounts(synthetic_org)}
    assert any(not w for w in websites.values())  # the synthetic org has accounts without one
    for record in sent_records(leadspace_emulator):
        expected = {"name", "website"} if websites[record["external_id"]] else {"name"}
        assert set(record["company"]) == expected


# ---------------------------------------------------------------------------- answers
def test_full_run_lands_every_answer_once(warehouse, leadspace_emulator, synthetic_org, capsys):
    accounts = crm_accounts(synthetic_org)
    known = {normalise_name(c.answer["name"]) for c in leadspace_emulator.companies}
    unknown = [a for a in accounts if normalise_name(a["name"]) not in known]
    assert unknown, "the synthetic org should hold companies Leadspace does not know"
    assert run("--consent", *FULL_MAP) == 0
    out = capsys.readouterr().out
    rows = query(warehouse, "select external_id, enrichment_status, company is null, _error "
                            "from raw_leadspace.answers")
    assert sorted(r[0] for r in rows) == sorted(a["account_id"] for a in accounts)
    by_id = {r[0]: r for r in rows}
    not_matched = [by_id[a["account_id"]] for a in accounts
                   if leadspace_emulator.match({"name": a["name"], "website": a["website"]})[0]
                   is None]
    assert not_matched and all(r[1] == "Not Enriched" and r[2] and r[3] is None
                               for r in not_matched)
    enriched = len(accounts) - len(not_matched)
    assert (f"sent {len(accounts)}, enriched {enriched}, not matched {len(not_matched)}, "
            "failed 0, skipped unchanged 0") in out


def test_bulk_job_is_polled_until_done(warehouse, leadspace_emulator, synthetic_org):
    leadspace_emulator.faults.processing_polls = 2
    assert run("--consent", "--map", "company_name=name") == 0
    polls = [r["status"] for r in leadspace_emulator.requests if r["method"] == "GET"]
    assert polls == [204, 204, 200]
    assert query(warehouse, "select count(*) from raw_leadspace.answers") == [
        (len(crm_accounts(synthetic_org)),)]
    assert query(warehouse, "select count(*) from raw_leadspace.bulk_jobs") == [(0,)]


def test_confidence_follows_what_was_sent(warehouse, leadspace_emulator):
    assert run("--consent", "--map", "company_name=name") == 0
    name_only = dict(query(warehouse, "select distinct company.matching_confidence.level, 1 "
                                      "from raw_leadspace.answers where company is not null"))
    assert set(name_only) == {"LOW"}
    assert run("--consent", *FULL_MAP) == 0  # changed mapping: everything is sent again
    full = query(warehouse, """select distinct company.matching_confidence.level
        from raw_leadspace.answers where company is not null and _sent_fields =
        ['company_name', 'website', 'location']""")
    assert {r[0] for r in full} == {"HIGH"}


def test_emulator_normalises_names_and_websites(leadspace_emulator):
    company = leadspace_emulator.companies[0]
    messy_name = company.answer["name"].upper().replace(" ", "  ") + ", Inc."
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {KEY}"
    answer = session.post(f"{leadspace_emulator.url}{SINGLE}", json={
        "company": {"name": messy_name, "website": f"HTTPS://WWW.{company.domain.upper()}/x"},
        "external_id": "X1",
    }, timeout=10).json()
    assert answer["data"]["enrichment_status"] == "Company Enriched"
    assert answer["data"]["company"]["ls_id"] == company.answer["ls_id"]
    assert answer["data"]["company"]["matching_confidence"]["level"] == "HIGH"
    assert normalise_website("https://www.Acme.co.uk/about") == "acme.co.uk"
    assert normalise_name("Acme Labs, Ltd.") == normalise_name("ACME LABS GmbH") == "acme labs"
    wrong_site = session.post(f"{leadspace_emulator.url}{SINGLE}", json={
        "company": {"name": company.answer["name"], "website": "elsewhere.example"},
    }, timeout=10).json()
    assert wrong_site["data"]["company"]["matching_confidence"]["level"] == "VERY LOW"


# ---------------------------------------------------------------------------- re-runs
def test_rerun_sends_nothing_new(warehouse, leadspace_emulator, synthetic_org, capsys):
    assert run("--consent", *FULL_MAP) == 0
    before = len(leadspace_emulator.requests)
    capsys.readouterr()
    assert run("--consent", *FULL_MAP) == 0
    assert len(leadspace_emulator.requests) == before
    n = len(crm_accounts(synthetic_org))
    assert f"sent 0, enriched 0, not matched 0, failed 0, skipped unchanged {n}" in (
        capsys.readouterr().out)
    assert query(warehouse, "select count(*), count(distinct external_id) "
                            "from raw_leadspace.answers") == [(n, n)]


def test_a_changed_mapped_field_is_sent_again(warehouse, leadspace_emulator, synthetic_org):
    assert run("--consent", *FULL_MAP) == 0
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update raw_crm.accounts set website = 'https://www.changed.example' "
                    "where account_id = 'ACC-00002'")
        con.execute("update raw_crm.accounts set industry = 'Unmapped change' "
                    "where account_id = 'ACC-00003'")  # not mapped: no reason to re-send
    first = len(posts(leadspace_emulator))
    assert run("--consent", *FULL_MAP) == 0
    new = posts(leadspace_emulator)[first:]
    assert [r["path"] for r in new] == [SINGLE]
    assert new[0]["body"]["external_id"] == "ACC-00002"
    assert new[0]["body"]["company"]["website"] == "https://www.changed.example"
    n = len(crm_accounts(synthetic_org))
    assert query(warehouse, "select count(*) from raw_leadspace.answers") == [(n + 1,)]


def test_refresh_interval_sends_old_answers_again(warehouse, leadspace_emulator, synthetic_org):
    assert run("--consent", "--map", "company_name=name") == 0
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update raw_leadspace.answers set _loaded_at = _loaded_at - interval 40 day "
                    "where external_id in ('ACC-00001', 'ACC-00004')")
    first = len(sent_records(leadspace_emulator))
    assert run("--consent", "--map", "company_name=name") == 0
    resent = sent_records(leadspace_emulator)[first:]
    assert sorted(r["external_id"] for r in resent) == ["ACC-00001", "ACC-00004"]
    assert run("--consent", "--map", "company_name=name", "--refresh-days", "0") == 0
    assert len(sent_records(leadspace_emulator)) == first + 2 + len(crm_accounts(synthetic_org))


# ---------------------------------------------------------------------------- faults
def test_429_is_waited_out(warehouse, leadspace_emulator, synthetic_org):
    leadspace_emulator.faults.throttle_every = 2
    assert run("--consent", "--map", "company_name=name", "--batch-size", "20") == 0
    statuses = [r["status"] for r in leadspace_emulator.requests]
    assert statuses.count(429) >= 2
    n = len(crm_accounts(synthetic_org))
    assert query(warehouse, "select count(*), count(distinct external_id) "
                            "from raw_leadspace.answers") == [(n, n)]
    # a throttled POST was not processed: exactly one accepted bulk per batch
    assert [r["status"] for r in leadspace_emulator.requests
            if r["path"] == BULK and r["status"] != 429] == [202, 202]


def test_401_stops_with_a_sentence(warehouse, leadspace_emulator, monkeypatch, capsys):
    monkeypatch.setenv("LEADSPACE_TOKEN", "not-the-key")
    assert run("--consent", *FULL_MAP) == 2
    captured = capsys.readouterr()
    assert "Leadspace rejected the key (401 Unauthorized): check LEADSPACE_TOKEN" in captured.err
    assert "not-the-key" not in captured.err + captured.out
    assert [r["status"] for r in leadspace_emulator.requests] == [401]
    assert query(warehouse, "select count(*) from raw_leadspace.answers") == [(0,)]


def test_427_stops_and_keeps_what_was_landed(warehouse, leadspace_emulator, capsys):
    leadspace_emulator.faults.credits = 25  # the first batch of 20 fits, the second does not
    assert run("--consent", "--map", "company_name=name", "--batch-size", "20") == 2
    err = capsys.readouterr().err
    assert "427" in err and "out of credits" in err
    assert query(warehouse, "select count(*) from raw_leadspace.answers") == [(20,)]
    leadspace_emulator.faults.credits = None  # credits added: the rest is sent, not the 20
    first = len(sent_records(leadspace_emulator))
    assert run("--consent", "--map", "company_name=name", "--batch-size", "20") == 0
    resent = sent_records(leadspace_emulator)[first:]
    landed_before = {r["external_id"] for r in sent_records(leadspace_emulator)[:20]}
    assert resent and not landed_before & {r["external_id"] for r in resent}


def test_a_failed_record_is_kept_counted_and_sent_again(warehouse, leadspace_emulator, capsys):
    leadspace_emulator.faults.fail_external_ids = {"ACC-00003"}
    assert run("--consent", "--map", "company_name=name") == 0
    assert "failed 1," in capsys.readouterr().out
    assert query(warehouse, "select status, _error from raw_leadspace.answers "
                            "where external_id = 'ACC-00003'") == [
        ("failure", "1100: Internal Error")]
    leadspace_emulator.faults.fail_external_ids = set()
    first = len(posts(leadspace_emulator))
    assert run("--consent", "--map", "company_name=name") == 0
    new = posts(leadspace_emulator)[first:]
    assert [(r["path"], r["body"]["external_id"]) for r in new] == [(SINGLE, "ACC-00003")]


def test_interrupted_bulk_job_is_collected_not_paid_twice(warehouse, leadspace_emulator,
                                                          synthetic_org):
    leadspace_emulator.faults.processing_polls = 10_000
    client = LeadspaceClient(LeadspaceSettings(leadspace_emulator.url, KEY),
                             poll_interval=0.05, poll_timeout=0.3)
    with duckdb.connect(str(warehouse)) as con, pytest.raises(LoadFailed, match="still"):
        load(con, client, ["company_name=name"], consent=True, show_progress=False)
    assert query(warehouse, "select count(*) from raw_leadspace.bulk_jobs") == [(1,)]
    leadspace_emulator.faults.processing_polls = 0
    credits = leadspace_emulator.credits_used
    assert run("--consent", "--map", "company_name=name") == 0
    assert leadspace_emulator.credits_used == credits  # nothing sent again
    n = len(crm_accounts(synthetic_org))
    assert query(warehouse, "select count(distinct external_id), count(*) "
                            "from raw_leadspace.answers") == [(n, n)]
    assert query(warehouse, "select count(*) from raw_leadspace.bulk_jobs") == [(0,)]


# ---------------------------------------------------------------------------- segments
def test_segment_not_built_says_so(warehouse, leadspace_emulator, capsys):
    assert run("--consent", "--segment", "stale_accounts", "--map", "company_name=name") == 2
    assert "has not been built" in capsys.readouterr().err
    assert len(leadspace_emulator.requests) == 0


def test_segment_members_only(warehouse, leadspace_emulator):
    with duckdb.connect(str(warehouse)) as con:  # what dbt build writes
        con.execute('create table main.stale_accounts as select * from (values '
                    "('ACC-00005'), ('ACC-00007'), ('ACC-00011')) as t(\"AccountId\")")
    assert run("--consent", "--segment", "stale_accounts", "--map", "company_name=name") == 0
    assert sorted(r["external_id"] for r in sent_records(leadspace_emulator)) == [
        "ACC-00005", "ACC-00007", "ACC-00011"]
    assert query(warehouse, "select dataset, accounts_in_dataset from raw_leadspace.consents"
                 ) == [("segment stale_accounts", 3)]


# ---------------------------------------------------------------------------- removal, secrets
def test_remove_leadspace_deletes_answers_and_consents(warehouse, leadspace_emulator, capsys):
    assert run("--consent", *FULL_MAP) == 0
    assert main(["remove", "leadspace"]) == 0
    for table in ("answers", "consents", "bulk_jobs"):
        assert query(warehouse, f"select count(*) from raw_leadspace.{table}") == [(0,)]
    assert query(warehouse, "select count(*) from raw_loader.load_runs "
                            "where source = 'leadspace'") == [(0,)]
    assert query(warehouse, "select count(*) from raw_crm.accounts")[0][0] > 0  # CRM stays


def test_the_key_never_reaches_the_warehouse_or_output(warehouse, leadspace_emulator, capsys):
    assert run("--consent", *FULL_MAP) == 0
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err
    assert KEY.encode() not in warehouse.read_bytes()
    assert all("Authorization" not in str(r) for r in leadspace_emulator.requests)
