{#- Generic test: every non-null value of `column_name` is a time-zone name the warehouse
    can convert with (IANA, as `to_utc()` needs it). Fails with one row per unknown name.
    DuckDB checks against pg_timezone_names(); other adapters have no variant yet and pass
    with a logged notice. -#}
{%- test known_time_zone(model, column_name) -%}
    {{ return(adapter.dispatch('test_known_time_zone', 'account_engagement')(model, column_name)) }}
{%- endtest -%}

{%- macro default__test_known_time_zone(model, column_name) -%}
    {%- do log(
        "known_time_zone: no variant for adapter " ~ adapter.type() ~ ", test skipped", info=true
    ) -%}
    select {{ column_name }} from {{ model }} where 1 = 0
{%- endmacro -%}

{%- macro duckdb__test_known_time_zone(model, column_name) -%}
    select distinct tested.{{ column_name }}
    from {{ model }} as tested
    where
        tested.{{ column_name }} is not null
        and lower(tested.{{ column_name }}) not in (
            select lower(known_zone.name) from pg_timezone_names() as known_zone
        )
{%- endmacro -%}
