"""DuckDB, PostgreSQL and Spark build the same outputs from the same raw data.

The small synthetic organisation of `make demo` (the Graph and Leadspace emulators, every
loader) lands in DuckDB; its raw tables are exported to a throwaway PostgreSQL server
(`python -m loaders export --target postgres`), and as Parquet to the session's local Spark
Thrift server (`python -m loaders export --target spark`). Each engine builds it, then one
more day of mail and meetings lands (new copies of the last day's emails and meetings, a day
later) and each builds again, incrementally; in the Spark test every copy of one earlier day
is also removed. The five output tables of the BI contract must be equal cell by cell to
DuckDB's after each build (exactly, the averages to the last bit; Spark's read from the
Parquet folders its build publishes, as BI reads them), each engine's incremental build
equal to its own `--full-refresh` (on Spark: to DuckDB's), and on Spark the emptied day must
hold its day row alone (a day whose recomputation yields no row still replaces its
partition).
"""

from __future__ import annotations

import math
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import DEMO_AS_OF
from engines import OUTPUTS, DuckDBBuilds, PostgresBuilds, SparkBuilds, differences, table

from loaders.schema import GRAPH_SCHEMA

AS_OF = date.fromisoformat(DEMO_AS_OF)
NEXT_DAY = AS_OF + timedelta(days=1)
# every copy sent on this day is removed before the incremental build (the Spark test)
EMPTIED_DAY = AS_OF - timedelta(days=9)
# rebuilt by whole days, with their day column: each holds one day row (`is_day_row`) per
# day it rebuilt
DAY_MODELS = {"int_email_copies": "sent_date",
              "int_account_emails": "sent_date",
              "int_email_participants": "sent_date",
              "int_email_account_interactions": "sent_date",
              "int_account_email_people_days": "activity_date"}


def land_next_day(warehouse: Path) -> None:
    """The last day's emails and meetings again, a day later, as new copies a later load
    lands."""
    later = "now()::timestamp + interval 1 hour"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"""insert into {GRAPH_SCHEMA}.messages
            select * replace (
                id || '-next' as id, "internetMessageId" || '-next' as "internetMessageId",
                strftime(try_cast("sentDateTime" as timestamp) + interval 1 day,
                         '%Y-%m-%dT%H:%M:%SZ') as "sentDateTime",
                {later} as _loaded_at)
            from {GRAPH_SCHEMA}.messages
            where try_cast("sentDateTime" as timestamp)::date = '{AS_OF}' and not _removed""")
        landed = con.execute(f"""select count(*) from {GRAPH_SCHEMA}.messages
            where id like '%-next'""").fetchone()[0]
        assert landed > 0, "the organisation sent no email on its last day"
        con.execute(f"""insert into {GRAPH_SCHEMA}.events
            select * replace (
                id || '-next' as id, "iCalUId" || '-next' as "iCalUId",
                struct_pack("dateTime" := strftime(
                    try_cast("start"."dateTime" as timestamp) + interval 1 day,
                    '%Y-%m-%dT%H:%M:%S'), "timeZone" := "start"."timeZone") as "start",
                struct_pack("dateTime" := strftime(
                    try_cast("end"."dateTime" as timestamp) + interval 1 day,
                    '%Y-%m-%dT%H:%M:%S'), "timeZone" := "end"."timeZone") as "end",
                {later} as _loaded_at)
            from {GRAPH_SCHEMA}.events
            where try_cast("start"."dateTime" as timestamp)::date
                between '{AS_OF - timedelta(days=7)}' and '{AS_OF}'
              and not _removed and type <> 'seriesMaster'""")


def remove_every_copy_of(warehouse: Path, day: date) -> None:
    """Every copy sent on `day` reported removed by a later load."""
    on_day = f"""try_cast("sentDateTime" as timestamp)::date = '{day}' and not _removed"""
    with duckdb.connect(str(warehouse)) as con:
        [(removed,)] = con.execute(
            f"select count(*) from {GRAPH_SCHEMA}.messages where {on_day}").fetchall()
        con.execute(f"""update {GRAPH_SCHEMA}.messages
            set _removed = true, _loaded_at = now()::timestamp + interval 1 hour
            where {on_day}""")
    assert removed > 0, f"the organisation sent no email on {day}: the test tests nothing"


def assert_engines_equal(duck: DuckDBBuilds, other, engine: str, when: str) -> None:
    for name in OUTPUTS:
        duckdb_table, other_table = table(duck, name), table(other, name)
        assert duckdb_table[1], f"{name} is empty on DuckDB {when}: the test tests nothing"
        found = differences(duckdb_table, other_table)
        assert not found, (f"{name} {when}: {engine} differs from DuckDB in {len(found)} "
                           f"cells, e.g. {found[:3]}")


def assert_equal_to_full_refresh(builds, engine: str) -> None:
    for name in OUTPUTS:
        found = differences(table(builds, name), table(builds, name, full_refresh=True))
        assert not found, (f"{name} on {engine}: the incremental build differs from the "
                           f"full refresh in {len(found)} cells, e.g. {found[:3]}")


def test_duckdb_and_postgres_build_the_same_outputs(demo_build: Path, tmp_path: Path,
                                                    postgres_server) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_build / "warehouse.duckdb", warehouse)
    duck = DuckDBBuilds(tmp_path / "duckdb", warehouse)
    postgres = PostgresBuilds(tmp_path / "postgres", warehouse, postgres_server,
                              "engines_equal")

    duck.build(AS_OF)
    postgres.build(AS_OF)
    assert_engines_equal(duck, postgres, "Postgres", "after a full build")

    land_next_day(warehouse)
    duck.build(NEXT_DAY)
    postgres.build(NEXT_DAY)
    assert_engines_equal(duck, postgres, "Postgres", "after one more day")
    rows = "select count(*) from main.office where \"AggregationStartDate\" = '{}'"
    assert duck.query(rows.format(NEXT_DAY - timedelta(days=NEXT_DAY.weekday())))[1][0][0] > 0

    duck.full_refresh(NEXT_DAY)
    postgres.full_refresh(NEXT_DAY)
    assert_equal_to_full_refresh(duck, "DuckDB")
    assert_equal_to_full_refresh(postgres, "Postgres")


def test_duckdb_and_spark_build_the_same_outputs(demo_build: Path, tmp_path: Path,
                                                 spark_server) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_build / "warehouse.duckdb", warehouse)
    duck = DuckDBBuilds(tmp_path / "duckdb", warehouse)
    spark = SparkBuilds(tmp_path / "spark", warehouse, spark_server)

    duck.build(AS_OF)
    spark.build(AS_OF)
    assert_engines_equal(duck, spark, "Spark", "after a full build")

    land_next_day(warehouse)
    remove_every_copy_of(warehouse, EMPTIED_DAY)
    duck.build(NEXT_DAY)
    spark.build(NEXT_DAY)
    assert_engines_equal(duck, spark, "Spark", "after one more day and a day removed")
    # Spark's dynamic partition overwrite replaces only the days present in the new rows:
    # the emptied day is replaced by its day row alone
    for name, day_column in DAY_MODELS.items():
        found = spark.spark_query(
            f"select count(*), count(case when not is_day_row then 1 end) from main.{name} "
            f"where {day_column} = '{EMPTIED_DAY}'")
        assert found == [(1, 0)], (f"{name} on Spark holds {found[0][1]} rows beside "
                                   f"{found[0][0] - found[0][1]} day rows on the emptied day")

    # the incremental Spark build against DuckDB's full refresh (the first Spark build ran
    # every model's full path already): a third Spark build of ~250 statements would add
    # five minutes to CI
    duck.full_refresh(NEXT_DAY)
    for name in OUTPUTS:
        found = differences(table(spark, name), table(duck, name, full_refresh=True))
        assert not found, (f"{name}: Spark's incremental build differs from DuckDB's full "
                           f"refresh in {len(found)} cells, e.g. {found[:3]}")


@pytest.mark.parametrize("planted", ["a changed figure", "a figure one bit off", "a missing row"])
def test_the_comparison_fails_on_a_planted_difference(planted: str) -> None:
    columns = ["AccountId", "AverageDuration_Of_Meetings"]
    rows = [("A1", 30.0), ("A2", None)]
    assert differences((columns, rows), (columns, [("A2", None), ("A1", 30.0)])) == []
    other = {"a changed figure": [("A1", 30.5), ("A2", None)],
             "a figure one bit off": [("A1", math.nextafter(30.0, 31.0)), ("A2", None)],
             "a missing row": [("A1", 30.0)]}[planted]
    assert differences((columns, rows), (columns, other))
