"""Benchmarks (`make bench`): the Graph loader against the emulator, against dlt, and the
transformation layer on DuckDB, PostgreSQL and Spark. Not part of the installed product."""
