{#- Portable date arithmetic on dbt's cross-database macros: the start of a day's ISO week,
    and the whole seconds between two timestamps. The same result on every engine, no
    dispatch of their own (macros/_macros.yml). -#}

{#- iso_week_start(date_expr) -> the Monday starting the ISO week of a date, as a date.
    date_trunc('week', ...) is the ISO (Monday) week on DuckDB, Postgres, Spark/Databricks,
    Redshift and Trino.
        date_expr: SQL expression of a date: the day. -#}
{%- macro iso_week_start(date_expr) -%}
    cast({{ dbt.date_trunc('week', date_expr) }} as date)
{%- endmacro -%}

{#- seconds_between(start_ts, end_ts) -> the whole seconds from one timestamp to another, a
    bigint: the second boundaries crossed, i.e. the difference of the two timestamps truncated
    to the second (negative when end is before start), the same on every engine.
        start_ts: SQL expression of a timestamp: the start.
        end_ts: SQL expression of a timestamp: the end. -#}
{%- macro seconds_between(start_ts, end_ts) -%}
    cast({{ dbt.datediff(start_ts, end_ts, 'second') }} as {{ dbt.type_bigint() }})
{%- endmacro -%}
