-- The DuckDB settings this project's models ran with: the package's on-run-start hook may set
-- only what the user asked for through DUCKDB_MEMORY_LIMIT, DUCKDB_THREADS and
-- DUCKDB_TEMP_DIRECTORY, nothing of its own (preserve_insertion_order stays DuckDB's default).
select
    current_setting('threads') as threads,
    current_setting('preserve_insertion_order') as preserve_insertion_order
