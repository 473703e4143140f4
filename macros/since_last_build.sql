{#- since_last_build(column) -> a predicate: `column` (`loaded_at`, `built_at`, or qualified:
    `landed.loaded_at`) is later than the latest value of that column this model holds -#}
{%- macro since_last_build(column) -%}
    {%- set held = column.split('.') | last -%}
    {{ column }} > (
        select coalesce(max({{ held }}), {{ dbt.cast("'1900-01-01'", dbt.type_timestamp()) }})
        from {{ this }}
    )
{%- endmacro -%}
