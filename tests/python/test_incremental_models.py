"""The models rebuilt by whole days build the same tables as a full refresh, on DuckDB and on
PostgreSQL.

A small organisation (8 mailboxes, a year of mail and meetings, written straight into the raw
tables by the transformation benchmark's generator) is built once, as of the day before its
last day. Then, as the loader would land them, come: copies Graph reported removed (every
copy of one day among them), copies re-landed with changed recipients, new copies of old
emails (with a bcc of an account contact), brand new emails, replies from account contacts,
calendar occurrences removed or moved, and one more day. An incremental `dbt build` two days
later must leave every model rebuilt by whole days, what is built from them and the outputs
equal, cell by cell, to a `--full-refresh` build of the same raw data, and the emptied day
must hold its day row alone. So must the build after a new CRM contact (the address rules
change: old emails become emails of an account). After `remove graph` (raw emptied) the next
build must empty the outputs and the address mapping, and leave the models rebuilt by whole
days or periods their day (period) rows alone; after a later load lands the last 60 days
again, the incremental build must equal a full refresh once more (the day rows of the days
that stayed empty aside: a full refresh never sees those days). On Postgres each build first
exports the raw tables (`python -m loaders export --target postgres`) to a throwaway server.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from engines import DuckDBBuilds, PostgresBuilds, differences, table

from bench.transform import land_days, land_org, land_reference
from loaders.graph.landing import remove_graph
from loaders.schema import CRM_SCHEMA, GRAPH_SCHEMA, RAW_DDL

AS_OF = date(2026, 6, 30)
MAILBOXES, ACCOUNTS, CONTACTS, PER_MAILBOX = 8, 20, 80, 600
# the models rebuilt by whole days (or periods), what is built from them, and the outputs
COMPARED = ("int_email_copies", "int_email_addresses", "int_address_accounts",
            "int_account_emails", "int_email_participants", "int_email_account_interactions",
            "int_account_email_people_days", "int_account_email_people_periods",
            "int_account_email_replies", "int_meeting_participants",
            "int_email_figures__by_account_period", "int_meeting_figures__by_account_period",
            "int_people_figures__by_account_period", "int_reply_figures__by_account_period",
            "int_account_period_figures", "office", "stale_accounts")
# rebuilt by whole days, with their day column: each holds one day row (`is_day_row`) per
# day it rebuilt
DAY_MODELS = {"int_email_copies": "sent_date",
              "int_account_emails": "sent_date",
              "int_email_participants": "sent_date",
              "int_email_account_interactions": "sent_date",
              "int_account_email_people_days": "activity_date"}
# every model rebuilt by whole days or periods: its day (month, period) rows are `is_day_row`
DAY_ROW_MODELS = (*DAY_MODELS, "int_email_addresses", "int_account_email_people_periods")
# the rows of a model that are not day rows, in SQL
NOT_DAY_ROWS = "count(*) filter (where not is_day_row)"
LATER = "now()::timestamp + interval 1 hour"
# every copy sent on this day is removed by the changes: the day must end up empty
EMPTIED_DAY = AS_OF - timedelta(days=100)
# after `remove graph`, a load lands the mail of these last days again
RELANDED_DAYS = 60


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
        # every copy of one day gone
        con.execute(f"""update {messages} set _removed = true, _loaded_at = {LATER}
            where "sentDateTime"::timestamp::date = '{EMPTIED_DAY.isoformat()}'""")
        land_days(con, AS_OF + timedelta(days=1), 1, MAILBOXES, PER_MAILBOX, CONTACTS,
                  ACCOUNTS, salt=2000)


@pytest.fixture(params=["duckdb", "postgres"])
def builds(request: pytest.FixtureRequest, tmp_path: Path):
    warehouse = tmp_path / "incremental.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        land_org(con, AS_OF - timedelta(days=364), 365, MAILBOXES, PER_MAILBOX, ACCOUNTS,
                 CONTACTS)
    if request.param == "duckdb":
        return DuckDBBuilds(tmp_path, warehouse)
    return PostgresBuilds(tmp_path, warehouse, request.getfixturevalue("postgres_server"),
                          "incremental_models")


def _count(builds, sql: str):
    return builds.query(sql)[1][0][0]


def _assert_equal_to_full_refresh(builds, when: str, day_rows: bool = True) -> None:
    """Every model of COMPARED equal to the full refresh's, cell by cell; without the day
    (period) rows of the models rebuilt by whole days (periods) when `day_rows` is false."""
    for name in COMPARED:
        where = "true" if day_rows or name not in DAY_ROW_MODELS else "not is_day_row"
        incremental = table(builds, name, where=where)
        # every account of the scenario is active: stale_accounts is compared, empty
        assert incremental[1] or name == "stale_accounts", (
            f"{name} is empty {when}: the scenario tests nothing")
        found = differences(incremental, table(builds, name, full_refresh=True, where=where))
        assert not found, (f"{name} {when}: the incremental build differs from the full "
                           f"refresh in {len(found)} cells, e.g. {found[:3]}")


def test_incremental_build_equals_full_refresh_and_empties_after_removal(builds) -> None:
    # as of the day before the last landed day: the next build, as of two days later, must
    # count the emails this one left out as sent after its as_of_date
    builds.build(AS_OF - timedelta(days=1))
    participants_before = _count(builds, "select count(*) from main.int_email_participants")
    office_before = _count(builds, 'select sum("NoOfEmails_ToAccount") from main.office')

    _land_changes(builds.warehouse)
    builds.build(AS_OF + timedelta(days=1))
    builds.full_refresh(AS_OF + timedelta(days=1))
    _assert_equal_to_full_refresh(builds, "after the changes")
    # the changes changed something, so the equality above is not the trivial one
    assert _count(builds, "select count(*) from main.int_email_participants") != (
        participants_before)
    assert _count(builds, 'select sum("NoOfEmails_ToAccount") from main.office') != (
        office_before)
    # the day whose every copy was removed holds its day row alone, in each model
    for name, day_column in DAY_MODELS.items():
        assert builds.query(
            f"select count(*), {NOT_DAY_ROWS} from main.{name} "
            f"where {day_column} = '{EMPTIED_DAY.isoformat()}'")[1] == [(1, 0)], name

    # a new CRM contact, an address on old mail of no account until now: the address rules
    # change, so the models rebuilt by whole days rebuild every day and bring its emails in
    emails = "select count(distinct internet_message_id) from main.int_email_participants"
    emails_before = _count(builds, emails)
    with duckdb.connect(str(builds.warehouse)) as con:
        con.execute(f"""insert into {CRM_SCHEMA}.contacts by name
            select 'C-new' as contact_id, 'A1' as account_id, min("from".emailAddress.address)
                as email, 'later.csv' as _source_file, {LATER} as _loaded_at
            from {GRAPH_SCHEMA}.messages
            where "from".emailAddress.address like 'someone%' and not _removed""")
    builds.build(AS_OF + timedelta(days=1))
    builds.full_refresh(AS_OF + timedelta(days=1))
    _assert_equal_to_full_refresh(builds, "after a CRM change")
    assert _count(builds, emails) > emails_before

    # `remove graph` empties the raw Graph tables (kept aside here, to land again below); the
    # next (incremental) build empties the outputs and the addresses, and the models rebuilt
    # by whole days (periods) keep their day (period) rows alone
    graph_tables = ("users", "mail_folders", "messages", "events", "malformed_records")
    with duckdb.connect(str(builds.warehouse)) as con:
        con.execute("create schema kept")
        for raw in graph_tables:
            con.execute(f"create table kept.{raw} as select * from {GRAPH_SCHEMA}.{raw}")
        remove_graph(con)
    builds.build(AS_OF + timedelta(days=1))
    for name in ("office", "stale_accounts", "int_account_email_replies",
                 "int_meeting_participants", "int_address_accounts"):
        assert _count(builds, f"select count(*) from main.{name}") == 0, name
    for name in DAY_ROW_MODELS:
        assert _count(builds, f"select {NOT_DAY_ROWS} from main.{name}") == 0, name

    # a later load lands the users, the calendars and the last RELANDED_DAYS days of mail
    # again: the incremental build equals a full refresh, but for the day rows of the days
    # that emptied (which a full refresh, starting from the raw tables, never sees)
    with duckdb.connect(str(builds.warehouse)) as con:
        for raw in graph_tables:
            relanded = "true" if raw != "messages" else (
                f""""sentDateTime"::timestamp::date
                > '{(AS_OF - timedelta(days=RELANDED_DAYS)).isoformat()}'""")
            con.execute(f"""insert into {GRAPH_SCHEMA}.{raw}
                select * replace ({LATER} as _loaded_at) from kept.{raw} where {relanded}""")
        con.execute("drop schema kept cascade")
    builds.build(AS_OF + timedelta(days=1))
    builds.full_refresh(AS_OF + timedelta(days=1))
    _assert_equal_to_full_refresh(builds, "after `remove graph` and a smaller load",
                                  day_rows=False)


def test_a_build_before_any_mail_then_a_load_equals_a_full_refresh(tmp_path: Path) -> None:
    """A warehouse built before the first Graph load of mail (the users and the CRM landed):
    the models rebuilt by whole days or periods are built holding no row at all. A load of a
    month of mail and the next build must give what a full refresh gives."""
    builds = DuckDBBuilds(tmp_path, tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(builds.warehouse)) as con:
        for statement in RAW_DDL:
            con.execute(statement)
        land_reference(con, MAILBOXES, ACCOUNTS, CONTACTS)
    builds.build(AS_OF)
    for name in DAY_ROW_MODELS:
        assert _count(builds, f"select count(*) from main.{name}") == 0, name
    with duckdb.connect(str(builds.warehouse)) as con:
        land_days(con, AS_OF - timedelta(days=29), 30, MAILBOXES, PER_MAILBOX * 5, CONTACTS,
                  ACCOUNTS, salt=1000)
    builds.build(AS_OF)
    builds.full_refresh(AS_OF)
    for name in (*DAY_ROW_MODELS, "int_address_accounts", "int_account_period_figures",
                 "office"):
        full = table(builds, name, full_refresh=True)
        assert full[1], f"{name} is empty in the full refresh: the test tests nothing"
        found = differences(table(builds, name), full)
        assert not found, (f"{name}: the incremental build differs from the full refresh in "
                           f"{len(found)} cells, e.g. {found[:3]}")


def test_remove_graph_then_a_load_before_the_next_build_equals_a_full_refresh(
    tmp_path: Path,
) -> None:
    """`remove graph`, then a smaller load, then the build: the copies of before the removal
    are gone from every model, on the days landed again and on the others."""
    builds = _small_built_organisation(tmp_path)
    with duckdb.connect(str(builds.warehouse)) as con:
        con.execute(f"create table kept_users as select * from {GRAPH_SCHEMA}.users")
        remove_graph(con)
        con.execute(f"insert into {GRAPH_SCHEMA}.users select * from kept_users")
        land_days(con, AS_OF - timedelta(days=9), 10, MAILBOXES, PER_MAILBOX // 10, CONTACTS,
                  ACCOUNTS, salt=2000)
    builds.build(AS_OF)
    builds.full_refresh(AS_OF)
    for name in (*DAY_ROW_MODELS, "int_address_accounts", "office"):
        where = "not is_day_row" if name in DAY_ROW_MODELS else "true"
        full = table(builds, name, full_refresh=True, where=where)
        assert full[1], f"{name} is empty in the full refresh: the test tests nothing"
        found = differences(table(builds, name, where=where), full)
        assert not found, (f"{name}: the incremental build differs from the full refresh in "
                           f"{len(found)} cells, e.g. {found[:3]}")


def _small_built_organisation(tmp_path: Path) -> DuckDBBuilds:
    """A month of mail of the small organisation, built on DuckDB as of AS_OF."""
    builds = DuckDBBuilds(tmp_path, tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(builds.warehouse)) as con:
        land_org(con, AS_OF - timedelta(days=29), 30, MAILBOXES, PER_MAILBOX // 10, ACCOUNTS,
                 CONTACTS)
    builds.build(AS_OF)
    return builds


def test_key_test_catches_a_row_written_twice(tmp_path: Path) -> None:
    """A day rebuilt twice over (an increment that failed to replace it) fails the build."""
    builds = _small_built_organisation(tmp_path)
    with duckdb.connect(str(builds.warehouse)) as con:
        con.execute("""insert into main.int_account_email_people_days
            select * from main.int_account_email_people_days
            where not is_day_row
            order by activity_date, account_id, side, person limit 1""")
    failed = builds.build(AS_OF, "--select", "int_account_email_people_days",
                          "--resource-type", "test", expect_success=False)
    assert ("Failure in test unique_combination_of_columns_int_account_email_people_days"
            in failed), failed


def test_full_build_key_test_catches_a_copy_landed_twice(tmp_path: Path) -> None:
    """A full build checks every landed copy's key: one copy landed twice in one load (the
    same row twice) fails the staging key test, which groups only the ids that repeat."""
    builds = DuckDBBuilds(tmp_path, tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(builds.warehouse)) as con:
        land_org(con, AS_OF - timedelta(days=6), 7, MAILBOXES, PER_MAILBOX, ACCOUNTS, CONTACTS)
        con.execute(f"""insert into {GRAPH_SCHEMA}.messages
            select * from {GRAPH_SCHEMA}.messages where not _removed order by id limit 1""")
    failed = builds.build(AS_OF, "--select", "+int_email_copies", "--indirect-selection",
                          "cautious", expect_success=False)
    assert ("Failure in test unique_combination_of_columns_landed_since_build_stg_graph__"
            "messages") in failed, (
        failed)


def test_day_build_tests_check_what_it_wrote_and_what_landed(tmp_path: Path) -> None:
    """The data tests of a day build check the days it rewrote and the copies landed since the
    last build: a copy the loader lands twice fails the staging key test, and a copy written
    twice on a rewritten day fails int_email_copies' key test; a duplicate planted on a day no
    build rewrote since is left alone (it was checked when its day was written)."""
    builds = _small_built_organisation(tmp_path)
    next_day = AS_OF + timedelta(days=1)
    with duckdb.connect(str(builds.warehouse)) as con:
        # the loader lands one old copy a second time, as a new row (a re-landing that
        # failed to replace it)
        con.execute(f"""insert into {GRAPH_SCHEMA}.messages
            select * replace ({LATER} as _loaded_at)
            from {GRAPH_SCHEMA}.messages where not _removed order by id limit 1""")
    failed = builds.build(next_day, expect_success=False)
    # the failures dbt lists at the end (the log names every test, the skipped ones too)
    assert ("Failure in test unique_combination_of_columns_landed_since_build_stg_graph__"
            "messages") in failed, failed
    assert "Failure in test unique_combination_of_columns_int_email_copies" not in failed, failed

    (tmp_path / "rewritten").mkdir()
    builds = _small_built_organisation(tmp_path / "rewritten")
    with duckdb.connect(str(builds.warehouse)) as con:
        # a day's mail at the volume of a year of PER_MAILBOX * 3 per mailbox
        land_days(con, next_day, 1, MAILBOXES, PER_MAILBOX * 3, CONTACTS, ACCOUNTS,
                  salt=2000)
    builds.build(next_day)
    with duckdb.connect(str(builds.warehouse)) as con:
        rewritten, left_alone = con.execute("""select
            count(distinct sent_date) filter (where built_at = (select max(built_at)
                from main.int_email_copies)),
            count(distinct sent_date) filter (where built_at < (select max(built_at)
                from main.int_email_copies))
            from main.int_email_copies""").fetchone()
        assert rewritten >= 1 and left_alone >= 10, (rewritten, left_alone)
        # a duplicate on a day the last build left alone, then one on a day it rewrote
        duplicate = """insert into main.int_email_copies
            select * from main.int_email_copies
            where not is_day_row and built_at {} (select max(built_at)
                from main.int_email_copies)
            order by sent_date, mailbox_id, message_id limit 1"""
        con.execute(duplicate.format("<"))
    tests = ("--select", "int_email_copies", "--resource-type", "test")
    builds.build(next_day, *tests)
    with duckdb.connect(str(builds.warehouse)) as con:
        con.execute(duplicate.format("="))
    failed = builds.build(next_day, *tests, expect_success=False)
    assert "Failure in test unique_combination_of_columns_int_email_copies" in failed, failed
