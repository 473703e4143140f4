{#- this_build_started_at() -> when this dbt invocation started, a UTC timestamp (_macros.yml) -#}
{%- macro this_build_started_at() -%}
    {%- set started = run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f') -%}
    {{ dbt.cast("'" ~ started ~ "'", dbt.type_timestamp()) }}
{%- endmacro -%}
