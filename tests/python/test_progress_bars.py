"""DuckDB's own progress bar stays out of what the loaders and the benchmark print, except
on a terminal for the benchmark (its long steps print nothing else)."""

from __future__ import annotations

import sys

from bench import transform as bench_transform
from loaders.warehouse import connect


def _progress_bar(con) -> bool:
    return con.execute("select current_setting('enable_progress_bar')").fetchone()[0]


def test_the_loaders_warehouse_connection_has_no_progress_bar(tmp_path):
    con = connect(tmp_path / "warehouse.duckdb")
    try:
        assert _progress_bar(con) is False
    finally:
        con.close()


def test_the_benchmark_shows_the_progress_bar_on_a_terminal_only(tmp_path, monkeypatch):
    path = tmp_path / "bench.duckdb"
    for on_a_terminal in (False, True):
        monkeypatch.setattr(sys.stderr, "isatty", lambda answer=on_a_terminal: answer)
        with bench_transform._connect(path) as con:
            assert _progress_bar(con) is on_a_terminal
