{#- set_duckdb_settings() -> SQL for the on-run-start hook: on DuckDB, memory_limit, threads
    and temp_directory from DUCKDB_MEMORY_LIMIT, DUCKDB_THREADS and DUCKDB_TEMP_DIRECTORY when
    set, and, as the root project only, preserve_insertion_order = false; nothing on other
    adapters. These are session settings: installed as a package, the hook runs in the user's
    whole run and changes their models too, so there it sets only what the user asked for
    through those environment variables, and leaves the row order of their other models
    alone. -#}
{%- macro set_duckdb_settings() -%}
    {{ return(adapter.dispatch('set_duckdb_settings', 'account_engagement')()) }}
{%- endmacro -%}

{%- macro default__set_duckdb_settings() -%}
{%- endmacro -%}

{%- macro duckdb__set_duckdb_settings() -%}
    {%- set memory_limit = env_var('DUCKDB_MEMORY_LIMIT', '') | trim -%}
    {%- set threads = env_var('DUCKDB_THREADS', '') | trim -%}
    {%- set temp_directory = env_var('DUCKDB_TEMP_DIRECTORY', '') | trim -%}
    {%- set statements = [] -%}
    {%- if project_name == 'account_engagement' -%}
        {#- lets DuckDB write a table without keeping its rows in order: less memory -#}
        {%- do statements.append("set preserve_insertion_order = false") -%}
    {%- endif -%}
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
