{#- Generic test: every non-null value of `column_name` is a time-zone name the warehouse
    can convert with (IANA, as `to_utc()` needs it), among known_time_zones() (DuckDB's and
    Postgres's pg_timezone_names). Fails with one row per unknown name. -#}
{%- test known_time_zone(model, column_name) -%}
select distinct tested.{{ column_name }}
from {{ model }} as tested
where
    tested.{{ column_name }} is not null
    and lower(tested.{{ column_name }}) not in (
        select lower(known_zone.name)
        from {{ adapter.dispatch('known_time_zones', 'account_engagement')() }} as known_zone
    )
{%- endtest -%}
