"""`python -m loaders export --target postgres`, run as users run it (a subprocess with the
POSTGRES_* settings), against a throwaway PostgreSQL server (the `postgres_server` fixture).

The warehouse is landed by the loaders themselves (CRM snapshot and Graph, from the small
synthetic organisation through the emulator), plus a Leadspace answer and consent, and a raw
table of every column type the export maps (`raw_extra.types`: an extra raw schema, which the
export must find on its own). Every table is compared with its copy cell for cell.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from devtools.emulators.graph import GraphEmulator
from loaders.cli import main

psycopg2 = pytest.importorskip("psycopg2", reason="the postgres extra is not installed")

import postgres_server  # noqa: E402
from postgres_server import PostgresUnavailable, find_bindir, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-03-15"

TYPES_TABLE = """
create table raw_extra.types as select * from (values
    ('a', 1, 10::bigint, 1.5::double, 12.345::decimal(18,3),
     hugeint '123456789012345678901234567890', true, date '2026-01-02',
     timestamp '2026-01-01 01:02:03.456789',
     timestamptz '2026-01-01 10:00:00+02', uuid 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     interval '1 day 2 hours', '\\xAA\\x00a'::blob,
     [{'emailAddress': {'name': 'Dupont, "Jo"', 'address': 'jo@acme.example'}}],
     {'k': null, 'n': 1}, map {'a': 1}, '{"z": [1, 2]}'::json, ['x', null]),
    ('', null, null, 'nan'::double, null, null, false, null, null, null, null, null, ''::blob,
     [], null, null, 'null'::json, []),
    (null, -3, -10::bigint, '-inf'::double, -0.5::decimal(18,3), null, null, null, null, null,
     null, null, null, null, {'k': 'v', 'n': null}, map {}, null, null),
    (e'quote " comma , newline \n backslash \\ unicode é ✓', 0, 0::bigint, -0.0::double,
     0::decimal(18,3), 0::hugeint, null, date '1970-01-01', timestamp '1970-01-01',
     timestamptz '1970-01-01 00:00:00+00', null, interval '0 seconds', null,
     [{'emailAddress': {'name': null, 'address': null}}], {'k': '', 'n': 0}, null,
     '[]'::json, [''])
) v(s, i, b, d, dec, h, bo, dt, ts, tz, u, iv, bl, recipients, st, m, j, l)
"""
TYPES_PG = {
    "s": "text", "i": "integer", "b": "bigint", "d": "double precision",
    "dec": "numeric(18,3)", "h": "numeric", "bo": "boolean", "dt": "date",
    "ts": "timestamp without time zone", "tz": "timestamp with time zone", "u": "uuid",
    "iv": "interval", "bl": "bytea", "recipients": "jsonb", "st": "jsonb", "m": "jsonb",
    "j": "jsonb", "l": "jsonb",
}


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def landed(synthetic_org: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse the loaders landed (read-only: tests work on a copy, `warehouse`)."""
    path = tmp_path_factory.mktemp("export_landed") / "landed.duckdb"
    emulator = GraphEmulator(synthetic_org).start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DUCKDB_PATH", str(path))
            for name, value in emulator.environment().items():  # GRAPH_*, REQUESTS_CA_BUNDLE
                mp.setenv(name, value)
            assert main(["crm", "--accounts", str(synthetic_org / "crm" / "accounts.csv"),
                         "--contacts", str(synthetic_org / "crm" / "contacts.csv")]) == 0
            assert main(["graph", "--group", "sales@contoso.com", "--as-of", AS_OF,
                         "--no-progress"]) == 0
    finally:
        emulator.stop()
    with duckdb.connect(str(path)) as con:
        con.execute("""
            insert into raw_leadspace.answers by name
            select 'success' as status, account_id as external_id,
                   'ENRICHED' as enrichment_status,
                   {'ls_id': 'ls-' || account_id, 'ug_company_id': null, 'name': name,
                    'website': website, 'industry': 'Software', 'sub_industry': null,
                    'sic': '7372', 'naics': null,
                    'employees': {'exact': 120.0, 'range': '100-250'},
                    'revenue_dollar': null,
                    'address': {'country': 'US', 'state': null, 'city': city, 'region': null,
                                'address': null, 'zipcode': null},
                    'matching_confidence': {'level': 'HIGH'}} as company,
                   '{"status": "success"}' as _answer, ['company_name', 'website']
                       as _sent_fields,
                   'req-1' as _request_id, 'run-1' as _run_id, now()::timestamp as _loaded_at
            from raw_crm.accounts order by account_id limit 5""")
        con.execute("""
            insert into raw_leadspace.consents values
            ('run-1', now()::timestamp, ['company_name', 'website'], ['name', 'website'],
             'all accounts', 40, 'http://127.0.0.1:1')""")
        con.execute("create schema raw_extra")
        con.execute(TYPES_TABLE)
        con.execute("checkpoint")
    return path


@pytest.fixture
def warehouse(landed: Path, tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(landed, path)
    return path


@pytest.fixture
def pg(postgres_server, request) -> dict[str, str]:
    """The POSTGRES_* settings of a fresh database of this test's own."""
    name = "export_" + uuid.uuid4().hex[:10]
    postgres_server.create_database(name)
    return {**postgres_server.env(), "POSTGRES_DB": name}


# ---------------------------------------------------------------------------- helpers
def export(warehouse: Path, settings: dict[str, str], *extra: str,
           target: str = "postgres") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "PG"))}
    env.update(settings)
    env["DUCKDB_PATH"] = str(warehouse)
    return subprocess.run(
        [sys.executable, "-m", "loaders", "export", "--target", target, "--no-progress", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def connect(settings: dict[str, str]):
    return psycopg2.connect(host=settings["POSTGRES_HOST"], port=settings["POSTGRES_PORT"],
                            user=settings["POSTGRES_USER"],
                            password=settings["POSTGRES_PASSWORD"],
                            dbname=settings["POSTGRES_DB"])


def pg_query(settings: dict[str, str], sql: str, params=None) -> list[tuple]:
    con = connect(settings)
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        con.close()


def duck_query(path: Path, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def raw_tables(path: Path) -> list[str]:
    return [f"{s}.{t}" for s, t in duck_query(path, """
        select table_schema, table_name from information_schema.tables
        where starts_with(table_schema, 'raw_') and table_type = 'BASE TABLE'
        order by all""")]


def norm(value):
    """One cell, comparable across the two engines."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def duck_rows(path: Path, table: str) -> Counter:
    schema, name = table.split(".")
    columns = duck_query(path, """
        select column_name, data_type from information_schema.columns
        where table_schema = ? and table_name = ? order by ordinal_position""", [schema, name])
    nested = [t.endswith("]") or t.startswith(("STRUCT", "MAP", "JSON")) for _, t in columns]
    select = ", ".join(
        f'to_json("{c}")::varchar' if is_nested else f'"{c}"'
        for (c, _), is_nested in zip(columns, nested, strict=True)
    )
    rows = duck_query(path, f"select {select} from {table}")
    return Counter(
        tuple(norm(json.loads(v) if is_nested and v is not None else v)
              for v, is_nested in zip(row, nested, strict=True))
        for row in rows
    )


def pg_rows(settings: dict[str, str], table: str) -> Counter:
    rows = pg_query(settings, f"select * from {table}")
    return Counter(tuple(norm(v) for v in row) for row in rows)


def checksums(settings: dict[str, str], tables: list[str]) -> dict[str, tuple]:
    """Per table: rows and an md5 of the rows in a fixed order."""
    return {
        table: pg_query(settings, f"""
            select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), ''))
            from {table} t""")[0]
        for table in tables
    }


def assert_one_sentence(result: subprocess.CompletedProcess, status: int = 2) -> str:
    assert result.returncode == status, (result.stdout, result.stderr)
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return message


# ---------------------------------------------------------------------------- (a) copy
def test_export_copies_every_raw_table_cell_for_cell(warehouse, pg):
    result = export(warehouse, pg)
    assert result.returncode == 0, result.stderr
    tables = raw_tables(warehouse)
    assert {"raw_crm.accounts", "raw_graph.messages", "raw_graph.events",
            "raw_leadspace.answers", "raw_loader.load_runs", "raw_extra.types"} <= set(tables)
    copied = pg_query(pg, """select table_schema || '.' || table_name
                             from information_schema.tables
                             where table_schema like 'raw\\_%' order by 1""")
    assert [t for (t,) in copied] == tables
    for table in tables:
        rows = duck_query(warehouse, f"select count(*) from {table}")[0][0]
        assert f"{table}: {rows:,} row" in result.stdout
        assert pg_rows(pg, table) == duck_rows(warehouse, table), table
    assert duck_query(warehouse, "select count(*) from raw_graph.messages")[0][0] > 100

    # a nested recipients list read back through jsonb, field names kept
    mailbox, message_id, address, name = duck_query(warehouse, """
        select _mailbox_id, id, "toRecipients"[1].emailAddress.address,
               "from".emailAddress.name
        from raw_graph.messages where len("toRecipients") > 0 order by id limit 1""")[0]
    assert pg_query(pg, """
        select "toRecipients"->0->'emailAddress'->>'address', "from"->'emailAddress'->>'name',
               jsonb_typeof("toRecipients"), "ccRecipients" is null
        from raw_graph.messages where _mailbox_id = %s and id = %s""",
        [mailbox, message_id])[0][:3] == (address, name, "array")
    assert pg_query(pg, """select company->'employees'->>'range', company->'revenue_dollar'
                           from raw_leadspace.answers limit 1""") == [("100-250", None)]

    assert dict(pg_query(pg, """
        select attname, format_type(atttypid, atttypmod) from pg_attribute
        where attrelid = 'raw_extra.types'::regclass and attnum > 0""")) == TYPES_PG
    assert pg_query(pg, """
        select count(*) filter (where s = ''), count(*) filter (where s is null),
               count(*) filter (where st is null), count(*) filter (where j = 'null'::jsonb),
               max(recipients->0->'emailAddress'->>'name')
        from raw_extra.types""") == [(1, 1, 1, 1, 'Dupont, "Jo"')]
    column_types = dict(pg_query(pg, """
        select column_name, data_type from information_schema.columns
        where table_schema = 'raw_graph' and table_name = 'messages'"""))
    assert column_types["toRecipients"] == "jsonb"
    assert column_types["isDraft"] == "boolean"
    assert column_types["_loaded_at"] == "timestamp without time zone"
    assert column_types["id"] == "text"


# ---------------------------------------------------------------------------- (b) idempotent
def test_exporting_twice_gives_identical_tables_and_keeps_views_on_them(warehouse, pg):
    tables = raw_tables(warehouse)
    assert export(warehouse, pg).returncode == 0
    first = checksums(pg, tables)
    # a view on a raw table (as dbt's staging views are) survives the next export
    con = connect(pg)
    with con, con.cursor() as cur:
        cur.execute("create schema main")
        cur.execute("create view main.message_ids as select _mailbox_id, id "
                    "from raw_graph.messages")
    con.close()

    second_run = export(warehouse, pg)
    assert second_run.returncode == 0, second_run.stderr
    assert checksums(pg, tables) == first
    assert "recreated" not in second_run.stdout
    for table in tables:
        assert first[table][0] == duck_query(warehouse, f"select count(*) from {table}")[0][0]
    assert pg_query(pg, """select count(*), count(distinct (_mailbox_id, id))
                           from raw_graph.messages""") == [(first["raw_graph.messages"][0],) * 2]
    assert pg_query(pg, "select count(*) from main.message_ids") == [
        (first["raw_graph.messages"][0],)]


# ---------------------------------------------------------------------------- (c) replace
def test_export_replaces_the_previous_copy(warehouse, pg):
    assert export(warehouse, pg).returncode == 0
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from raw_graph.messages where hash(id) % 2 = 0")
        con.execute("delete from raw_crm.contacts")
        con.execute("alter table raw_extra.types add column added varchar default 'new'")
    result = export(warehouse, pg)
    assert result.returncode == 0, result.stderr
    for table in raw_tables(warehouse):
        assert pg_rows(pg, table) == duck_rows(warehouse, table), table
    assert pg_query(pg, "select count(*) from raw_crm.contacts") == [(0,)]
    assert "raw_extra.types: its columns changed, so it was recreated" in result.stdout
    assert pg_query(pg, "select distinct added from raw_extra.types") == [("new",)]


def test_a_failed_export_changes_nothing(warehouse, pg):
    assert export(warehouse, pg).returncode == 0
    before = checksums(pg, raw_tables(warehouse))
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from raw_graph.messages")
        # Postgres' text cannot hold a NUL character: this last table fails the copy
        con.execute("create schema raw_zz")
        con.execute("create table raw_zz.bad as select 'a' || chr(0) || 'b' as s")
    result = export(warehouse, pg)
    message = assert_one_sentence(result, status=1)
    assert "raw_zz.bad" in message and "nothing was changed in Postgres" in message
    assert checksums(pg, list(before)) == before
    assert pg_query(pg, "select to_regclass('raw_zz.bad') is null") == [(True,)]


# ---------------------------------------------------------------------------- errors
def test_a_closed_port_is_one_sentence_naming_the_address(warehouse, pg):
    port = free_port()
    message = assert_one_sentence(export(warehouse, {**pg, "POSTGRES_PORT": str(port)}))
    assert f"127.0.0.1:{port}" in message
    assert "POSTGRES_HOST" in message and "POSTGRES_PORT" in message


def test_a_wrong_password_is_one_sentence_without_the_password(warehouse, pg):
    wrong = "wrong-password-8c1f"
    result = export(warehouse, {**pg, "POSTGRES_PASSWORD": wrong})
    message = assert_one_sentence(result)
    assert "refused the login" in message and "POSTGRES_PASSWORD" in message
    assert wrong not in result.stdout + result.stderr
    assert pg["POSTGRES_PASSWORD"] not in result.stdout + result.stderr


def test_missing_settings_are_one_sentence(warehouse, pg):
    without_user = {k: v for k, v in pg.items() if k != "POSTGRES_USER"}
    assert "POSTGRES_USER" in assert_one_sentence(export(warehouse, without_user))
    without_db = {k: v for k, v in pg.items() if k != "POSTGRES_DB"}
    assert "POSTGRES_DB" in assert_one_sentence(export(warehouse, without_db))


def test_a_missing_or_locked_warehouse_is_one_sentence(warehouse, pg, tmp_path):
    missing = assert_one_sentence(export(tmp_path / "none.duckdb", pg))
    assert "no warehouse" in missing and "DUCKDB_PATH" in missing
    with duckdb.connect(str(warehouse)):  # a writer (a load, dbt) holds the file
        locked = assert_one_sentence(export(warehouse, pg))
    assert "open in another process" in locked
    assert pg_query(pg, "select count(*) from information_schema.tables "
                        "where table_schema like 'raw\\_%'") == [(0,)]


def test_the_harness_says_why_when_there_is_no_server(monkeypatch, tmp_path):
    monkeypatch.setattr(postgres_server, "DEFAULT_BINDIRS", (str(tmp_path),))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PostgresUnavailable, match="no PostgreSQL server binaries"):
        find_bindir()
