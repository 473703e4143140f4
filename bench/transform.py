"""Transformation benchmark: how fast `dbt build` turns a year of raw Graph data into `office`.

1. Writes a synthetic organisation of N mailboxes x one year straight into the raw tables of
   a fresh DuckDB file, with DuckDB SQL only (range + hash-based pseudo-random choices):
   ~M message copies per mailbox (internal mail with three copies under one
   internetMessageId, newsletters, mail to and from CRM accounts, other external mail),
   ~10 meetings per user per week with attendees (a third with account contacts), CRM
   accounts and contacts, and the org users. Then compacts the raw tables as the loader does
   after each load (loaders/warehouse.py, compact()).
2. The limit: one DuckDB pass that aggregates the raw messages once (recipients unnested,
   counted per sender domain and month).
3. Times a full `dbt build` (seeds, models and every data test) as of the last day. Unit
   tests are left out of the timed builds, as dbt recommends for production runs (they test
   the SQL, not the data, and take the same ~20 s at any scale); they run in `make test`.
4. Lands one more day of mail and meetings, then times `dbt build` again as of that day: the
   models rebuilt by whole days (docs/incremental_models.md) rebuild only the days that
   landed, the rest is rebuilt. An untimed `dbt parse` with that day's vars comes first, as a
   daily run finds its project parsed (its vars do not change: as_of_date is the day it starts).
5. With `--postgres`, the same two builds on PostgreSQL (`dbt build --target postgres`) on a
   throwaway server started from the machine's binaries (tests/python/postgres_server.py),
   each after `python -m loaders export --target postgres` (timed apart), printed beside
   DuckDB's. With `--spark`, the same on a local Spark Thrift server started from the pinned
   pyspark (tests/python/spark_server.py; all cores), each build after `python -m loaders
   export --target spark`, with the server's peak memory (the JVM's VmHWM). The first
   export of each is whole (the year); the one after the day copies only what changed since
   (loaders/export/changes.py): both are printed side by side with their ratio (target:
   <= 10 %). With `--exports-only`, only the year, the exports and the day are run (no dbt
   build, no limit): the export figures in a few minutes instead of ~15 at 100 mailboxes.

The timed builds run with DuckDB's memory_limit at DUCKDB_MEMORY_LIMIT (default 5GB, see
DEFAULT_MEMORY_LIMIT; DuckDB's own default is 80 % of the machine's memory).

Prints rows, seconds, each dbt process's peak memory (its max RSS, from wait4), the ratio of
the full build to the limit, and the slowest nodes of each build (target/run_results.json).

    python -m bench.transform --mailboxes 100 --messages-per-mailbox 30000 \\
        [--postgres] [--spark] [--exports-only]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from multiprocessing import get_context
from pathlib import Path

import duckdb

from loaders.schema import CRM_SCHEMA, GRAPH_SCHEMA, RAW_DDL
from loaders.settings import PROJECT_ROOT
from loaders.warehouse import compact

ORG_DOMAIN = "bench-org.example"

# The share of logical emails by kind (percent) and the mailbox copies each makes:
# internal 45 (sender + 2 recipients = 3 copies), newsletter 35 (1), org -> account 10
# (sender + a cc'd colleague = 2), account -> org 8 (2 recipients = 2), other external 2 (1).
# The DuckDB memory_limit the timed builds run with unless DUCKDB_MEMORY_LIMIT is set.
DEFAULT_MEMORY_LIMIT = "5GB"

COPIES_PER_EMAIL = 0.45 * 3 + 0.35 * 1 + 0.10 * 2 + 0.08 * 2 + 0.02 * 1


def _h(expr: str, salt: int) -> str:
    """A pseudo-random unsigned integer from an integer expression and a salt."""
    return f"hash({expr}, {salt})"


def _addr(address_sql: str) -> str:
    return f"{{'emailAddress': {{'name': split_part({address_sql}, '@', 1), " \
           f"'address': {address_sql}}}}}"


def _user(index_sql: str) -> str:
    return f"('u' || ({index_sql}) || '@{ORG_DOMAIN}')"


def _contact(index_sql: str, accounts: int) -> str:
    return f"('c' || ({index_sql}) || '@acct' || (({index_sql}) % {accounts}) || '.com')"


def land_reference(con: duckdb.DuckDBPyConnection, mailboxes: int, accounts: int,
                   contacts: int) -> None:
    con.execute(f"""
        insert into {GRAPH_SCHEMA}.users by name
        select 'user-' || i as id, {_user('i')} as mail, {_user('i')} as "userPrincipalName",
               'User ' || i as "displayName", ['bench'] as _selected_by, 'bench' as _run_id,
               now()::timestamp as _loaded_at
        from range({mailboxes}) t(i)""")
    con.execute(f"""
        insert into {CRM_SCHEMA}.accounts by name
        select 'A' || i as account_id, 'Account ' || i as name,
               'https://www.acct' || i || '.com/' as website, 'City' as city, 'US' as country,
               'bench.csv' as _source_file, now()::timestamp as _loaded_at
        from range({accounts}) t(i)""")
    con.execute(f"""
        insert into {CRM_SCHEMA}.contacts by name
        select 'C' || j as contact_id, 'A' || (j % {accounts}) as account_id,
               {_contact('j', accounts)} as email, 'bench.csv' as _source_file,
               now()::timestamp as _loaded_at
        from range({contacts}) t(j)""")


def land_days(con: duckdb.DuckDBPyConnection, first_day: date, days: int, mailboxes: int,
              messages_per_mailbox: int, contacts: int, accounts: int, salt: int) -> None:
    """Mail and meetings of `days` days starting on `first_day` (uniform over the days)."""
    m = mailboxes
    per_day = messages_per_mailbox / 365.0
    logical = int(m * per_day * days / COPIES_PER_EMAIL)
    span = days * 86400
    sender, other1, other2 = (
        f"({_h('i', salt + 1)} % {m})",
        f"((({_h('i', salt + 1)} % {m}) + 1 + {_h('i', salt + 2)} % {m - 1}) % {m})",
        f"((({_h('i', salt + 1)} % {m}) + 1 + {_h('i', salt + 3)} % {m - 1}) % {m})",
    )
    contact = f"({_h('i', salt + 4)} % {contacts})"
    con.execute(f"""
        create or replace temp table logical_emails as
        with base as (
            select
                i,
                {_h('i', salt)} % 100 as kind_roll,
                timestamp '{first_day.isoformat()}'
                    + to_seconds(({_h('i', salt + 5)} % {span})::bigint) as sent_at
            from range({logical}) t(i)
        )
        select
            i,
            sent_at,
            case
                when kind_roll < 45 then 'internal'
                when kind_roll < 80 then 'newsletter'
                when kind_roll < 90 then 'to_account'
                when kind_roll < 98 then 'from_account'
                else 'external'
            end as kind,
            case
                when kind_roll < 45 or (kind_roll >= 80 and kind_roll < 90)
                    then {_user(sender)}
                when kind_roll < 80 then 'news' || ({_h('i', salt + 6)} % 200)
                    || '@list' || ({_h('i', salt + 6)} % 50) || '.example'
                when kind_roll < 98 then {_contact(contact, accounts)}
                else 'someone' || ({_h('i', salt + 7)} % 100000) || '@elsewhere'
                    || ({_h('i', salt + 7)} % 5000) || '.example'
            end as from_address,
            case
                when kind_roll < 45 then [{_user(other1)}, {_user(other2)}]
                when kind_roll < 80 then [{_user(sender)}]
                when kind_roll < 90 then [{_contact(contact, accounts)}]
                when kind_roll < 98 then [{_user(sender)}, {_user(other1)}]
                else [{_user(sender)}]
            end as to_list,
            case when kind_roll >= 80 and kind_roll < 90 then [{_user(other1)}]
                 else [] end as cc_list,
            case
                when kind_roll < 45 then [{sender}, {other1}, {other2}]
                when kind_roll < 80 then [{sender}]
                when kind_roll < 98 then [{sender}, {other1}]
                else [{sender}]
            end as copies
        from base""")
    con.execute(f"""
        insert into {GRAPH_SCHEMA}.messages by name
        with copies as (
            select *, unnest(list_distinct(copies)) as box from logical_emails
        )
        select
            'm{salt}-' || i || '-' || box as id,
            '<m{salt}-' || i || '@bench>' as "internetMessageId",
            'conv{salt}-' || (i // 3) as "conversationId",
            'inbox-' || box as "parentFolderId",
            false as "isDraft",
            strftime(sent_at, '%Y-%m-%dT%H:%M:%SZ') as "sentDateTime",
            strftime(sent_at, '%Y-%m-%dT%H:%M:%SZ') as "receivedDateTime",
            strftime(sent_at, '%Y-%m-%dT%H:%M:%SZ') as "lastModifiedDateTime",
            {_addr('from_address')} as "from",
            {_addr('from_address')} as "sender",
            list_transform(to_list, lambda x: {_addr('x')}) as "toRecipients",
            list_transform(cc_list, lambda x: {_addr('x')}) as "ccRecipients",
            [] as "bccRecipients",
            'user-' || box as _mailbox_id,
            'inbox-' || box as _folder_id,
            false as _removed,
            md5(id) as _record_hash,
            'bench' as _run_id,
            now()::timestamp as _loaded_at
        from copies""")
    # ~10 meetings per user per week: each meeting sits in ~3 org calendars
    meetings = int(m * 10 / 7 * days / 3)
    con.execute(f"""
        insert into {GRAPH_SCHEMA}.events by name
        with base as (
            select
                i,
                timestamp '{first_day.isoformat()}'
                    + to_seconds((({_h('i', salt + 5)} % {days}) * 86400
                        + (8 + {_h('i', salt + 8)} % 9) * 3600)::bigint) as start_at,
                (30 * (1 + {_h("i", salt + 9)} % 3))::bigint as minutes,
                {_h('i', salt + 10)} % 3 = 0 as with_account,
                {sender} as organizer, {other1} as attendee1, {other2} as attendee2,
                {contact} as contact
            from range({meetings}) t(i)
        ),
        shaped as (
            select
                *,
                list_distinct([organizer, attendee1, attendee2]) as copies,
                [{_user('attendee1')}, {_user('attendee2')}]
                    || case when with_account then [{_contact('contact', accounts)}]
                       else [] end as attendee_list
            from base
        ),
        copies as (select *, unnest(copies) as box from shaped)
        select
            'e{salt}-' || i || '-' || box as id,
            'ical{salt}-' || i as "iCalUId",
            null as "seriesMasterId",
            'singleInstance' as type,
            false as "isCancelled",
            false as "isAllDay",
            {{'dateTime': strftime(start_at, '%Y-%m-%dT%H:%M:%S.0000000'), 'timeZone': 'UTC'}}
                as "start",
            {{'dateTime': strftime(start_at + to_minutes(minutes), '%Y-%m-%dT%H:%M:%S.0000000'),
              'timeZone': 'UTC'}} as "end",
            {_addr(_user('organizer'))} as organizer,
            list_transform(attendee_list, lambda x, n: {{
                'type': 'required',
                'status': {{'response': case when n = 2 and i % 10 = 0 then 'declined'
                                              else 'accepted' end, 'time': null}},
                'emailAddress': {{'name': split_part(x, '@', 1), 'address': x}}
            }}) as attendees,
            strftime(start_at, '%Y-%m-%dT%H:%M:%SZ') as "lastModifiedDateTime",
            'user-' || box as _mailbox_id,
            false as _removed,
            md5(id) as _record_hash,
            'bench' as _run_id,
            now()::timestamp as _loaded_at
        from copies""")


def _connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """The warehouse, with DuckDB's progress bar only on a terminal (in a log, each redraw of
    the bar is another line)."""
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute(f"set enable_progress_bar = {str(sys.stderr.isatty()).lower()}")
    return con


def the_limit(path: Path) -> float:
    """Seconds for one DuckDB pass aggregating the raw messages once."""
    with _connect(path, read_only=True) as con:
        started = time.perf_counter()
        con.execute(f"""
            select
                split_part("from".emailAddress.address, '@', 2) as sender_domain,
                substr("sentDateTime", 1, 7) as month,
                count(*) as recipients,
                count(distinct "internetMessageId") as emails
            from (
                select
                    "from", "sentDateTime", "internetMessageId",
                    unnest("toRecipients" || "ccRecipients" || "bccRecipients") as recipient
                from {GRAPH_SCHEMA}.messages
                where not _removed
            )
            group by all""").fetchall()
        return time.perf_counter() - started


def land_org(con: duckdb.DuckDBPyConnection, first_day: date, days: int, mailboxes: int,
             messages_per_mailbox: int, accounts: int, contacts: int) -> None:
    """Into an empty warehouse: the raw tables, the org's users and CRM (land_reference), and
    `days` days of mail and meetings from `first_day` (land_days)."""
    for statement in RAW_DDL:
        con.execute(statement)
    land_reference(con, mailboxes, accounts, contacts)
    land_days(con, first_day, days, mailboxes, messages_per_mailbox, contacts, accounts,
              salt=1000)


def land_year(path: Path, mailboxes: int, messages_per_mailbox: int, accounts: int,
              contacts: int, as_of: date) -> None:
    """A fresh warehouse with the raw tables and one year ending on `as_of`."""
    with _connect(path) as con:
        con.execute("set memory_limit = ?",
                    [os.environ.get("DUCKDB_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT])
        land_org(con, as_of - timedelta(days=364), 365, mailboxes, messages_per_mailbox,
                 accounts, contacts)
        compact(con)  # as the loader leaves its raw tables (loaders/warehouse.py)


def land_next_day(path: Path, mailboxes: int, messages_per_mailbox: int, accounts: int,
                  contacts: int, day: date) -> None:
    with _connect(path) as con:
        land_days(con, day, 1, mailboxes, messages_per_mailbox, contacts, accounts, salt=2000)
        compact(con)


def in_worker(function, *arguments):
    """Runs `function` in a fresh process: DuckDB's memory stays out of this one, which every
    dbt process starts from (a forked child first counts its parent's pages as its own)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *arguments).result()


def dbt_build(path: Path, workdir: Path, as_of: date, label: str,
              project: Path = PROJECT_ROOT, postgres: dict[str, str] | None = None,
              parsed_first: bool = False, spark: dict[str, str] | None = None,
              ) -> tuple[float, list, int]:
    """Seconds, the nodes' timings (slowest first) and the dbt process's peak RSS (KiB); on
    the `postgres` target when its settings are given. With `parsed_first`, an untimed `dbt
    parse` with the build's vars comes first: a daily run keeps its vars (as_of_date is the
    day the run starts), so it finds the project parsed and parses only what changed, where a
    new `--vars` re-parses every file (~3 s more at the time of writing)."""
    env = {**os.environ, "DUCKDB_PATH": str(path), **(postgres or {}), **(spark or {})}
    env.setdefault("DUCKDB_TEMP_DIRECTORY", str(workdir / "spill"))
    # DuckDB's own default is 80 % of the machine's memory; the target is a bound, so the
    # benchmark gives dbt one (DUCKDB_MEMORY_LIMIT, see the README's settings)
    env.setdefault("DUCKDB_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)
    target = workdir / "target"
    dbt = shutil.which("dbt", path=str(Path(sys.executable).parent)) or "dbt"
    cmd = [dbt, "build", "--project-dir", str(project), "--profiles-dir", str(project),
           "--target-path", str(target), "--log-path", str(workdir / "logs"),
           "--vars", json.dumps({"as_of_date": as_of.isoformat()}), "--quiet",
           "--exclude", "resource_type:unit_test"]
    if postgres:
        cmd += ["--target", "postgres"]
    if spark:
        cmd += ["--target", "spark"]
    if parsed_first:
        at = cmd.index("--exclude")
        parse = [cmd[0], "parse", *cmd[2:at], *cmd[at + 2:]]
        subprocess.run(parse, cwd=project, env=env, check=True)
    started = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=project, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    results = json.loads((target / "run_results.json").read_text())["results"]
    if process.returncode != 0:
        failed = [r["unique_id"] for r in results if r["status"] not in ("success", "pass")]
        print(f"{label}: dbt build exited {process.returncode}; not green: {failed}",
              file=sys.stderr)
    timings = sorted(
        ((r["execution_time"], r["unique_id"]) for r in results), reverse=True
    )
    return seconds, timings, usage.ru_maxrss


def export_to_postgres(path: Path, postgres: dict[str, str], target: str = "postgres",
                       *extra: str) -> float:
    """Seconds for `python -m loaders export --target postgres` (or `target`) of the
    warehouse; its lines of the big tables (rows copied, whole or changes) are printed."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "loaders", "export", "--target", target,
                           "--no-progress", *extra], cwd=PROJECT_ROOT, check=True,
                          stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "DUCKDB_PATH": str(path), **postgres})
    seconds = time.perf_counter() - started
    for line in done.stdout.splitlines():
        if line.startswith((f"{GRAPH_SCHEMA}.messages:", f"{GRAPH_SCHEMA}.events:")):
            print(f"  export --target {target}: {line}")
    return seconds


def print_exports(target: str, whole: float, after_day: float) -> None:
    """The whole export's time beside the next day's (incremental) one, and their ratio."""
    print(f"  export to {target} (not in the builds): the year (whole) {whole:.1f} s, "
          f"after one day (changes only) {after_day:.1f} s: {after_day / whole:.1%} of the "
          "whole (target <= 10 %)")


def time_exports(path: Path, workdir: Path, scale: tuple[int, int, int, int], as_of: date,
                 postgres: bool, spark: bool) -> None:
    """--exports-only: the whole export of the year, one more day landed, the export of the
    day's changes; on each target asked for."""
    servers = []
    try:
        targets: dict[str, dict[str, str]] = {}
        if postgres:
            servers.append(throwaway_postgres().start())
            targets["postgres"] = {**servers[-1].env(), "POSTGRES_SCHEMA": "bench"}
        if spark:
            servers.append(throwaway_spark().start())
            targets["spark"] = {**servers[-1].env(), "SPARK_RAW_PATH": str(workdir / "spark_raw")}
            shutil.rmtree(workdir / "spark_raw", ignore_errors=True)
        whole = {target: export_to_postgres(path, env, target)
                 for target, env in targets.items()}
        in_worker(land_next_day, path, *scale, as_of + timedelta(days=1))
        after_day = {target: export_to_postgres(path, env, target)
                     for target, env in targets.items()}
    finally:
        for server in servers:
            server.stop()
    print(f"scale: {scale[0]} mailboxes x {scale[1]} messages, as of {as_of}, +1 day")
    for target in targets:
        print_exports(target, whole[target], after_day[target])


def throwaway_spark():
    """The test harness's local Spark Thrift server (tests/python/spark_server.py), not
    started."""
    sys.path.insert(0, str(PROJECT_ROOT / "tests" / "python"))
    from spark_server import SparkServer

    return SparkServer()


def peak_rss_kib(pid: int) -> int:
    """A running process's peak resident memory so far (VmHWM), KiB; 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def throwaway_postgres():
    """The test harness's PostgreSQL server (tests/python/postgres_server.py), not started."""
    sys.path.insert(0, str(PROJECT_ROOT / "tests" / "python"))
    from postgres_server import PostgresServer

    return PostgresServer(dbname="bench")


def counts(path: Path) -> dict[str, int]:
    with _connect(path, read_only=True) as con:
        return {
            table: con.execute(f"select count(*) from {table}").fetchone()[0]
            for table in (f"{GRAPH_SCHEMA}.messages", f"{GRAPH_SCHEMA}.events",
                          f"{CRM_SCHEMA}.accounts", f"{CRM_SCHEMA}.contacts", "main.office")
        }


BI_TABLES = ("office", "office_accounts", "office_user_entity", "stale_accounts", "leadspace",
             "enrichment_status", "leadspace_field_coverage")


def output_hashes(path: Path) -> dict[str, str]:
    """An md5 of each BI table's rows, sorted: equal hashes, equal tables cell for cell
    (a refactoring of the models must leave them unchanged). The load times
    (`LastRefreshedAt`, `EnrichedAt`) are left out: they differ from one landing to the next."""
    with _connect(path, read_only=True) as con:
        hashes = {}
        for table in BI_TABLES:
            columns = [row[0] for row in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'main' and table_name = ? order by ordinal_position",
                [table]).fetchall() if row[0] not in ("LastRefreshedAt", "EnrichedAt")]
            listed = ", ".join(f'"{c}"' for c in columns)
            hashes[table] = con.execute(
                f"select md5(coalesce(string_agg(row_text, chr(10) order by row_text), '')) "
                f"from (select cast(row({listed}) as varchar) as row_text from main.{table})"
            ).fetchone()[0][:12]
        return hashes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=2500)
    parser.add_argument("--messages-per-mailbox", type=int, default=30000)
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--contacts", type=int, default=50000)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 6, 30))
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / ".bench" / "transform")
    parser.add_argument("--keep", action="store_true", help="keep the warehouse file")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_ROOT,
                        help="the dbt project to time (default: this repository)")
    parser.add_argument("--postgres", action="store_true",
                        help="also time both builds on a throwaway PostgreSQL server")
    parser.add_argument("--spark", action="store_true",
                        help="also time both builds on a local Spark Thrift server")
    parser.add_argument("--exports-only", action="store_true",
                        help="time only the exports (--postgres, --spark): the year whole, "
                             "then one more day's changes; no dbt build")
    args = parser.parse_args(argv)
    if args.mailboxes < 3:
        parser.error("--mailboxes must be at least 3")
    if args.exports_only and not (args.postgres or args.spark):
        parser.error("--exports-only times the exports: add --postgres and/or --spark")

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "warehouse.duckdb"
    for stale in (path, path.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)

    started = time.perf_counter()
    scale = (args.mailboxes, args.messages_per_mailbox, args.accounts, args.contacts)
    in_worker(land_year, path, *scale, args.as_of)
    print(f"landed one year in {time.perf_counter() - started:.1f} s "
          f"({path.stat().st_size / 2**30:.2f} GiB)")

    if args.exports_only:
        time_exports(path, workdir, scale, args.as_of, args.postgres, args.spark)
        if not args.keep:
            for big in (path, path.with_suffix(".duckdb.wal")):
                big.unlink(missing_ok=True)
        return 0

    limit = in_worker(the_limit, path)
    project = args.project_dir.resolve()
    full, full_timings, peak_full = dbt_build(path, workdir, args.as_of, "full", project)
    full_counts = counts(path)
    full_hashes = output_hashes(path)
    server = throwaway_postgres().start() if args.postgres else None
    spark_server = None
    try:
        if server:
            postgres = {**server.env(), "POSTGRES_SCHEMA": "bench"}
            pg_export_full = export_to_postgres(path, postgres)
            pg_full, pg_full_timings, _ = dbt_build(
                path, workdir / "postgres", args.as_of, "postgres full", project, postgres)
        if args.spark:
            spark_server = throwaway_spark().start()
            shutil.rmtree(workdir / "spark_raw", ignore_errors=True)  # the first export: whole
            spark = {**spark_server.env(), "SPARK_SCHEMA": "bench",
                     "SPARK_RAW_PATH": str(workdir / "spark_raw"),
                     "PARQUET_DIR": str(workdir / "spark_parquet")}
            sp_export_full = export_to_postgres(path, spark, "spark")
            sp_full, sp_full_timings, _ = dbt_build(
                path, workdir / "spark", args.as_of, "spark full", project, spark=spark)

        next_day = args.as_of + timedelta(days=1)
        in_worker(land_next_day, path, *scale, next_day)
        incremental, incremental_timings, peak_next = dbt_build(
            path, workdir, next_day, "incremental", project, parsed_first=True
        )
        next_counts = counts(path)
        next_hashes = output_hashes(path)
        if server:
            pg_export_next = export_to_postgres(path, postgres)
            pg_next, pg_next_timings, _ = dbt_build(
                path, workdir / "postgres", next_day, "postgres incremental", project, postgres,
                parsed_first=True)
        if spark_server:
            sp_export_next = export_to_postgres(path, spark, "spark")
            sp_next, sp_next_timings, _ = dbt_build(
                path, workdir / "spark", next_day, "spark incremental", project, spark=spark,
                parsed_first=True)
            sp_peak = peak_rss_kib(spark_server.pid)
    finally:
        if server:
            server.stop()
        if spark_server:
            spark_server.stop()

    print(f"scale: {args.mailboxes} mailboxes x {args.messages_per_mailbox} messages, "
          f"{args.accounts} accounts, {args.contacts} contacts, as of {args.as_of}")
    print("rows (full build):   " + ", ".join(f"{k}={v:,}" for k, v in full_counts.items()))
    print("rows (+1 day):       " + ", ".join(f"{k}={v:,}" for k, v in next_counts.items()))
    print("output hashes (full build): " + ", ".join(f"{k}={v}" for k, v in full_hashes.items()))
    print("output hashes (+1 day):     " + ", ".join(f"{k}={v}" for k, v in next_hashes.items()))
    print(f"the limit (one pass over raw messages): {limit:.1f} s")
    print(f"full dbt build:        {full:.1f} s   ratio to the limit: {full / limit:.1f}")
    print(f"build after one day:   {incremental:.1f} s   (incremental dbt build as of the new "
          f"day)")
    print(f"DuckDB memory_limit: {os.environ.get('DUCKDB_MEMORY_LIMIT', DEFAULT_MEMORY_LIMIT)}, "
          f"threads: {os.environ.get('DUCKDB_THREADS', 'all cores')}")
    print(f"peak memory (dbt process, max RSS): full build {peak_full / 2**20:.2f} GiB, "
          f"build after one day {peak_next / 2**20:.2f} GiB")
    if server:
        print(f"side by side ({args.mailboxes} mailboxes): "
              f"{'':14}{'DuckDB':>10}{'PostgreSQL':>12}")
        print(f"  full dbt build          {full:10.1f}{pg_full:12.1f} s")
        print(f"  build after one day     {incremental:10.1f}{pg_next:12.1f} s")
        print_exports("Postgres", pg_export_full, pg_export_next)
    if spark_server:
        print(f"side by side ({args.mailboxes} mailboxes): {'':14}{'DuckDB':>10}{'Spark':>10}"
              f"{'ratio':>8}")
        print(f"  full dbt build          {full:10.1f}{sp_full:10.1f}{sp_full / full:8.1f} s")
        print(f"  build after one day     {incremental:10.1f}{sp_next:10.1f}"
              f"{sp_next / incremental:8.1f} s")
        print(f"  peak memory             {peak_full / 2**20:10.2f}{sp_peak / 2**20:10.2f} GiB "
              "(DuckDB: the dbt process; Spark: the server's JVM)")
        print_exports("Spark", sp_export_full, sp_export_next)
    slowest = [("full", full_timings), ("+1 day", incremental_timings)]
    if server:
        slowest += [("Postgres full", pg_full_timings), ("Postgres +1 day", pg_next_timings)]
    if spark_server:
        slowest += [("Spark full", sp_full_timings), ("Spark +1 day", sp_next_timings)]
    for label, timings in slowest:
        print(f"slowest nodes ({label}):")
        for seconds, unique_id in timings[:10]:
            print(f"  {seconds:8.1f} s  {unique_id}")
    if not args.keep:
        for big in (path, path.with_suffix(".duckdb.wal")):
            big.unlink(missing_ok=True)
        shutil.rmtree(workdir / "spill", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
