{#- set_duckdb_settings() -> SQL for the on-run-start hook: on DuckDB, memory_limit, threads
    and temp_directory from DUCKDB_MEMORY_LIMIT, DUCKDB_THREADS and DUCKDB_TEMP_DIRECTORY when
    set, and preserve_insertion_order = false; nothing on other adapters. -#}
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
