"""The same raw data gives the same `office`, cell for cell, whatever the order it landed in.

A load killed and resumed, or run with another number of workers, lands the same rows in
another order. The averages of `office` must not move by a bit: each is one division of exact
sums of whole seconds, never a floating-point sum whose result depends on the order of its
terms. A dense week of mail and meetings of a small organisation (4 accounts, so each account
has dozens of replies and meetings: many terms in each average) is written straight into the
raw tables by the transformation benchmark's generator, with replies of the accounts' contacts
and meetings whose lengths are not whole minutes. A copy of the warehouse gets every raw
table's rows written again in another order; both are built on DuckDB, and the two `office`
tables must be equal with no tolerance. (DuckDB only: there the order reaches the sums, and a
plain floating-point avg() of either average differs in its last bits in 8 of the 264 rows. On
PostgreSQL it did not: its hash aggregates feed the sums in the order of their keys' hashes,
whatever the order of the rows. test_engines_equal checks that PostgreSQL and Spark publish
DuckDB's figures exactly.)
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
from engines import DuckDBBuilds, table

from bench.transform import land_org
from loaders.schema import GRAPH_SCHEMA

AS_OF = date(2026, 6, 30)
MAILBOXES, ACCOUNTS, CONTACTS = 8, 4, 16
# the generator's yearly rate: ~3,000 emails in the week
PER_MAILBOX = 40_000


def _land_week(path: Path) -> None:
    """A week of mail and meetings; every org email to a contact answered by the contact
    seconds to hours later; 16 times the meetings, each ending seconds past the minute."""
    with duckdb.connect(str(path)) as con:
        land_org(con, AS_OF - timedelta(days=6), 7, MAILBOXES, PER_MAILBOX, ACCOUNTS,
                 CONTACTS)
        messages, events = f"{GRAPH_SCHEMA}.messages", f"{GRAPH_SCHEMA}.events"
        con.execute(f"""insert into {messages}
            select * replace (
                id || '-reply' as id, "internetMessageId" || '-reply' as "internetMessageId",
                "toRecipients"[1] as "from", "toRecipients"[1] as sender,
                ["from"] as "toRecipients", [] as "ccRecipients",
                strftime("sentDateTime"::timestamp
                    + to_seconds((hash("internetMessageId") % 20000)::bigint),
                    '%Y-%m-%dT%H:%M:%SZ') as "sentDateTime")
            from {messages}
            where "from".emailAddress.address like 'u%'
              and "toRecipients"[1].emailAddress.address like 'c%'""")
        # each meeting 15 times more, at the same times (dozens of meetings per account)
        con.execute(f"""insert into {events}
            select landed.* replace (
                landed.id || '-' || copies.k as id,
                landed."iCalUId" || '-' || copies.k as "iCalUId")
            from {events} as landed, range(1, 16) as copies(k)""")
        con.execute(f"""update {events}
            set "end" = struct_pack("dateTime" := strftime(
                    "end"."dateTime"::timestamp + to_seconds((hash("iCalUId") % 60)::bigint),
                    '%Y-%m-%dT%H:%M:%S'),
                "timeZone" := "end"."timeZone")""")


def _land_again_in_another_order(path: Path) -> None:
    """Every raw table's rows deleted and written again, permuted (by a hash of their row
    number)."""
    with duckdb.connect(str(path)) as con:
        tables = con.execute("""select schema_name, table_name from duckdb_tables()
            where schema_name like 'raw_%'""").fetchall()
        for schema, name in tables:
            con.execute(f"""create or replace temp table permuted as
                select * from {schema}.{name} order by hash(rowid, 7)""")
            con.execute(f"delete from {schema}.{name}")
            con.execute(f"insert into {schema}.{name} select * from permuted")


def test_the_same_data_landed_in_another_order_gives_the_same_office(tmp_path: Path) -> None:
    landed = tmp_path / "landed.duckdb"
    _land_week(landed)
    reordered = tmp_path / "reordered.duckdb"
    shutil.copy(landed, reordered)
    _land_again_in_another_order(reordered)
    builds = {}
    for name, warehouse in (("landed", landed), ("reordered", reordered)):
        (tmp_path / name).mkdir()
        builds[name] = DuckDBBuilds(tmp_path / name, warehouse)
        builds[name].build(AS_OF)

    # many terms in each average, in both of them
    columns, terms = builds["landed"].query("""select count(*) as replies,
            count(distinct account_id) as accounts
        from main.int_account_email_replies""")
    assert terms[0][0] >= 20 * terms[0][1], dict(zip(columns, terms[0], strict=True))
    columns, terms = builds["landed"].query("""select count(*) as meetings,
            count(distinct account_id) as accounts
        from main.int_meeting_account_interactions""")
    assert terms[0][0] >= 20 * terms[0][1], dict(zip(columns, terms[0], strict=True))
    averages = builds["landed"].query("""select
            count("AverageDuration_Of_AccountEmailReplies"), count("AverageDuration_Of_Meetings")
        from main.office""")[1][0]
    assert min(averages) > 0, averages

    office = {name: table(builds[name], "office") for name in builds}
    columns = office["landed"][0]
    assert office["reordered"][0] == columns
    key = [columns.index(column)
           for column in ("AccountId", "AggregationLevel", "AggregationStartDate")]
    rows = {name: {tuple(row[i] for i in key): row for row in office[name][1]}
            for name in office}
    assert rows["landed"].keys() == rows["reordered"].keys()
    differing = [(row, rows["reordered"][k]) for k, row in sorted(rows["landed"].items())
                 if row != rows["reordered"][k]]
    assert not differing, (f"{len(differing)} of {len(rows['landed'])} office rows differ "
                           f"when the same data landed in another order, e.g. "
                           f"{differing[:2]}")
