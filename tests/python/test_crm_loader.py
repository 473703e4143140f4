"""`python -m loaders crm`: required columns, atomic replacement, CSV and Parquet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from loaders.cli import main

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "w.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(path))
    return path


@pytest.fixture
def crm_files(tmp_path) -> tuple[Path, Path]:
    accounts = write(
        tmp_path / "accounts.csv",
        "Account_ID,Name,Website,Segment\nA1,Acme, https://www.acme.co.uk/x ,gold\nA2,Globex,,\n",
    )
    contacts = write(
        tmp_path / "contacts.csv",
        "contact_id,account_id,email\nC1,A1, Ann@Acme.co.uk \nC2,A2,bob@globex.com\n",
    )
    return accounts, contacts


def rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_lands_every_column_as_text_with_names_lowered(warehouse, crm_files, capsys):
    assert main(["crm", "--accounts", str(crm_files[0]), "--contacts", str(crm_files[1])]) == 0
    assert "landed 2 accounts and 2 contacts" in capsys.readouterr().out
    assert rows(warehouse, "select account_id, name, website, segment, city from raw_crm.accounts "
                "order by 1") == [
        ("A1", "Acme", "https://www.acme.co.uk/x", "gold", None),
        ("A2", "Globex", None, None, None),
    ]
    assert rows(warehouse, "select email from raw_crm.contacts order by 1") == [
        ("Ann@Acme.co.uk",), ("bob@globex.com",)
    ]


def test_new_snapshot_replaces_the_old(warehouse, crm_files, tmp_path):
    main(["crm", "--accounts", str(crm_files[0]), "--contacts", str(crm_files[1])])
    accounts = write(tmp_path / "a2.csv", "account_id,name\nA9,Initech\n")
    contacts = write(tmp_path / "c2.csv", "contact_id,account_id,email\nC9,A9,x@initech.de\n")
    assert main(["crm", "--accounts", str(accounts), "--contacts", str(contacts)]) == 0
    assert rows(warehouse, "select account_id from raw_crm.accounts") == [("A9",)]
    assert rows(warehouse, "select contact_id from raw_crm.contacts") == [("C9",)]


def test_missing_column_is_refused_and_nothing_changes(warehouse, crm_files, tmp_path, capsys):
    main(["crm", "--accounts", str(crm_files[0]), "--contacts", str(crm_files[1])])
    bad = write(tmp_path / "bad.csv", "id,name\nA1,Acme\n")
    assert main(["crm", "--accounts", str(bad), "--contacts", str(crm_files[1])]) == 2
    err = capsys.readouterr().err
    assert "need the column account_id" in err and "the file has id, name" in err
    assert rows(warehouse, "select count(*) from raw_crm.accounts") == [(2,)]


def test_custom_email_column_is_checked_and_exposed_as_email(warehouse, crm_files, tmp_path,
                                                             capsys):
    contacts = write(tmp_path / "c.csv", "contact_id,account_id,work_email\nC1,A1,a@acme.co.uk\n")
    assert main(["crm", "--accounts", str(crm_files[0]), "--contacts", str(contacts)]) == 2
    assert "need the column email" in capsys.readouterr().err
    assert main(["crm", "--accounts", str(crm_files[0]), "--contacts", str(contacts),
                 "--email-column", "work_email"]) == 0
    assert rows(warehouse, "select email, work_email from raw_crm.contacts") == [
        ("a@acme.co.uk", "a@acme.co.uk")
    ]


def test_parquet_input(warehouse, crm_files, tmp_path):
    parquet = tmp_path / "accounts.parquet"
    with duckdb.connect() as con:
        con.execute(
            f"copy (select 7 as account_id, 'Umbrella' as name) to '{parquet}' (format parquet)"
        )
    assert main(["crm", "--accounts", str(parquet), "--contacts", str(crm_files[1])]) == 0
    assert rows(warehouse, "select account_id, name from raw_crm.accounts") == [("7", "Umbrella")]


def test_unknown_format_and_missing_file(warehouse, crm_files, tmp_path, capsys):
    xlsx = write(tmp_path / "a.xlsx", "not a spreadsheet")
    assert main(["crm", "--accounts", str(xlsx), "--contacts", str(crm_files[1])]) == 2
    assert "use a .csv or .parquet file" in capsys.readouterr().err
    assert main(["crm", "--accounts", str(tmp_path / "nope.csv"),
                 "--contacts", str(crm_files[1])]) == 2
    assert "no such file" in capsys.readouterr().err


def test_locked_warehouse_says_so_and_exits_2(warehouse, crm_files):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True);"
         " time.sleep(60)", str(warehouse)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = subprocess.run(
            [sys.executable, "-m", "loaders", "crm", "--accounts", str(crm_files[0]),
             "--contacts", str(crm_files[1])],
            cwd=ROOT, env={**os.environ, "DUCKDB_PATH": str(warehouse)},
            capture_output=True, text=True, timeout=60,
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2, result.stderr
    assert f"is open in another process (process {holder.pid})" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failed_compaction_keeps_the_load_and_says_so(warehouse, crm_files, monkeypatch,
                                                        capsys):
    def full_disk(con):
        raise duckdb.IOException("Could not write file: No space left on device")

    monkeypatch.setattr("loaders.cli.compact", full_disk)
    assert main(["crm", "--accounts", str(crm_files[0]), "--contacts", str(crm_files[1])]) == 0
    err = capsys.readouterr().err
    assert "the load is complete, but compacting the warehouse failed" in err
    assert "No space left on device" in err
    assert "Traceback" not in err
    assert rows(warehouse, "select count(*) from raw_crm.accounts") == [(2,)]


def test_a_snapshot_that_empties_or_halves_the_crm_needs_allow_shrink(warehouse, crm_files,
                                                                     tmp_path, capsys):
    main(["crm", "--accounts", str(crm_files[0]), "--contacts", str(crm_files[1])])
    header = write(tmp_path / "header.csv", "account_id,name\n")
    assert main(["crm", "--accounts", str(header), "--contacts", str(crm_files[1])]) == 2
    assert "holds no accounts (only its header)" in capsys.readouterr().err
    assert rows(warehouse, "select count(*) from raw_crm.accounts") == [(2,)]

    many = write(tmp_path / "many.csv", "account_id,name\n" + "".join(
        f"A{i},Company {i}\n" for i in range(20)))
    assert main(["crm", "--accounts", str(many), "--contacts", str(crm_files[1])]) == 0
    few = write(tmp_path / "few.csv", "account_id,name\n" + "".join(
        f"A{i},Company {i}\n" for i in range(9)))
    assert main(["crm", "--accounts", str(few), "--contacts", str(crm_files[1])]) == 2
    assert "holds 9 accounts, fewer than half of the 20 landed before" in (
        capsys.readouterr().err)
    assert rows(warehouse, "select count(*) from raw_crm.accounts") == [(20,)]
    assert main(["crm", "--accounts", str(few), "--contacts", str(crm_files[1]),
                 "--allow-shrink"]) == 0
    assert rows(warehouse, "select count(*) from raw_crm.accounts") == [(9,)]
    assert main(["crm", "--accounts", str(header), "--contacts", str(crm_files[1]),
                 "--allow-shrink"]) == 0
    assert rows(warehouse, "select count(*) from raw_crm.accounts") == [(0,)]
