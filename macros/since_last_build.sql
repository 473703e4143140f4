{#- since_last_build(column) -> a predicate: `column` (`loaded_at`, `built_at`, or qualified:
    `landed.loaded_at`) is later than the latest value of that column this model holds -#}
{%- macro since_last_build(column) -%}
    {{ return(adapter.dispatch('since_last_build', 'account_engagement')(column)) }}
{%- endmacro -%}

{%- macro default__since_last_build(column) -%}
    {%- set held = column.split('.') | last -%}
    {{ column }} > (
        select coalesce(max({{ held }}), {{ dbt.cast("'1900-01-01'", dbt.type_timestamp()) }})
        from {{ this }}
    )
{%- endmacro -%}

{#- PostgreSQL: the latest value is read before the model's statement and written into it as a
    literal. Compared with a subquery's value, which the planner cannot know, PostgreSQL
    estimates a third of the rows and scans the table whole; with the value it uses the
    index on the column (the raw tables' `_loaded_at`, the models' `loaded_at`). -#}
{%- macro postgres__since_last_build(column) -%}
    {%- set held = column.split('.') | last -%}
    {{ column }} > {{ latest_value_literal(
        "select max(" ~ held ~ ") from " ~ this
    ) }}
{%- endmacro -%}

{#- latest_value_literal(query) -> the timestamp `query` returns (one row, one column) as a
    SQL literal, read when the node runs; 1900-01-01 when it returns null (an empty table)
    and while dbt only parses. -#}
{%- macro latest_value_literal(query) -%}
    {%- set latest = none -%}
    {%- if execute -%}
        {%- set latest = run_query(query).columns[0].values()[0] -%}
    {%- endif -%}
    {{ dbt.cast("'" ~ (latest if latest is not none else '1900-01-01') ~ "'",
                dbt.type_timestamp()) }}
{%- endmacro -%}
