"""compact(): a load leaves its raw tables compact, so dbt's checkpoints pay only for dbt.

DuckDB merges partly filled row groups at a checkpoint, at most `max_vacuum_tasks` merges
each time; parallel inserts leave many. The test builds such a table, checkpoints it without
any merge, and checks that one compact() merges them all, keeps every row, and restores the
setting.
"""

from __future__ import annotations

import duckdb
import pytest

from loaders.schema import RAW_DDL
from loaders.warehouse import compact


def _row_groups(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(
        "select count(distinct row_group_id) from pragma_storage_info('fragmented')"
    ).fetchone()[0]


def test_compact_merges_every_partly_filled_row_group(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    for statement in RAW_DDL:
        con.execute(statement)
    con.execute("set threads = 4")
    con.execute("create table fragmented (i bigint, s varchar)")
    for _ in range(30):
        con.execute(
            "insert into fragmented select range, md5(range::varchar) from range(200000) "
            "where hash(range) % 7 <> 0"
        )
    rows = con.execute("select count(*), sum(i) from fragmented").fetchone()
    con.execute("set max_vacuum_tasks = 0")
    con.execute("checkpoint")  # written, nothing merged
    con.execute("reset max_vacuum_tasks")
    before = _row_groups(con)
    full_groups = -(-rows[0] // 122880)
    assert before > full_groups + 10

    compact(con)  # nothing changed since the last checkpoint: compact() must still merge

    after = _row_groups(con)
    assert after <= full_groups + 4, (before, after, full_groups)
    assert con.execute("select count(*), sum(i) from fragmented").fetchone() == rows
    assert con.execute("select current_setting('max_vacuum_tasks')").fetchone()[0] == 100
    tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert "compaction_marker" not in tables
    # a second compaction finds nothing left to merge
    compact(con)
    assert _row_groups(con) == after


def test_transaction_commits_all_or_nothing(tmp_path):
    from loaders.warehouse import transaction

    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    con.execute("create table t (x int primary key)")
    with transaction(con):
        con.execute("insert into t values (1), (2)")
    with pytest.raises(KeyboardInterrupt), transaction(con):
        con.execute("insert into t values (3)")
        raise KeyboardInterrupt  # Ctrl+C between two writes
    with pytest.raises(duckdb.ConstraintException), transaction(con):
        con.execute("delete from t where x = 1")
        con.execute("insert into t values (2)")  # a duplicate key: the delete is undone too
    assert con.execute("select list(x order by x) from t").fetchone()[0] == [1, 2]
    with transaction(con):  # the connection is usable again
        con.execute("insert into t values (4)")
    assert con.execute("select count(*) from t").fetchone()[0] == 3
