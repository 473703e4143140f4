"""DuckDB and PostgreSQL build the same outputs from the same raw data.

The small synthetic organisation of `make demo` (the Graph and Leadspace emulators, every
loader) lands in DuckDB; its raw tables are exported to a throwaway PostgreSQL server
(`python -m loaders export --target postgres`). Both engines build it, then one more day of
mail and meetings lands (new copies of the last day's emails and meetings, a day later) and
both build again, incrementally. The five output tables of the BI contract must be equal
cell by cell between the engines after each build (floating-point cells to a relative
1e-9), and each engine's incremental build equal to its own `--full-refresh`.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import DEMO_AS_OF
from engines import OUTPUTS, DuckDBBuilds, PostgresBuilds, differences, table

from loaders.schema import GRAPH_SCHEMA

AS_OF = date.fromisoformat(DEMO_AS_OF)
NEXT_DAY = AS_OF + timedelta(days=1)


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


def assert_engines_equal(duck: DuckDBBuilds, postgres: PostgresBuilds, when: str) -> None:
    for name in OUTPUTS:
        duckdb_table, postgres_table = table(duck, name), table(postgres, name)
        assert duckdb_table[1], f"{name} is empty on DuckDB {when}: the test tests nothing"
        found = differences(duckdb_table, postgres_table)
        assert not found, (f"{name} {when}: Postgres differs from DuckDB in {len(found)} "
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
    assert_engines_equal(duck, postgres, "after a full build")

    land_next_day(warehouse)
    duck.build(NEXT_DAY)
    postgres.build(NEXT_DAY)
    assert_engines_equal(duck, postgres, "after one more day")
    rows = "select count(*) from main.office where \"AggregationStartDate\" = '{}'"
    assert duck.query(rows.format(NEXT_DAY - timedelta(days=NEXT_DAY.weekday())))[1][0][0] > 0

    duck.full_refresh(NEXT_DAY)
    postgres.full_refresh(NEXT_DAY)
    assert_equal_to_full_refresh(duck, "DuckDB")
    assert_equal_to_full_refresh(postgres, "Postgres")


@pytest.mark.parametrize("planted", ["a changed figure", "a missing row"])
def test_the_comparison_fails_on_a_planted_difference(planted: str) -> None:
    columns = ["AccountId", "AverageDuration_Of_Meetings"]
    rows = [("A1", 30.0), ("A2", None)]
    assert differences((columns, rows), (columns, [("A2", None), ("A1", 30.0 + 1e-12)])) == []
    other = [("A1", 30.5), ("A2", None)] if planted == "a changed figure" else [("A1", 30.0)]
    assert differences((columns, rows), (columns, other))
