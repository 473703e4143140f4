{#- landed_since_build_of(built_model, loaded_at='loaded_at') -> a predicate for a data test that
    runs after `built_model` (a model rebuilt by whole days): landed after the latest
    `loaded_at` among the rows its last build left alone; every row after a full build. -#}
{%- macro landed_since_build_of(built_model, loaded_at='loaded_at') -%}
    {{ return(adapter.dispatch('landed_since_build_of', 'account_engagement')(
        built_model, loaded_at)) }}
{%- endmacro -%}

{%- macro default__landed_since_build_of(built_model, loaded_at) -%}
    {{ loaded_at }} > ({{ latest_left_alone(built_model) }})
{%- endmacro -%}

{#- PostgreSQL: the value as a literal, read before the test's query, so that the planner uses
    the raw tables' index on `_loaded_at` (since_last_build.sql says why). -#}
{%- macro postgres__landed_since_build_of(built_model, loaded_at) -%}
    {{ loaded_at }} > {{ latest_value_literal(latest_left_alone(built_model)) }}
{%- endmacro -%}

{#- latest_left_alone(built_model) -> a query: the latest `loaded_at` among the rows the last
    build of `built_model` did not write (1900-01-01 when there are none). -#}
{%- macro latest_left_alone(built_model) -%}
    select coalesce(max(loaded_at), {{ dbt.cast("'1900-01-01'", dbt.type_timestamp()) }})
    from {{ built_model }}
    where built_at < (select max(built_at) from {{ built_model }})
{%- endmacro -%}
