{#-
    sqlfluff stubs: what the project's own macros (macros/*.sql) render to on DuckDB, reduced
    to a shape sqlfluff can parse. dbt never reads this folder; keep the signatures in step
    with macros/.
-#}

{% macro as_of_date() -%}
    cast('2024-06-30' as date)
{%- endmacro %}

{% macro set_duckdb_settings() -%}
{%- endmacro %}

{% macro struct_field(expr, path) -%}
    {{ expr }}{% for field in path.split('.') %}.{{ field }}{% endfor %}
{%- endmacro %}

{% macro unnest_struct_list(list_expr, relation_alias, element_alias, position_alias=none) -%}
    {%- if position_alias is none -%}
    cross join unnest({{ list_expr }}) as {{ relation_alias }} ({{ element_alias }})
    {%- else -%}
    cross join unnest({{ list_expr }}) with ordinality
        as {{ relation_alias }} ({{ element_alias }}, {{ position_alias }})
    {%- endif -%}
{%- endmacro %}

{% macro parse_graph_datetime(expr) -%}
    try_cast({{ expr }} as timestamp)
{%- endmacro %}

{% macro to_utc(datetime_string, time_zone, iana_zone) -%}
    timezone('UTC', timezone({{ iana_zone }}, try_cast({{ datetime_string }} as timestamp)))
{%- endmacro %}

{% macro time_zone_names() -%}
    select
        lower(name) as zone_key,
        name as iana_name
    from pg_timezone_names()
{%- endmacro %}

{% macro window_start_date() -%}
    cast('2023-07-02' as date)
{%- endmacro %}

{% macro period_start(aggregation_level, date_expr) -%}
    greatest(cast(date_trunc('month', {{ date_expr }}) as date), cast('2023-07-02' as date))
{%- endmacro %}

{% macro explode_list(list_expr) -%}
    unnest({{ list_expr }})
{%- endmacro %}

{% macro since_last_build(column) -%}
    {{ column }} > current_timestamp
{%- endmacro %}

{% macro sorted_lines(expression) -%}
    string_agg({{ expression }}, chr(10) order by {{ expression }})
{%- endmacro %}

{% macro crm_contact_email_columns(default) -%}
    {{ return(default) }}
{%- endmacro %}
