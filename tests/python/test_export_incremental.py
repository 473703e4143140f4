"""`python -m loaders export` copies only what changed since the previous export (messages and
events) and gives the same copy as a whole export: on PostgreSQL (the `postgres_server`
fixture) and on Spark (the `spark_server` fixture, the Parquet folders read with DuckDB).

One warehouse landed by the loaders (CRM snapshot, Graph through the emulator) goes through a
day of changes written into the raw tables as the Graph writer writes them (new copies, new
versions of copies: a message moved to another folder, an occurrence moved to another month,
copies flagged removed, each stamped with the time of its landing), a new CRM snapshot landed
by `python -m loaders crm`, a copy deleted by hand (no new version: the export must notice and
copy the table whole), `remove graph` followed by a new Graph load, and `remove graph` alone.
After each step the target exported after every step (incrementally) must equal, table for
table and row for row, a target exported whole (`--full`) from the same warehouse.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from devtools.emulators.graph import GraphEmulator
from loaders.cli import main
from loaders.export import spark_parts as export_spark_parts
from loaders.warehouse import utc_now

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-03-15"
TRACKED = ("raw_graph.events", "raw_graph.messages")
INCREMENTAL = "changes since the last export"
UNCHANGED = "unchanged since the last export"


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def landed(synthetic_org: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse the loaders landed (tests work on a copy, `warehouse`)."""
    path = tmp_path_factory.mktemp("incremental_landed") / "landed.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DUCKDB_PATH", str(path))
        assert main(["crm", "--accounts", str(synthetic_org / "crm" / "accounts.csv"),
                     "--contacts", str(synthetic_org / "crm" / "contacts.csv")]) == 0
        land_graph(synthetic_org, mp)
    return path


@pytest.fixture
def warehouse(landed: Path, tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(landed, path)
    return path


def land_graph(synthetic_org: Path, mp: pytest.MonkeyPatch) -> None:
    emulator = GraphEmulator(synthetic_org).start()
    try:
        for name, value in emulator.environment().items():  # GRAPH_*, REQUESTS_CA_BUNDLE
            mp.setenv(name, value)
        assert main(["graph", "--group", "sales@contoso.com", "--as-of", AS_OF,
                     "--no-progress"]) == 0
    finally:
        emulator.stop()


# ---------------------------------------------------------------------------- the steps
def one_day_of_changes(path: Path) -> dict[str, int]:
    """New copies, new versions and removed flags, as the Graph writer lands them (delete the
    stored version, insert the new one, or flag it; every row touched stamped now); the rows
    of the keys touched, per table."""
    now = utc_now()
    with duckdb.connect(str(path)) as con:
        con.execute("""create temp table picked as
            select _mailbox_id, id, row_number() over (order by hash(_mailbox_id, id)) as n
            from raw_graph.messages where not _removed""")
        assert con.execute("select count(*) from picked").fetchone()[0] >= 15
        con.execute("""insert into raw_graph.messages
            select * replace (id || '-new' as id, ? as _loaded_at) from raw_graph.messages m
            where exists (select 1 from picked p where p._mailbox_id = m._mailbox_id
                          and p.id = m.id and p.n <= 5)""", [now])
        con.execute("""create temp table moved as
            select * replace ('folder-elsewhere' as "parentFolderId",
                              'folder-elsewhere' as _folder_id, ? as _loaded_at)
            from raw_graph.messages m
            where exists (select 1 from picked p where p._mailbox_id = m._mailbox_id
                          and p.id = m.id and p.n between 6 and 10)""", [now])
        con.execute("""delete from raw_graph.messages m using moved v
            where m._mailbox_id = v._mailbox_id and m.id = v.id""")
        con.execute("insert into raw_graph.messages select * from moved")
        con.execute("""update raw_graph.messages m set _removed = true, _loaded_at = ?
            from picked p where p._mailbox_id = m._mailbox_id and p.id = m.id
              and p.n between 11 and 15""", [now])

        con.execute("""create temp table picked_events as
            select _mailbox_id, id, row_number() over (order by hash(_mailbox_id, id)) as n
            from raw_graph.events
            where not _removed and try_cast("start"."dateTime" as timestamp) is not null""")
        assert con.execute("select count(*) from picked_events").fetchone()[0] >= 3
        con.execute("""insert into raw_graph.events
            select * replace (id || '-new' as id, ? as _loaded_at) from raw_graph.events e
            where exists (select 1 from picked_events p where p._mailbox_id = e._mailbox_id
                          and p.id = e.id and p.n = 1)""", [now])
        # rescheduled 40 days later: another month, so another Spark file
        con.execute("""create temp table rescheduled as
            select * replace (struct_pack(
                "dateTime" := strftime(try_cast("start"."dateTime" as timestamp)
                                       + interval 40 day, '%Y-%m-%dT%H:%M:%S.0000000'),
                "timeZone" := "start"."timeZone") as "start",
                md5(id || 'rescheduled') as _record_hash, ? as _loaded_at)
            from raw_graph.events e
            where exists (select 1 from picked_events p where p._mailbox_id = e._mailbox_id
                          and p.id = e.id and p.n = 2)""", [now])
        con.execute("""delete from raw_graph.events e using rescheduled r
            where e._mailbox_id = r._mailbox_id and e.id = r.id""")
        con.execute("insert into raw_graph.events select * from rescheduled")
        con.execute("""update raw_graph.events e set _removed = true, _loaded_at = ?
            from picked_events p where p._mailbox_id = e._mailbox_id and p.id = e.id
              and p.n = 3""", [now])
        return {table: con.execute(f"select count(*) from {table} where _loaded_at = ?",
                                   [now]).fetchone()[0] for table in TRACKED}


def new_crm_snapshot(path: Path, synthetic_org: Path, tmp_path: Path) -> None:
    """The CRM file again, one account renamed and the last one gone, landed by the loader."""
    with (synthetic_org / "crm" / "accounts.csv").open(newline="") as source:
        rows = list(csv.DictReader(source))
    rows[0]["name"] = rows[0]["name"] + " (renamed)"
    accounts = tmp_path / "accounts_next.csv"
    with accounts.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[:-1])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DUCKDB_PATH", str(path))
        assert main(["crm", "--accounts", str(accounts),
                     "--contacts", str(synthetic_org / "crm" / "contacts.csv")]) == 0


def delete_by_hand(path: Path) -> None:
    """A copy deleted without a new version (no loader does it; a user's `delete` would)."""
    with duckdb.connect(str(path)) as con:
        con.execute("""delete from raw_graph.messages where _mailbox_id || '/' || id = (
            select _mailbox_id || '/' || id from raw_graph.messages where not _removed
            order by id limit 1)""")


def remove_graph(path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DUCKDB_PATH", str(path))
        assert main(["remove", "graph"]) == 0


def count(path: Path, table: str) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"select count(*) from {table}").fetchone()[0]


def modes(stdout: str, verb: str) -> dict[str, tuple[int, str]]:
    """Each table's line of the export's summary: rows copied (written) and how."""
    found = {}
    for line in stdout.splitlines():
        if f" {verb} (" in line and ": " in line:
            table, rest = line.split(": ", 1)
            rows, how = rest.split(f" {verb} (", 1)
            found[table] = (int(rows.split()[0].replace(",", "")), how.rstrip(")"))
    return found


def run_steps(warehouse: Path, synthetic_org: Path, tmp_path: Path,
              export_both: Callable[[str], dict[str, tuple[int, str]]]) -> None:
    """The steps; after each, `export_both(step)` exports incrementally and whole, compares
    the two targets, and returns the incremental export's summary."""
    first = export_both("first export")
    assert first["raw_graph.messages"][1].startswith("whole: first export")

    touched = one_day_of_changes(warehouse)
    summary = export_both("a day of changes")
    for table in TRACKED:
        assert summary[table][1].startswith(INCREMENTAL), (table, summary[table])
    on_spark = "files rewritten" in summary["raw_graph.messages"][1]
    if not on_spark:  # Postgres: rows copied
        assert {t: summary[t][0] for t in TRACKED} == touched
    # a table without a change: copied whole to Postgres, left as it is on Spark
    assert summary["raw_crm.accounts"] == ((0, UNCHANGED) if on_spark else (
        count(warehouse, "raw_crm.accounts"), "whole"))

    new_crm_snapshot(warehouse, synthetic_org, tmp_path)
    summary = export_both("a new CRM snapshot")
    assert summary["raw_crm.accounts"] == (count(warehouse, "raw_crm.accounts"), "whole")
    assert summary["raw_graph.messages"][0] == 0
    assert summary["raw_graph.messages"][1].startswith(UNCHANGED if on_spark else INCREMENTAL)

    delete_by_hand(warehouse)
    export_both("a copy deleted by hand")

    remove_graph(warehouse)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DUCKDB_PATH", str(warehouse))
        land_graph(synthetic_org, mp)
    summary = export_both("remove graph, then a Graph load")
    assert summary["raw_graph.messages"][1].startswith("whole: replaced since the last export")

    remove_graph(warehouse)
    summary = export_both("remove graph")
    assert summary["raw_graph.messages"] == (0, "whole: empty before or now")


# ---------------------------------------------------------------------------- Postgres
def pg_export(warehouse: Path, settings: dict[str, str], *extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "PG"))}
    env.update(settings, DUCKDB_PATH=str(warehouse))
    result = subprocess.run(
        [sys.executable, "-m", "loaders", "export", "--target", "postgres", "--no-progress",
         *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def pg_tables(server, database: str) -> dict[str, tuple]:
    """Every raw table: its rows and an md5 of them in a fixed order."""
    with server.connect(database) as con, con.cursor() as cur:
        cur.execute("""select table_schema || '.' || table_name from information_schema.tables
                       where table_schema like 'raw\\_%' order by 1""")
        tables = [name for (name,) in cur.fetchall()]
        found = {}
        for table in tables:
            cur.execute(f"""select count(*), md5(coalesce(string_agg(t::text, '|'
                            order by t::text), '')) from {table} t""")
            found[table] = cur.fetchone()
        return found


def test_incremental_export_to_postgres_equals_a_full_one(
        warehouse: Path, synthetic_org: Path, tmp_path: Path, postgres_server) -> None:
    databases = {kind: postgres_server.create_database(f"{kind}_{uuid.uuid4().hex[:8]}")
                 for kind in ("incremental", "full")}
    settings = {kind: {**postgres_server.env(), "POSTGRES_DB": name}
                for kind, name in databases.items()}

    def export_both(step: str) -> dict[str, tuple[int, str]]:
        summary = modes(pg_export(warehouse, settings["incremental"]), "copied")
        pg_export(warehouse, settings["full"], "--full")
        incremental = pg_tables(postgres_server, databases["incremental"])
        full = pg_tables(postgres_server, databases["full"])
        assert incremental == full, f"after {step}"
        assert incremental["raw_graph.messages"][0] == count(warehouse, "raw_graph.messages")
        return summary

    run_steps(warehouse, synthetic_org, tmp_path, export_both)


def test_a_copy_deleted_by_hand_makes_the_postgres_copy_whole(
        warehouse: Path, postgres_server) -> None:
    settings = {**postgres_server.env(),
                "POSTGRES_DB": postgres_server.create_database(f"h_{uuid.uuid4().hex[:8]}")}
    pg_export(warehouse, settings)
    delete_by_hand(warehouse)
    summary = modes(pg_export(warehouse, settings), "copied")
    assert summary["raw_graph.messages"] == (
        count(warehouse, "raw_graph.messages"),
        "whole: rows left the warehouse without a new version since the last export")
    assert summary["raw_graph.events"] == (0, INCREMENTAL)


# ---------------------------------------------------------------------------- Spark
def parquet_differences(left: Path, right: Path) -> int:
    """Rows in one folder's Parquet files and not in the other's (as multisets)."""
    with duckdb.connect() as con:
        a, b = (f"read_parquet('{folder}/*.parquet')" for folder in (left, right))
        return con.execute(f"""select count(*) from (
            (select * from {a} except all select * from {b})
            union all (select * from {b} except all select * from {a}))""").fetchone()[0]


def inodes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in folder.glob("*.parquet")}


def test_incremental_export_to_spark_equals_a_full_one(
        warehouse: Path, synthetic_org: Path, tmp_path: Path, spark_server,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # events cut by day, messages by month (the real threshold is a million rows)
    threshold = count(warehouse, "raw_graph.messages") + 1
    assert count(warehouse, "raw_graph.events") >= threshold
    monkeypatch.setattr(export_spark_parts, "DAY_FILES_FROM_ROWS", threshold)
    roots = {kind: tmp_path / f"raw_{kind}" for kind in ("full", "incremental")}
    monkeypatch.setenv("DUCKDB_PATH", str(warehouse))
    for name, value in spark_server.env().items():
        monkeypatch.setenv(name, value)

    def export(kind: str, *extra: str) -> str:
        monkeypatch.setenv("SPARK_RAW_PATH", str(roots[kind]))
        capsys.readouterr()
        assert main(["export", "--target", "spark", "--no-progress", *extra]) == 0
        return capsys.readouterr().out

    def export_both(step: str) -> dict[str, tuple[int, str]]:
        export("full", "--full")
        events = roots["incremental"] / "raw_graph" / "events"
        before = inodes(events)
        summary = modes(export("incremental"), "written")  # Spark now reads this one
        tables = sorted(f"{schema.name}.{folder.name}" for schema in roots["full"].iterdir()
                        for folder in schema.iterdir() if not folder.name.startswith("."))
        assert tables == sorted(f"{s.name}.{f.name}" for s in roots["incremental"].iterdir()
                                for f in s.iterdir() if not f.name.startswith("."))
        for table in tables:
            folders = [root / Path(*table.split(".")) for root in roots.values()]
            assert parquet_differences(*folders) == 0, f"{table} after {step}"
        rows = count(warehouse, "raw_graph.messages")
        assert spark_server.query("select count(*) from raw_graph.messages") == [(rows,)]
        if summary["raw_graph.events"][1].startswith(INCREMENTAL):
            # the files of the days without changes are the same files (linked)
            rewritten = {name for name, inode in inodes(events).items()
                         if before.get(name) != inode}
            assert summary["raw_graph.events"][1] == (
                f"{INCREMENTAL}: {len(rewritten):,} of {len(inodes(events)):,} day files "
                "rewritten"), step
            assert len(rewritten) < len(before) / 4, step
        return summary

    run_steps(warehouse, synthetic_org, tmp_path, export_both)
    # no rows left: one empty file, whose columns Spark reads
    messages = roots["incremental"] / "raw_graph" / "messages"
    assert sorted(p.name for p in messages.iterdir()) == [
        "_export_state.json", "part-0.parquet"]
