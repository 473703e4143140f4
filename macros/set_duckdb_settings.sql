{#-
    set_duckdb_settings() -> SQL for the on-run-start hook

    On DuckDB, applies the engine settings given in the environment, once per invocation:
      DUCKDB_MEMORY_LIMIT    -> memory_limit     (e.g. 4GB)
      DUCKDB_THREADS         -> threads          (a whole number)
      DUCKDB_TEMP_DIRECTORY  -> temp_directory   (where DuckDB spills)
    and always preserve_insertion_order = false (lets big joins and aggregations stream).
    On other adapters it does nothing.
-#}
{%- macro set_duckdb_settings() -%}
    {{ return(adapter.dispatch('set_duckdb_settings', 'account_engagement')()) }}
{%- endmacro -%}

{%- macro default__set_duckdb_settings() -%}
{%- endmacro -%}

{%- macro duckdb__set_duckdb_settings() -%}
    {%- set memory_limit = env_var('DUCKDB_MEMORY_LIMIT', '') | trim -%}
    {%- set threads = env_var('DUCKDB_THREADS', '') | trim -%}
    {%- set temp_directory = env_var('DUCKDB_TEMP_DIRECTORY', '') | trim -%}
    {%- set statements = ["set preserve_insertion_order = false"] -%}
    {%- if memory_limit -%}
        {%- do statements.append(
            "set memory_limit = '" ~ memory_limit | replace("'", "''") ~ "'"
        ) -%}
    {%- endif -%}
    {%- if threads -%}
        {%- if not threads.isdigit() or threads | int < 1 -%}
            {{ exceptions.raise_compiler_error(
                "DUCKDB_THREADS must be a whole number >= 1, got '" ~ threads ~ "'"
            ) }}
        {%- endif -%}
        {%- do statements.append("set threads = " ~ threads | int) -%}
    {%- endif -%}
    {%- if temp_directory -%}
        {%- do statements.append(
            "set temp_directory = '" ~ temp_directory | replace("'", "''") ~ "'"
        ) -%}
    {%- endif -%}
    {{ statements | join(";\n") }}
{%- endmacro -%}
