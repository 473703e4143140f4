"""The incremental email models build the same tables as a full refresh.

A small organisation (8 mailboxes, a year of mail and meetings, written straight into the raw
tables by the transformation benchmark's generator) is built once, as of the day before its
last day. Then, as the loader would
land them, come: copies Graph reported removed, copies re-landed with changed recipients,
new copies of old emails (with a bcc of an account contact), brand new emails, replies
from account contacts and one more day. An incremental `dbt build` two days later must
leave every email model and `office` identical to a `--full-refresh` build of the same raw
data. So must the build after a new CRM contact (the address rules change: old emails become
emails of an account). After `remove graph` (raw emptied) the next build must empty them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb

from loaders.bench_transform import land_days, land_reference
from loaders.schema import CRM_SCHEMA, GRAPH_SCHEMA, LOADER_SCHEMA, RAW_DDL

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 6, 30)
MAILBOXES, ACCOUNTS, CONTACTS, PER_MAILBOX = 8, 20, 80, 600
COMPARED = ("stg_graph__events", "stg_graph__event_attendees", "int_meeting_participants",
            "int_emails", "int_email_roles", "int_email_participants",
            "int_account_email_people_days", "int_account_email_people_periods",
            "int_email_account_interactions", "int_account_email_replies", "office")
LATER = "now()::timestamp + interval 1 hour"


def _dbt(tmp: Path, warehouse: Path, as_of: date, *args: str,
         expect_success: bool = True) -> str:
    """`dbt build` (data tests, no unit tests) of `warehouse`, as of `as_of`, in its own
    process (dbt-duckdb keeps the file open in the process that ran it); its output."""
    dbt = Path(sys.executable).parent / "dbt"
    result = subprocess.run([
        str(dbt), "build", "--exclude", "resource_type:unit_test", *args,
        "--project-dir", str(ROOT), "--profiles-dir", str(ROOT),
        "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs"),
        "--vars", json.dumps({"as_of_date": as_of.isoformat()}), "--quiet",
    ], env={**os.environ, "DUCKDB_PATH": str(warehouse)}, capture_output=True, text=True,
        check=False)
    assert (result.returncode == 0) == expect_success, (
        f"dbt build {' '.join(args)} exited {result.returncode}:\n{result.stdout}")
    return result.stdout


def _land_changes(path: Path) -> None:
    """What later loader runs land: removals, re-landed copies, new copies, new emails,
    replies, one more day."""
    with duckdb.connect(str(path)) as con:
        messages = f"{GRAPH_SCHEMA}.messages"
        con.execute(f"""update {messages} set _removed = true, _loaded_at = {LATER}
            where hash(id) % 23 = 0 and not _removed""")
        con.execute(f"""update {messages}
            set "toRecipients" = "toRecipients"[2:],
                "ccRecipients" = coalesce("ccRecipients", []) || "toRecipients"[1:1],
                _loaded_at = {LATER}
            where hash(id) % 19 = 1 and not _removed""")
        con.execute(f"""insert into {messages}
            select * replace (
                id || '-copy' as id, 'user-0' as _mailbox_id,
                coalesce("bccRecipients", []) || [{{'emailAddress': {{'name': 'c',
                    'address': (select min(email) from raw_crm.contacts)}}}}]
                    as "bccRecipients",
                {LATER} as _loaded_at)
            from {messages} where hash(id) % 31 = 2 and not _removed""")
        con.execute(f"""insert into {messages}
            select * replace (
                id || '-new' as id, "internetMessageId" || '-new' as "internetMessageId",
                strftime("sentDateTime"::timestamp + interval 3 day, '%Y-%m-%dT%H:%M:%SZ')
                    as "sentDateTime",
                {LATER} as _loaded_at)
            from {messages} where hash(id) % 13 = 3 and not _removed""")
        # replies from account contacts, five hours after an org email to them
        con.execute(f"""insert into {messages}
            select * replace (
                id || '-reply' as id, "internetMessageId" || '-reply' as "internetMessageId",
                "toRecipients"[1] as "from", "toRecipients"[1] as sender,
                ["from"] as "toRecipients", [] as "ccRecipients",
                strftime("sentDateTime"::timestamp + interval 5 hour, '%Y-%m-%dT%H:%M:%SZ')
                    as "sentDateTime",
                {LATER} as _loaded_at)
            from {messages}
            where "from".emailAddress.address like 'u%'
              and "toRecipients"[1].emailAddress.address like 'c%'
              and hash(id) % 3 = 0 and not _removed""")
        # calendars: occurrences gone, and occurrences changed in place (the loader replaces
        # the row: one attendee fewer, moved an hour later)
        events = f"{GRAPH_SCHEMA}.events"
        con.execute(f"""update {events} set _removed = true, _loaded_at = {LATER}
            where hash(id) % 17 = 0 and not _removed""")
        con.execute(f"""update {events}
            set attendees = attendees[2:],
                "start" = struct_pack("dateTime" := strftime(
                    "start"."dateTime"::timestamp + interval 1 hour, '%Y-%m-%dT%H:%M:%S'),
                    "timeZone" := "start"."timeZone"),
                _loaded_at = {LATER}
            where hash(id) % 11 = 1 and not _removed and len(attendees) > 1""")
        land_days(con, AS_OF + timedelta(days=1), 1, MAILBOXES, PER_MAILBOX, CONTACTS,
                  ACCOUNTS, salt=2000)


def _differences(left: Path, right: Path, table: str) -> tuple[int, int, int]:
    with duckdb.connect(str(left), read_only=True) as con:
        con.execute(f"attach '{right}' as other (read_only)")
        only_left = con.execute(f"select count(*) from (select * from main.{table} "
                                f"except all select * from other.main.{table})").fetchone()[0]
        only_right = con.execute(f"select count(*) from (select * from other.main.{table} "
                                 f"except all select * from main.{table})").fetchone()[0]
        rows = con.execute(f"select count(*) from main.{table}").fetchone()[0]
    return rows, only_left, only_right


def _deduplicate_people_days(path: Path) -> None:
    """Removes what a test planted in int_account_email_people_days."""
    with duckdb.connect(str(path)) as con:
        con.execute("""create temp table once as
            select distinct * from main.int_account_email_people_days
            where person <> 'someone-landed@example.org'""")
        con.execute("delete from main.int_account_email_people_days")
        con.execute("insert into main.int_account_email_people_days select * from once")


def test_incremental_build_equals_full_refresh_and_empties_after_removal(tmp_path: Path) -> None:
    incremental = tmp_path / "incremental.duckdb"
    with duckdb.connect(str(incremental)) as con:
        for statement in RAW_DDL:
            con.execute(statement)
        land_reference(con, MAILBOXES, ACCOUNTS, CONTACTS)
        land_days(con, AS_OF - timedelta(days=364), 365, MAILBOXES, PER_MAILBOX, CONTACTS,
                  ACCOUNTS, salt=1000)
    # as of the day before the last landed day: the next build, as of two days later, must
    # count the emails this one left out as sent after its as_of_date
    _dbt(tmp_path, incremental, AS_OF - timedelta(days=1))
    before = tmp_path / "before.duckdb"
    shutil.copy(incremental, before)

    _land_changes(incremental)
    _dbt(tmp_path, incremental, AS_OF + timedelta(days=1))

    full = tmp_path / "full.duckdb"
    shutil.copy(incremental, full)
    _dbt(tmp_path, full, AS_OF + timedelta(days=1), "--full-refresh")

    for table in COMPARED:
        rows, only_incremental, only_full = _differences(incremental, full, table)
        assert rows > 0, f"{table} is empty: the scenario tests nothing"
        assert (only_incremental, only_full) == (0, 0), (
            f"{table}: {only_incremental} rows only in the incremental build, "
            f"{only_full} only in the full refresh")
    # the changes changed something, so the equality above is not the trivial one
    assert _differences(before, full, "int_email_roles")[1] > 0
    assert _differences(before, full, "office")[1] > 0
    assert _differences(before, full, "stg_graph__event_attendees")[1] > 0

    # a new CRM contact, an address on old mail of no account until now: the address rules
    # change, so the email models rebuild whole and bring its old emails in
    with duckdb.connect(str(incremental)) as con:
        con.execute(f"""insert into {CRM_SCHEMA}.contacts by name
            select 'C-new' as contact_id, 'A1' as account_id, min("from".emailAddress.address)
                as email, 'later.csv' as _source_file, {LATER} as _loaded_at
            from {GRAPH_SCHEMA}.messages
            where "from".emailAddress.address like 'someone%' and not _removed""")
    emails_before = _differences(incremental, full, "int_emails")[0]
    _dbt(tmp_path, incremental, AS_OF + timedelta(days=1))
    shutil.copy(incremental, full)
    _dbt(tmp_path, full, AS_OF + timedelta(days=1), "--full-refresh")
    for table in COMPARED:
        rows, only_incremental, only_full = _differences(incremental, full, table)
        assert (only_incremental, only_full) == (0, 0), (
            f"{table} after a CRM change: {only_incremental} rows only in the incremental "
            f"build, {only_full} only in the full refresh")
    assert _differences(incremental, full, "int_emails")[0] > emails_before

    # a copy landed twice since the last build: the key test, which checks only the copies
    # landed since then against all copies, must catch it
    with duckdb.connect(str(incremental)) as con:
        con.execute(f"""insert into {GRAPH_SCHEMA}.messages
            select * replace ({LATER} + interval 1 hour as _loaded_at)
            from {GRAPH_SCHEMA}.messages where not _removed limit 1""")
    failed = _dbt(tmp_path, incremental, AS_OF + timedelta(days=1),
                  "--select", "stg_graph__messages", expect_success=False)
    assert "unique_combination_of_columns_stg_graph__messages" in failed, failed
    with duckdb.connect(str(incremental)) as con:
        con.execute(f"""delete from {GRAPH_SCHEMA}.messages
            where _loaded_at = (select max(_loaded_at) from {GRAPH_SCHEMA}.messages)""")

    # a person-day written twice on a day rebuilt since the last build (an increment that
    # failed to delete that day): the key test, which checks every row of the days holding
    # a row landed since, must catch it, though the twice-written row itself is old
    with duckdb.connect(str(incremental)) as con:
        con.execute("""create temp table planted as
            select * from main.int_account_email_people_days
            order by activity_date, account_id, side, person limit 1""")
        con.execute("insert into main.int_account_email_people_days select * from planted")
        con.execute(f"""insert into main.int_account_email_people_days
            select * replace ('someone-landed@example.org' as person,
                              {LATER} + interval 2 hour as loaded_at)
            from planted""")
    failed = _dbt(tmp_path, incremental, AS_OF + timedelta(days=1),
                  "--select", "int_account_email_people_days", expect_success=False)
    assert "unique_combination_of_columns_int_account_email_people_days" in failed, failed
    _deduplicate_people_days(incremental)

    # after the address rules changed, the model was rebuilt whole: its key test checks every
    # row, not only the days landed since (int_account_email_people_periods, not rebuilt
    # here, still holds the former rules)
    with duckdb.connect(str(incremental)) as con:
        con.execute(f"""insert into {CRM_SCHEMA}.contacts by name
            select 'C-newer' as contact_id, 'A2' as account_id,
                'newer@example.org' as email, 'later.csv' as _source_file,
                {LATER} as _loaded_at""")
    _dbt(tmp_path, incremental, AS_OF + timedelta(days=1),
         "--select", "int_account_email_people_days")
    with duckdb.connect(str(incremental)) as con:
        con.execute("""insert into main.int_account_email_people_days
            select * from main.int_account_email_people_days
            order by activity_date, account_id, side, person limit 1""")
    failed = _dbt(tmp_path, incremental, AS_OF + timedelta(days=1),
                  "--select", "int_account_email_people_days", "--resource-type", "test",
                  expect_success=False)
    assert "unique_combination_of_columns_int_account_email_people_days" in failed, failed
    _deduplicate_people_days(incremental)

    # a sent copy without its sentDateTime landed since the last build: the not-null test,
    # which checks only the copies landed since then, must report it (a warning)
    with duckdb.connect(str(incremental)) as con:
        con.execute(f"""insert into {GRAPH_SCHEMA}.messages
            select * replace (id || '-no-time' as id, null as "sentDateTime",
                              {LATER} + interval 1 hour as _loaded_at)
            from {GRAPH_SCHEMA}.messages where not _removed and not "isDraft" limit 1""")
    _dbt(tmp_path, incremental, AS_OF + timedelta(days=1), "--select", "stg_graph__messages")
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    not_null = {r["unique_id"].split(".")[2]: (r["status"], r["failures"]) for r in results
                if "not_null_landed" in r["unique_id"]}
    assert not_null == {
        "not_null_landed_stg_graph__messages_sent_at__int_email_addresses": ("warn", 1),
        "not_null_landed_stg_graph__messages_internet_message_id__int_email_addresses": ("pass", 0),
    }, not_null
    with duckdb.connect(str(incremental)) as con:
        con.execute(f"delete from {GRAPH_SCHEMA}.messages where id like '%-no-time'")

    # `remove graph` empties the raw Graph tables; the next (incremental) build empties
    # the email models and `office` instead of keeping what they held
    with duckdb.connect(str(incremental)) as con:
        for table in ("users", "mail_folders", "messages", "events", "malformed_records"):
            con.execute(f"delete from {GRAPH_SCHEMA}.{table}")
        con.execute(f"delete from {LOADER_SCHEMA}.load_runs")
    _dbt(tmp_path, incremental, AS_OF + timedelta(days=1))
    with duckdb.connect(str(incremental), read_only=True) as con:
        for table in COMPARED:
            assert con.execute(f"select count(*) from main.{table}").fetchone()[0] == 0, table
