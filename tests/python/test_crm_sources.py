"""Every `crm_source` builds the same outputs as the CRM file it was written from.

The synthetic organisation of `make demo` (the session's `demo_build`, built with
`crm_source: file` from `raw_crm`) has its CRM written again as each CRM's own tables, created
directly in a copy of the warehouse as the syncs write them: Salesforce's `account` /
`contact` and HubSpot's `company` / `contact` (Fivetran's names, in schemas `salesforce` and
`hubspot`), Dataverse's `account` / `contact` (in `raw_dataverse`). Rows that must not count
are added to each: deleted (or, on Dataverse, deactivated) copies of real accounts that share
their website and of real contacts that share their address under another account, and on
Dataverse contacts whose parent is a contact; there, too, every third contact holds its
address in `emailaddress2` (another, unused address in `emailaddress1`). Were any of them
counted, an address would belong to two accounts and decide nothing, and a domain would be
shared: the outputs would change. `raw_crm` is dropped from the copy (the file source must not
be required) and so is every built model, then `dbt build --vars '{crm_source: X, as_of_date:
...}'`, the documented command, must build `office`, `stale_accounts` and
`office_user_entity` equal cell for cell to the file build, without a warning.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import DEMO_AS_OF
from engines import CLEAN_SUMMARY, ROOT, WARNING, differences

COMPARED = ("office", "stale_accounts", "office_user_entity")

# Each CRM's tables from raw_crm: (schema, [create table statements]). `accounts` and
# `contacts` are raw_crm's; the ids stay the file's, so that AccountId can be compared.
ACCOUNTS = "select * from raw_crm.accounts"
CONTACTS = "select * from raw_crm.contacts"
SYNCED = "timestamp '2026-03-14 06:00:00'"
# the first few accounts and contacts get a copy that must not count
COPIED = 4

SHAPES: dict[str, tuple[str, list[str]]] = {
    "salesforce": ("salesforce", [
        f"""create table salesforce.account as
            select account_id as id, name, website, city as billing_city,
                country as billing_country, false as is_deleted, {SYNCED} as _fivetran_synced
            from ({ACCOUNTS})
            union all
            select * from (
                select 'DEL-' || account_id, name || ' (deleted)', website, city, country,
                    true, {SYNCED}
                from ({ACCOUNTS}) where website is not null order by 1 limit {COPIED})""",
        f"""create table salesforce.contact as
            select contact_id as id, account_id, email, false as is_deleted,
                {SYNCED} as _fivetran_synced
            from ({CONTACTS})
            union all
            select * from (
                select 'DEL-' || contact_id, 'DEL-' || account_id, email, true, {SYNCED}
                from ({CONTACTS}) order by 1 limit {COPIED})""",
    ]),
    "hubspot": ("hubspot", [
        # the website where the file has one with a scheme, else only the domain: staging
        # takes the website, else the domain
        f"""create table hubspot.company as
            select account_id as id, name as property_name,
                case when website not like 'http%' then website end as property_domain,
                case when website like 'http%' then website end as property_website,
                city as property_city, country as property_country, false as is_deleted,
                {SYNCED} as _fivetran_synced
            from ({ACCOUNTS})
            union all
            select * from (
                select 'DEL-' || account_id, name, website, website, city, country, true,
                    {SYNCED}
                from ({ACCOUNTS}) where website is not null order by 1 limit {COPIED})""",
        f"""create table hubspot.contact as
            select contact_id as id, email as property_email,
                account_id as property_associatedcompanyid, false as _fivetran_deleted,
                {SYNCED} as _fivetran_synced
            from ({CONTACTS})
            union all
            select * from (
                select 'DEL-' || contact_id, email, 'DEL-' || account_id, true, {SYNCED}
                from ({CONTACTS}) order by 1 limit {COPIED})""",
    ]),
    "dataverse": ("raw_dataverse", [
        f"""create table raw_dataverse.account as
            select account_id as accountid, name, website as websiteurl,
                city as address1_city, country as address1_country, 0 as statecode
            from ({ACCOUNTS})
            union all
            select * from (
                select 'OFF-' || account_id, name, website, city, country, 1
                from ({ACCOUNTS}) where website is not null order by 1 limit {COPIED})""",
        f"""create table raw_dataverse.contact as
            with numbered as (
                select *, row_number() over (order by contact_id) as n from ({CONTACTS})
            )
            select contact_id as contactid,
                case when n % 3 = 0 then 'old.' || contact_id || '@nowhere.invalid'
                     else email end as emailaddress1,
                case when n % 3 = 0 then email end as emailaddress2,
                cast(null as varchar) as emailaddress3,
                account_id as parentcustomerid, 'account' as parentcustomeridtype,
                0 as statecode
            from numbered
            union all
            select 'OFF-' || contact_id, email, null, null, 'OFF-' || account_id, 'account', 1
            from numbered where n <= {COPIED}
            union all
            -- a contact whose parent is a contact: the id is a real account's, the type not
            select 'SUB-' || contact_id, email, null, null,
                (select max(account_id) from ({ACCOUNTS})), 'contact', 0
            from numbered where n > {COPIED} and n <= {2 * COPIED}""",
    ]),
}


def write_crm_as(warehouse: Path, crm: str) -> None:
    """The CRM of `raw_crm` as `crm`'s tables; raw_crm and every built model dropped."""
    schema, statements = SHAPES[crm]
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"create schema {schema}")
        for statement in statements:
            con.execute(statement)
        con.execute("drop schema raw_crm cascade")
        for name, kind in con.execute(
                "select table_name, table_type from information_schema.tables "
                "where table_schema = 'main'").fetchall():
            con.execute(f"drop {'view' if kind == 'VIEW' else 'table'} main.\"{name}\"")


def dbt_build(workdir: Path, warehouse: Path, crm: str) -> str:
    """The documented command, `dbt build --vars '{crm_source: X, as_of_date: ...}'`, in a
    process of its own; its output, which must hold no warning."""
    command = [str(Path(sys.executable).parent / "dbt"), "build", "--vars",
               f'{{crm_source: {crm}, as_of_date: "{DEMO_AS_OF}"}}']
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "DUCKDB_PATH": str(warehouse), "PARQUET_DIR": str(workdir / "parquet"),
             "DBT_TARGET_PATH": str(workdir / "target"), "DBT_LOG_PATH": str(workdir / "logs")})
    assert result.returncode == 0, f"{' '.join(command[1:])} exited {result.returncode}:\n" \
        + result.stdout[-6000:]
    warnings = [line for line in result.stdout.splitlines()
                if WARNING.search(line) and not CLEAN_SUMMARY.search(line)]
    assert not warnings, f"{' '.join(command[1:])} warned:\n" + "\n".join(warnings)
    return result.stdout


def leadspace_sends(org: Path, warehouse: Path) -> list[dict]:
    """`python -m loaders leadspace --consent` with the demo's map, against the Leadspace
    emulator, on a warehouse without raw_crm; the records it sent."""
    from devtools.emulators.leadspace import LeadspaceEmulator
    from loaders.cli import main

    with duckdb.connect(str(warehouse)) as con:  # answered before: would not be sent again
        con.execute("drop schema raw_leadspace cascade")
    key = "test-leadspace-key-0123456789"
    emulator = LeadspaceEmulator(org, key=key).start()
    saved = {name: os.environ.get(name)
             for name in ("DUCKDB_PATH", "LEADSPACE_API_URL", "LEADSPACE_TOKEN")}
    os.environ.update({"DUCKDB_PATH": str(warehouse), "LEADSPACE_API_URL": emulator.url,
                       "LEADSPACE_TOKEN": key})
    try:
        assert main(["leadspace", "--no-progress", "--consent", "--map", "company_name=name",
                     "--map", "website=website", "--map", "location=city"]) == 0
        bulk = [record for body in emulator.bodies("/enrichment/enrich/bulk")
                for record in body["data"]]
        return bulk + emulator.bodies("/enrichment/enrich/single")
    finally:
        emulator.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def read(warehouse: Path, sql: str) -> tuple[list[str], list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute(sql)
        return [column[0] for column in cursor.description], cursor.fetchall()


def output(warehouse: Path, name: str) -> tuple[list[str], list[tuple]]:
    """Every column of an output but `built_at` (when the build that wrote the row started)."""
    columns, rows = read(warehouse, f"select * from main.{name}")
    kept = [i for i, column in enumerate(columns) if column != "built_at"]
    return [columns[i] for i in kept], [tuple(row[i] for i in kept) for row in rows]


@pytest.mark.parametrize("crm", sorted(SHAPES))
def test_each_crm_source_builds_the_outputs_of_the_file(crm: str, demo_build: Path,
                                                        tmp_path: Path) -> None:
    file_build = demo_build / "warehouse.duckdb"
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(file_build, warehouse)
    write_crm_as(warehouse, crm)

    output_text = dbt_build(tmp_path, warehouse, crm)
    assert "stg_crm__file_" not in output_text  # only the chosen CRM's staging models ran

    # the rows that must not count were there, and were left out
    schema = SHAPES[crm][0]
    account_table = "company" if crm == "hubspot" else "account"
    landed = read(warehouse, f"select count(*) from {schema}.{account_table}")[1][0][0]
    staged = read(warehouse, "select count(*) from main.stg_crm__accounts")[1][0][0]
    file_accounts = read(file_build, "select count(*) from raw_crm.accounts")[1][0][0]
    assert (landed, staged) == (file_accounts + COPIED, file_accounts)
    file_rows = read(file_build, "select contact_id, account_id, email_address "
                                 "from main.stg_crm__contacts order by all")[1]
    crm_rows = read(warehouse, "select contact_id, account_id, email_address "
                               "from main.stg_crm__contacts order by all")[1]
    if crm == "dataverse":
        # every third contact also holds its old address in emailaddress1
        crm_rows = [row for row in crm_rows if not row[2].endswith("@nowhere.invalid")]
    assert crm_rows == file_rows

    if crm == "dataverse":
        # the Leadspace loader reads the accounts dbt staged (crm_accounts): the active ones,
        # under the file's names
        sent = leadspace_sends(demo_build / "org", warehouse)
        names = read(file_build, "select trim(name) from raw_crm.accounts "
                     "where trim(name) <> '' order by 1")[1]
        assert sorted((r["company"]["name"],) for r in sent) == names

    for name in COMPARED:
        file_table, crm_table = output(file_build, name), output(warehouse, name)
        assert file_table[1], f"{name} is empty in the file build: the test tests nothing"
        found = differences(file_table, crm_table)
        assert not found, (f"{name}: crm_source {crm} differs from the file build in "
                           f"{len(found)} cells, e.g. {found[:3]}")
