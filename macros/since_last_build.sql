{#- since_last_build(column) -> a predicate: `column` (`loaded_at`, `built_at`, or qualified:
    `landed.loaded_at`) is later than the latest value of that column this model holds
    (docs/incremental_models.md) -#}
{%- macro since_last_build(column) -%}
    {{ column }} > (
        select coalesce(
            max({{ column.split('.') | last }}),
            {{ dbt.cast("'1900-01-01'", dbt.type_timestamp()) }}
        )
        from {{ this }}
    )
{%- endmacro -%}
